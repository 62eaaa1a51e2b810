// The model runner, separate from the page: loads the .tflite once, reads its input shape from the model.
import {loadAndCompile, loadLiteRt, Tensor} from '@litertjs/core';

export class ListOpsRunner {
  static async create(modelUrl, wasmDirectory) {
    await loadLiteRt(wasmDirectory);
    const model = await loadAndCompile(modelUrl, {accelerator: 'wasm'});
    return new ListOpsRunner(model);
  }

  constructor(model) {
    this.model = model;
    const [input] = model.getInputDetails();
    this.inputShape = Array.from(input.shape);
    this.inputType = input.dtype;
    this.seqLen = this.inputShape[this.inputShape.length - 1];
  }

  /** Returns {answer, logits, milliseconds} for int32 token ids of length seqLen. */
  async run(ids) {
    const input = new Tensor(ids, this.inputShape);
    const started = performance.now();
    const outputs = await this.model.run(input);
    const milliseconds = performance.now() - started;
    input.delete();
    const logits = Array.from(outputs[0].toTypedArray());
    outputs.forEach((tensor) => tensor.delete());
    const answer = logits.indexOf(Math.max(...logits));
    return {answer, logits, milliseconds};
  }

  close() {
    this.model.delete();
  }
}
