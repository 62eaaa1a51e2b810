// The streaming page: type a prompt, watch the int8 decoder write one character per decode step.
import {StreamingDecoder} from './decoder.js';

const $ = (id) => document.getElementById(id);
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const mib = (bytes) => (bytes === null ? 'not exposed' : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

async function main() {
  const decoder = await StreamingDecoder.create('model/streaming_int8.tflite', 'node_modules/@litertjs/core/wasm/');
  $('status').textContent = `Model loaded: int8, vocabulary ${decoder.vocabSize} (bytes), ` +
      `prefill ${decoder.prefillLength} tokens per call.`;
  $('cache').textContent = `${kib(decoder.cacheBytes)}, [${decoder.cacheShape.join(', ')}]`;
  $('stream').disabled = false;
  let stopped = false;
  $('stop').addEventListener('click', () => { stopped = true; });
  $('stream').addEventListener('click', async () => {
    $('error').textContent = '';
    $('stream').disabled = true;
    $('stop').disabled = false;
    stopped = false;
    const output = $('output');
    output.textContent = '';
    output.dataset.tokens = '';
    try {
      const prompt = Array.from(new TextEncoder().encode($('prompt').value));
      const maxNewTokens = Number($('tokens').value);
      if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
        throw new Error(`Characters must be a positive integer, received ${$('tokens').value}`);
      }
      const text = new TextDecoder('utf-8');
      const tokens = [];
      const started = performance.now();
      let heapAtStart = null;
      $('status').textContent = 'Streaming...';
      for await (const token of decoder.generate(prompt, maxNewTokens)) {
        tokens.push(token);
        if (tokens.length === 1) heapAtStart = StreamingDecoder.wasmHeapBytes();
        output.textContent += text.decode(Uint8Array.of(token), {stream: true});
        const seconds = (performance.now() - started) / 1000;
        $('speed').textContent = `${(tokens.length / seconds).toFixed(0)} tokens/s`;
        $('position').textContent = String(decoder.position);
        $('heap').textContent = `${mib(StreamingDecoder.wasmHeapBytes())} (at the first character ${mib(heapAtStart)})`;
        $('cache').textContent = `${kib(decoder.cacheBytes)}, [${decoder.cacheShape.join(', ')}]`;
        if (tokens.length % 8 === 0) await new Promise((resolve) => setTimeout(resolve));  // let the page paint
        if (stopped) break;
      }
      output.textContent += text.decode();
      output.dataset.tokens = tokens.join(',');
      output.dataset.heapBytes = `${heapAtStart},${StreamingDecoder.wasmHeapBytes()}`;
      $('status').textContent = `Done: ${tokens.length} characters.`;
    } catch (error) {
      $('error').textContent = error.message;
    } finally {
      $('stream').disabled = false;
      $('stop').disabled = true;
    }
  });
}

main().catch((error) => {
  $('status').textContent = `Could not load the model: ${error.message}`;
});
