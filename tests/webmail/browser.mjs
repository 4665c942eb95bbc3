// browser.mjs - what the webmail's browser tests share: Debian's chromium
// (WEBMAIL_CHROMIUM), launched by playwright-core before the file's first
// test and closed after its last. Not a test file: node --test runs only the
// *.test.mjs files test_webmail.py names.
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

// Called at the top of a test file: the browser its tests open contexts in.
export function useChromium() {
  let browser;
  before(async () => {
    browser = await chromium.launch({
      executablePath: process.env.WEBMAIL_CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
  });
  after(async () => {
    if (browser) await browser.close();
  });
  return { newContext: (options) => browser.newContext(options) };
}
