// webmail_bench.mjs - the figures of bench/webmail/run, in Debian's chromium
// through tests/webmail's playwright-core: each time is taken in the page
// (performance.now() until a condition holds, polled every animation frame:
// what is painted), the median and the worst of ROUNDS printed with the
// ratio to the target.
import { createRequire } from 'node:module';
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const require = createRequire(fileURLToPath(new URL('../../tests/webmail/package.json', import.meta.url)));
const { chromium } = require('playwright-core');
const env = process.env;
const ROUNDS = Number(env.WEBMAIL_ROUNDS || 5);
const TOTAL = Number(env.WEBMAIL_MESSAGES);

// In the page: runs act(), then resolves with the ms until cond() is true at an animation frame.
function timed(page, act, cond, arg) {
  return page.evaluate(([a, c, x]) => new Promise((resolve, reject) => {
    const actFn = new Function('x', a), condFn = new Function('x', c);
    const t0 = performance.now();
    const limit = setTimeout(() => reject(new Error(`timeout: ${c}`)), 30000);
    actFn(x);
    const check = () => {
      if (condFn(x)) { clearTimeout(limit); resolve(performance.now() - t0); } else requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  }), [act, cond, arg]);
}

function report(name, times, target) {
  const s = [...times].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)];
  console.log(`${name.padEnd(44)} median ${med.toFixed(0).padStart(5)} ms  worst ${s[s.length - 1].toFixed(0).padStart(5)} ms  ` +
    `target ${target} ms  median/target ${(med / target).toFixed(2)}`);
}

const ROWS = "document.querySelectorAll('#list-rows .row').length > 0";
const browser = await chromium.launch({ executablePath: env.WEBMAIL_CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
const page = await ctx.newPage();
const r = { signin: [], reload: [], middle: [], open: [], other: [], back: [], live: [] };
for (let k = 0; k < ROUNDS; k++) {
  // sign-in (the password check included) to the Inbox's first rows on screen
  await ctx.clearCookies();
  await page.goto(env.WEBMAIL_URL, { waitUntil: 'networkidle' });
  await page.getByLabel('Email address').fill(env.WEBMAIL_USER);
  await page.getByLabel('Password', { exact: true }).fill(env.WEBMAIL_PASSWORD);
  r.signin.push(await timed(page, "document.getElementById('signin-submit').click()", ROWS));
  // the app loaded again with its session: page load to the first rows
  const t0 = Date.now();
  await page.reload({ waitUntil: 'commit' });
  await page.waitForFunction(ROWS, null, { polling: 'raf', timeout: 30000 });
  r.reload.push(Date.now() - t0);
}
await page.locator('#list-rows .row').first().waitFor();
const total = await page.evaluate(() => document.getElementById('list-spacer').offsetHeight / 64);
if (total !== TOTAL) console.log(`# the Inbox shows ${total} rows, ${TOTAL} were delivered`);
for (let k = 0; k < ROUNDS; k++) {
  // scroll to the middle (and around it: pages not fetched yet), the rows there on screen
  const at = Math.floor(total * (0.5 + (k - ROUNDS / 2) * 0.02));
  r.middle.push(await timed(page, 'document.getElementById("list").scrollTop = x * 64',
    "[...document.querySelectorAll('#list-rows .row')].some((e) => Math.abs(parseFloat(e.style.top) / 64 - x) < 3)", at));
  // open a message there: its text on screen
  const row = await page.evaluate((x) => [...document.querySelectorAll('#list-rows .row')]
    .find((e) => Math.abs(parseFloat(e.style.top) / 64 - x - 2) < 1).dataset.id, at);
  r.open.push(await timed(page, `document.querySelector('#list-rows .row[data-id="${row}"]').click()`,
    `!document.getElementById('reader').hidden && document.getElementById('r-text').textContent.length > 0 && document.querySelector('#list-rows .row[aria-selected="true"], #list-rows .row.open') !== undefined`));
  // another folder (500 messages) and back to the Inbox of 100,000
  const folder = (name) => `[...document.querySelectorAll('#folder-list button')].find((b) => b.textContent.includes('${name}')).click()`;
  r.other.push(await timed(page, folder('Projects'), "(document.querySelector('#list-rows .row .subject') || {}).textContent?.startsWith('project note')"));
  r.back.push(await timed(page, folder('Inbox'), "!(document.querySelector('#list-rows .row .subject') || { textContent: 'project note' }).textContent.startsWith('project note')"));
}
for (let k = 0; k < ROUNDS; k++) {
  // a delivery (`wharf deliver`, started now) to its row on screen, pushed over EventSource
  const subject = `live ${k} ${Date.now()}`;
  const seen = page.evaluate((s) => new Promise((resolve) => {
    const check = () => ([...document.querySelectorAll('#list-rows .row .subject')].some((e) => e.textContent === s)
      ? resolve(Date.now()) : requestAnimationFrame(check));
    check();
  }), subject);
  const t0 = Date.now();
  execSync(env.WEBMAIL_DELIVER, { input: `From: <live@bench.test>\r\nSubject: ${subject}\r\n\r\nNew.\r\n` });
  r.live.push((await seen) - t0);
}
console.log(`# ${total} messages in the Inbox, ${ROUNDS} rounds, chromium ${browser.version()}, 1280x800`);
report('sign-in to the Inbox rendered', r.signin, 300);
report('Inbox rendered again (page load, session)', r.reload, 300);
report('scroll to the middle, rows on screen', r.middle, 300);
report('open a message, text on screen', r.open, 300);
report('switch to a folder of 500', r.other, 300);
report('switch back to the Inbox', r.back, 300);
report('delivery to the row on screen', r.live, 1000);
await browser.close();
