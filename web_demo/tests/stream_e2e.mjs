// Drives stream.html in headless Chromium: streams each golden prompt, reads the page's generated token ids.
// Usage: node tests/stream_e2e.mjs URL GOLDEN_JSON SCREENSHOT_PNG
//   -> prints JSON {tokens: [[ids] per prompt], heapBytes: [[at the first token, at the last] per prompt], consoleErrors}
import {readFileSync} from 'node:fs';
import {chromium} from 'playwright-core';

const [url, goldenPath, screenshotPath] = process.argv.slice(2);
const golden = JSON.parse(readFileSync(goldenPath, 'utf8'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync', '--disable-quic'],
});
const consoleErrors = [];
try {
  const page = await browser.newPage({viewport: {width: 412, height: 860}, deviceScaleFactor: 1});  // a phone
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() === 'error' && !/^(INFO|WARNING):|WebGPU|webgpu/.test(text)) consoleErrors.push(text);  // LiteRT logs via console.error
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  await page.goto(url);
  await page.waitForFunction(() => !document.getElementById('stream').disabled || /Could not/.test(
      document.getElementById('status').textContent), null, {timeout: 60000});
  const status = await page.textContent('#status');
  if (/Could not/.test(status)) throw new Error(status);
  const tokens = [];
  const heapBytes = [];
  for (const example of golden.examples) {
    await page.fill('#prompt', example.prompt);
    await page.fill('#tokens', String(example.new_tokens.length));
    await page.evaluate(() => { document.getElementById('status').textContent = ''; });
    await page.click('#stream');
    await page.waitForFunction(() => /^Done/.test(document.getElementById('status').textContent) ||
        document.getElementById('error').textContent !== '', null, {timeout: 60000});
    const error = await page.textContent('#error');
    if (error) throw new Error(`page error for ${JSON.stringify(example.prompt)}: ${error}`);
    const ids = await page.getAttribute('#output', 'data-tokens');
    tokens.push(ids.split(',').map(Number));
    heapBytes.push((await page.getAttribute('#output', 'data-heap-bytes')).split(',').map(Number));
  }
  await page.screenshot({path: screenshotPath, fullPage: true});
  console.log(JSON.stringify({tokens, heapBytes, consoleErrors}));
} finally {
  await browser.close();
}
