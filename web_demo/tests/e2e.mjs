// Drives the page in headless Chromium: enters each golden expression, reads the page's answers.
// Usage: node tests/e2e.mjs URL GOLDEN_JSON SCREENSHOT_PNG  -> prints JSON {answers, truths, errors, console}
import {readFileSync} from 'node:fs';
import {openPage} from './browser.mjs';

const [url, goldenPath, screenshotPath] = process.argv.slice(2);
const golden = JSON.parse(readFileSync(goldenPath, 'utf8'));
const {browser, page, consoleErrors} = await openPage(url, 'run');
try {
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
