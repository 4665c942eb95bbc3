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

// In the page: does the action `kind` (with x), then resolves with the ms until its
// condition holds at an animation frame. (No strings evaluated: the app's CSP has no eval.)
function timed(page, kind, x) {
  return page.evaluate(([k, x]) => new Promise((resolve, reject) => {
    const $ = (id) => document.getElementById(id);
    const rows = () => [...document.querySelectorAll('#list-rows .row')];
    const firstSubject = () => { const e = document.querySelector('#list-rows .row .subject'); return e ? e.textContent : null; };
    const folder = (name) => [...document.querySelectorAll('#folder-list button')].find((b) => b.textContent.includes(name)).click();
    const steps = {
      signin: [() => $('signin-submit').click(), () => rows().length > 0],
      // every row the list shows there (x to the bottom of the pane) on screen
      scroll: [() => { $('list').scrollTop = x * 64; }, () => {
        const on = new Set(rows().map((e) => Math.round(parseFloat(e.style.top) / 64)));
        for (let i = x; i < x + Math.floor($('list').clientHeight / 64) - 1; i++) if (!on.has(i)) return false;
        return true;
      }],
      open: [() => document.querySelector(`#list-rows .row[data-id="${x.id}"]`).click(),
        () => !$('reader').hidden && $('r-text').textContent.length > 0 && $('r-subject').textContent === x.subject],
      other: [() => folder('Projects'), () => (firstSubject() || '').startsWith('project note')],
      inbox: [() => folder('Inbox'), () => firstSubject() !== null && !firstSubject().startsWith('project note')],
    };
    const [act, cond] = steps[k];
    performance.clearResourceTimings();
    const t0 = performance.now();
    const limit = setTimeout(() => reject(new Error(`timeout: ${k}`)), 30000);
    act();
    const check = () => {
      if (cond()) {
        clearTimeout(limit);
        window.benchStep = { t0, t1: performance.now() };
        resolve(performance.now() - t0);
      } else requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  }), [kind, x]);
}

// The last sign-in's parts, from the page's Resource Timing: the click to the sign-in request
// sent, that request to its answer (the server: password check, session), the page to its
// first JMAP request sent, that request to its answer (the server), the page to the rows painted.
function signinParts(page) {
  return page.evaluate(() => {
    const { t0, t1 } = window.benchStep;
    const res = performance.getEntriesByType('resource');
    const s = res.find((e) => e.name.endsWith('/webmail/session'));
    const j = s && res.find((e) => e.name.includes('/jmap/api') && e.startTime >= s.responseEnd);
    if (!j) return null;
    return [s.requestStart - t0, s.responseEnd - s.requestStart, j.requestStart - s.responseEnd,
      j.responseEnd - j.requestStart, t1 - j.responseEnd].map((x) => Math.round(x));
  });
}

function report(name, times, target) {
  const s = [...times].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)];
  console.log(`${name.padEnd(44)} median ${med.toFixed(0).padStart(5)} ms  worst ${s[s.length - 1].toFixed(0).padStart(5)} ms  ` +
    `target ${target} ms  median/target ${(med / target).toFixed(2)}`);
}

const browser = await chromium.launch({ executablePath: env.WEBMAIL_CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
const page = await ctx.newPage();
page.on('pageerror', (e) => console.log(`# page error: ${e}`));
page.on('console', (m) => { if (m.type() === 'error' && !/status of 401/.test(m.text())) console.log(`# console: ${m.text()}`); });
const r = { parts: [], signin: [], reload: [], middle: [], open: [], other: [], back: [], live: [] };
for (let k = 0; k < ROUNDS; k++) {
  // sign-in (the password check included) to the Inbox's first rows on screen
  await ctx.clearCookies();
  await page.goto(env.WEBMAIL_URL, { waitUntil: 'networkidle' });
  await page.getByLabel('Email address').fill(env.WEBMAIL_USER);
  await page.getByLabel('Password', { exact: true }).fill(env.WEBMAIL_PASSWORD);
  r.signin.push(await timed(page, 'signin'));
  r.parts.push(await signinParts(page));
  // the app loaded again with its session: page load to the first rows
  const t0 = Date.now();
  await page.reload({ waitUntil: 'commit' });
  await page.waitForFunction(() => document.querySelectorAll('#list-rows .row').length > 0, null, { polling: 'raf', timeout: 30000 });
  r.reload.push(Date.now() - t0);
}
const total = await page.evaluate(() => document.getElementById('list-spacer').offsetHeight / 64);
if (total !== TOTAL) console.log(`# the Inbox shows ${total} rows, ${TOTAL} were delivered`);
for (let k = 0; k < ROUNDS; k++) {
  // scroll to the middle (and around it: pages not fetched yet), the rows there on screen
  const at = Math.floor(total * (0.5 + (k - ROUNDS / 2) * 0.02));
  r.middle.push(await timed(page, 'scroll', at));
  // open a message there: its text on screen
  const row = await page.evaluate((x) => {
    const all = [...document.querySelectorAll('#list-rows .row')];
    const e = all.find((d) => Math.abs(parseFloat(d.style.top) / 64 - x - 2) < 1);
    if (!e) return { error: `${x}: ${all.map((d) => d.style.top).join(' ')} ${document.getElementById('list').scrollTop}` };
    return { id: e.dataset.id, subject: e.querySelector('.subject').textContent };
  }, at);
  if (row.error) throw new Error(row.error);
  r.open.push(await timed(page, 'open', row));
  // another folder (500 messages) and back to the Inbox of 100,000
  r.other.push(await timed(page, 'other'));
  r.back.push(await timed(page, 'inbox'));
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
// the first round's is the cold one (a fresh server: no view of the account kept)
console.log(`# sign-in each round, the first cold: ${r.signin.map((x) => x.toFixed(0)).join(' ')} ms`);
console.log('# its parts (ms): click to sign-in sent / its answer (server) / page to JMAP sent / its answer (server) / page to rows painted');
console.log(`#   ${r.parts.map((p) => (p ? p.join('/') : '?')).join('  ')}`);
report('Inbox rendered again (page load, session)', r.reload, 300);
report('scroll to the middle, rows on screen', r.middle, 300);
report('open a message, text on screen', r.open, 300);
report('switch to a folder of 500', r.other, 300);
report('switch back to the Inbox', r.back, 300);
report('delivery to the row on screen', r.live, 1000);
await browser.close();
