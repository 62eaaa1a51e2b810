// The streaming decoder's runner: a `to_tflite_decoder` file (signatures `prefill` and `decode`) in LiteRT.js.
// Both signatures take token_ids int32 (1, T), position int32 (1,) and cache float32 (1, layers, 2, slots, heads,
// key_dim), and return logits float32 (1, T, vocab), the new cache and max_positions (0 for a ring buffer). The
// cache is a fixed-size Float32Array kept here between steps, so memory does not grow with the position.
import {getGlobalLiteRt, loadAndCompile, loadLiteRt, Tensor} from '@litertjs/core';

const product = (shape) => shape.reduce((a, b) => a * b, 1);

export class StreamingDecoder {
  static async create(modelUrl, wasmDirectory) {
    await loadLiteRt(wasmDirectory);
    const model = await loadAndCompile(modelUrl, {accelerator: 'wasm'});
    return new StreamingDecoder(model);
  }

  constructor(model) {
    const signatures = model.signatures;
    if (!signatures.prefill || !signatures.decode) {
      throw new Error(`not a decoder file: signatures ${Object.keys(signatures).join(', ')}; ` +
          'expected prefill and decode (converters.to_tflite_decoder)');
    }
    this.model = model;
    const inputs = Object.fromEntries(signatures.prefill.getInputDetails().map((d) => [d.name, d]));
    const logits = signatures.decode.getOutputDetails().find((d) => d.name === 'logits');
    this.prefillLength = inputs.token_ids.shape[1];
    this.cacheShape = Array.from(inputs.cache.shape);
    this.vocabSize = logits.shape[logits.shape.length - 1];
    this.reset();
  }

  /** Empties the cache: a new sequence starts at position 0. */
  reset() {
    this.cache = new Float32Array(product(this.cacheShape));
    this.position = 0;
  }

  get cacheBytes() {
    return this.cache.byteLength;
  }

  /** The WebAssembly heap's size in bytes (LiteRT's tensors and arena live there), or null if hidden. */
  static wasmHeapBytes() {
    return getGlobalLiteRt().liteRtWasm.HEAPU8?.buffer.byteLength ?? null;
  }

  /** Runs `ids` (T = prefillLength or 1 tokens) at the current position; returns the last token's logits. */
  async step(ids) {
    const signature = ids.length === 1 ? 'decode' : 'prefill';
    const inputs = {
      token_ids: new Tensor(Int32Array.from(ids), [1, ids.length]),
      position: new Tensor(Int32Array.of(this.position), [1]),
      cache: new Tensor(this.cache, this.cacheShape),
    };
    const outputs = await this.model.run(signature, inputs);
    Object.values(inputs).forEach((tensor) => tensor.delete());
    this.cache = outputs.cache.toTypedArray().slice();
    const logits = outputs.logits.toTypedArray();
    const last = logits.slice(logits.length - this.vocabSize);
    Object.values(outputs).forEach((tensor) => tensor.delete());
    this.position += ids.length;
    return last;
  }

  /** Prefills `prompt` (token ids) as `converters.generate_tflite` does: whole chunks, then one token at a time. */
  async prefill(prompt) {
    if (prompt.length === 0) throw new Error('the prompt is empty: type at least one character');
    this.reset();
    let logits;
    let start = 0;
    for (; prompt.length - start >= this.prefillLength; start += this.prefillLength) {
      logits = await this.step(prompt.slice(start, start + this.prefillLength));
    }
    for (; start < prompt.length; start += 1) logits = await this.step([prompt[start]]);
    return logits;
  }

  /**
   * Greedy generation, one decode step per token: calls `onToken(token, milliseconds)` after each.
   * The first token comes from the prompt's logits, so `maxNewTokens` tokens take `maxNewTokens - 1` decode steps.
   */
  async *generate(prompt, maxNewTokens) {
    let logits = await this.prefill(prompt);
    for (let step = 0; step < maxNewTokens; step += 1) {
      const token = argmax(logits);
      yield token;
      if (step + 1 < maxNewTokens) logits = await this.step([token]);
    }
  }

  close() {
    this.model.delete();
  }
}

/** The index of the largest value, the first on ties (NumPy's argmax). */
export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if (values[i] > values[best]) best = i;
  return best;
}
