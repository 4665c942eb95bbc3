// catalog.test.mjs - the German catalog covers the webmail (doc/webmail.md, "Languages"):
// every text of index.html (text nodes and the aria-label, placeholder and title that
// i18n.js translates) and every t('...') of app.js has its German, and each German
// keeps its English's {placeholders}. No browser: the files are read as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const APP = new URL('../../src/http/webmail/', import.meta.url);
const de = (await import(new URL('lang-de.js', APP))).default;
const NOT_WORDS = new Set(['Wharf Mail']); // the product's name stays

function englishTexts() {
  const keys = new Set();
  const body = readFileSync(new URL('index.html', APP), 'utf8').split('<body>')[1];
  const unquote = (s) => s.replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  for (const m of body.matchAll(/\s(?:aria-label|placeholder|title)="([^"]*)"/g)) keys.add(unquote(m[1]));
  for (const piece of body.replace(/<!--.*?-->/gs, '').split(/<[^>]*>/)) {
    const s = piece.trim();
    if (s) keys.add(unquote(s));
  }
  const app = readFileSync(new URL('app.js', APP), 'utf8');
  for (const m of app.matchAll(/\bt\('((?:[^'\\]|\\.)*)'/g)) keys.add(m[1].replace(/\\'/g, "'"));
  return [...keys].filter((k) => /[A-Za-z]/.test(k) && !NOT_WORDS.has(k));
}

test('every English text of the webmail has its German', () => {
  const texts = englishTexts();
  assert.ok(texts.length > 150, String(texts.length)); // the reading above found them
  assert.deepEqual(texts.filter((k) => !Object.hasOwn(de, k)), []);
});

test('the German catalog holds no text the webmail no longer has', () => {
  const texts = new Set(englishTexts());
  assert.deepEqual(Object.keys(de).filter((k) => !texts.has(k)), []);
});

test('each German keeps the placeholders of its English', () => {
  const names = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  for (const [en, tr] of Object.entries(de)) assert.deepEqual(names(tr), names(en), en);
});
