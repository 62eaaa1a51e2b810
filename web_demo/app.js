// The page: type or generate a ListOps expression, see the model's answer, the true answer and the latency.
import {encode, evaluate, generate} from './listops.js';
import {ListOpsRunner} from './runner.js';

const $ = (id) => document.getElementById(id);

async function main() {
  const vocabulary = await (await fetch('model/listops_vocab.json')).json();
  const runner = await ListOpsRunner.create('model/listops_int8.tflite', 'node_modules/@litertjs/core/wasm/');
  $('status').textContent = `Model loaded: int8, ${runner.seqLen} tokens per expression.`;
  $('run').disabled = false;
  $('generate').addEventListener('click', () => {
    $('expression').value = generate(Math.min(runner.seqLen - 1, 120));
  });
  $('run').addEventListener('click', async () => {
    $('error').textContent = '';
    try {
      const expression = $('expression').value;
      const truth = evaluate(expression);
      const {answer, milliseconds} = await runner.run(encode(expression, vocabulary, runner.seqLen));
      $('model-answer').textContent = String(answer);
      $('true-answer').textContent = String(truth);
      $('latency').textContent = `${milliseconds.toFixed(1)} ms`;
      $('verdict').textContent = answer === truth ? 'correct' : 'wrong';
    } catch (error) {
      $('error').textContent = error.message;
    }
  });
}

main().catch((error) => {
  $('status').textContent = `Could not load the model: ${error.message}`;
});
