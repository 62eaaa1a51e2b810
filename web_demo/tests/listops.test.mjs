// The JavaScript tokenizer and evaluator against the golden vectors the Python side wrote (node --test).
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {test} from 'node:test';
import {encode, evaluate, generate} from '../listops.js';

const golden = JSON.parse(readFileSync(new URL('../model/golden.json', import.meta.url), 'utf8'));
const vocabulary = JSON.parse(readFileSync(new URL('../model/listops_vocab.json', import.meta.url), 'utf8'));

test('token ids equal the Python tokenizer', () => {
  for (const example of golden.examples) {
    const padded = [...example.token_ids, ...new Array(golden.seq_len - example.token_ids.length).fill(0)];
    assert.deepEqual(Array.from(encode(example.expression, vocabulary, golden.seq_len)), padded);
  }
});

test('answers equal the Python evaluator', () => {
  for (const example of golden.examples) assert.equal(evaluate(example.expression), example.answer);
});

test('generated expressions fit and evaluate', () => {
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  for (let i = 0; i < 50; i++) {
    const expression = generate(120, random);
    assert.ok(expression.split(' ').length <= 120);
    assert.ok(evaluate(expression) >= 0 && evaluate(expression) <= 9);
  }
});

test('bad input is named', () => {
  assert.throws(() => encode('[MAX 1 x ]', vocabulary, golden.seq_len), /Unknown token "x"/);
  assert.throws(() => evaluate('[MAX 1 2'), /not complete/);
});
