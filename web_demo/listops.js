// ListOps in plain JavaScript: the tokenizer and the evaluator, held to the Python side by golden vectors.

export const OPERATORS = ['[MAX', '[MIN', '[MED', '[SM'];

/** Token ids for a model input: <cls>, the expression's tokens, then padding (id 0) up to seqLen. */
export function encode(expression, vocabulary, seqLen) {
  const ids = new Int32Array(seqLen);
  const words = expression.trim().split(/\s+/).filter((w) => w.length > 0);
  if (words.length + 1 > seqLen) {
    throw new Error(`The expression has ${words.length} tokens; this model reads at most ${seqLen - 1}.`);
  }
  ids[0] = vocabulary.cls_id;
  words.forEach((word, i) => {
    const id = vocabulary.tokens.indexOf(word);
    if (id < 2) throw new Error(`Unknown token "${word}": use [MAX [MIN [MED [SM ] and digits 0-9.`);
    ids[i + 1] = id;
  });
  return ids;
}

/** The value of an expression: MAX, MIN, MED (median rounded down), SM (sum mod 10). */
export function evaluate(expression) {
  const stack = [[]];
  for (const token of expression.trim().split(/\s+/)) {
    if (OPERATORS.includes(token)) {
      stack.push([token]);
    } else if (token === ']') {
      if (stack.length < 2) throw new Error('Unbalanced "]".');
      const [operator, ...values] = stack.pop();
      stack[stack.length - 1].push(apply(operator, values));
    } else if (/^[0-9]$/.test(token)) {
      stack[stack.length - 1].push(Number(token));
    } else {
      throw new Error(`Unknown token "${token}".`);
    }
  }
  if (stack.length !== 1 || stack[0].length !== 1) throw new Error('The expression is not complete.');
  return stack[0][0];
}

function apply(operator, values) {
  const sorted = [...values].sort((a, b) => a - b);
  switch (operator) {
    case '[MAX': return sorted[sorted.length - 1];
    case '[MIN': return sorted[0];
    case '[MED': return Math.floor((sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2);
    default: return values.reduce((a, b) => a + b, 0) % 10;
  }
}

/** A random expression of at most maxTokens tokens (depth <= 10, 2-10 arguments, as the training data). */
export function generate(maxTokens, random = Math.random) {
  for (;;) {
    const tokens = [];
    const grow = (depth) => {
      if (tokens.length > maxTokens) return;
      if (depth > 1 && (depth >= 10 || random() >= 0.25)) {
        tokens.push(String(Math.floor(random() * 10)));
        return;
      }
      tokens.push(OPERATORS[Math.floor(random() * 4)]);
      const count = 2 + Math.floor(random() * 9);
      for (let i = 0; i < count; i++) grow(depth + 1);
      tokens.push(']');
    };
    grow(1);
    if (tokens.length <= maxTokens && tokens.length >= 8) return tokens.join(' ');
  }
}
