// Headless Chromium for the page tests: a phone-sized page on `url`, ready when `buttonId` is enabled.
import {chromium} from 'playwright-core';

/** Returns {browser, page, consoleErrors}; throws the page's status if the model could not load. */
export async function openPage(url, buttonId) {
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
    await page.waitForFunction((id) => !document.getElementById(id).disabled || /Could not/.test(
        document.getElementById('status').textContent), buttonId, {timeout: 60000});
    const status = await page.textContent('#status');
    if (/Could not/.test(status)) throw new Error(status);
    return {browser, page, consoleErrors};
  } catch (error) {
    await browser.close();
    throw error;
  }
}
