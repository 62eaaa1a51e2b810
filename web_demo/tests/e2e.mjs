// Drives the page in headless Chromium: enters each golden expression, reads the page's answers.
// Usage: node tests/e2e.mjs URL GOLDEN_JSON SCREENSHOT_PNG  -> prints JSON {answers, truths, errors, console}
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
  await page.waitForFunction(() => !document.getElementById('run').disabled || /Could not/.test(
      document.getElementById('status').textContent), null, {timeout: 60000});
  const status = await page.textContent('#status');
  if (/Could not/.test(status)) throw new Error(status);
  const answers = [];
  const truths = [];
  for (const example of golden.examples) {
    await page.fill('#expression', example.expression);
    await page.evaluate(() => { document.getElementById('model-answer').textContent = '-'; });
    await page.click('#run');
    await page.waitForFunction(() => document.getElementById('model-answer').textContent !== '-' ||
        document.getElementById('error').textContent !== '', null, {timeout: 30000});
    const error = await page.textContent('#error');
    if (error) throw new Error(`page error for "${example.expression}": ${error}`);
    answers.push(Number(await page.textContent('#model-answer')));
    truths.push(Number(await page.textContent('#true-answer')));
  }
  await page.screenshot({path: screenshotPath, fullPage: true});
  console.log(JSON.stringify({answers, truths, consoleErrors}));
} finally {
  await browser.close();
}
