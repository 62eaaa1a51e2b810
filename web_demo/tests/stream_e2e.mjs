// Drives stream.html in headless Chromium: streams each golden prompt, reads the page's generated token ids.
// Usage: node tests/stream_e2e.mjs URL GOLDEN_JSON SCREENSHOT_PNG
//   -> prints JSON {tokens: [[ids] per prompt], heapBytes: [[at the first token, at the last] per prompt], consoleErrors}
import {readFileSync} from 'node:fs';
import {openPage} from './browser.mjs';

const [url, goldenPath, screenshotPath] = process.argv.slice(2);
const golden = JSON.parse(readFileSync(goldenPath, 'utf8'));
const {browser, page, consoleErrors} = await openPage(url, 'stream');
try {
  const tokens = [];
  const heapBytes = [];
  const speeds = [];
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
    speeds.push(await page.textContent('#speed'));
    heapBytes.push((await page.getAttribute('#output', 'data-heap-bytes')).split(',').map(Number));
  }
  await page.screenshot({path: screenshotPath, fullPage: true});
  console.log(JSON.stringify({tokens, heapBytes, speeds, consoleErrors}));
} finally {
  await browser.close();
}
