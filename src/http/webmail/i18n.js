// i18n.js - the webmail's words in the user's language (doc/webmail.md, "Languages").
// English is the source: t('English text') looks the text up in the catalog of the
// language chosen and answers it, or the English when the catalog has no entry. A
// catalog is one file, lang-CODE.js (export default { 'English': 'translation' }),
// fetched only when its language is chosen: English costs no request.
// Placeholders ({n}, {name}) take the numbers and names, so that each language puts
// them where its word order wants them.
// Must never: translate the server's data (folder names, addresses, subjects, the
// server's error texts), or change an English text (the keys; the tests find by them).

// The languages offered, each named in itself; a new one needs its code here and its file.
export const LANGUAGES = { en: 'English', de: 'Deutsch' };

let lang = 'en';
let catalog = null;

export function t(english, args) {
  const s = (catalog && catalog[english]) || english;
  return args ? s.replace(/\{(\w+)\}/g, (m, k) => (k in args ? String(args[k]) : m)) : s;
}

export function language() {
  return lang;
}

// The locale for Intl (dates, times): the browser's own variant of the language chosen
// when it has one (en-GB keeps its day-month order, de-AT its month names), else the code.
export function locale() {
  const own = (navigator.languages || [navigator.language || ''])
    .find((l) => l.toLowerCase() === lang || l.toLowerCase().startsWith(`${lang}-`));
  return own || lang;
}

// The texts of index.html (text nodes and the attributes that name or explain a control),
// noted once, in English, when this module loads (before app.js changes anything): what
// translatePage sets again in each language.
const ATTRS = ['aria-label', 'placeholder', 'title'];
const statics = [];
{
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (n.nodeType === Node.TEXT_NODE) {
      const m = n.nodeValue.match(/^(\s*)(.*?)(\s*)$/s);
      if (m[2]) statics.push({ n, before: m[1], s: m[2], after: m[3] });
    } else {
      for (const a of ATTRS) if (n.hasAttribute(a)) statics.push({ n, a, s: n.getAttribute(a) });
    }
  }
}

function translatePage() {
  for (const x of statics) {
    if (x.a) x.n.setAttribute(x.a, t(x.s));
    else x.n.nodeValue = `${x.before}${t(x.s)}${x.after}`;
  }
  document.documentElement.lang = lang;
}

// Makes code the language of t(), of the page's own texts and of <html lang>; an unknown
// code (or a catalog that does not load) is English. What app.js drew is its to draw again.
export async function setLanguage(code) {
  if (!Object.hasOwn(LANGUAGES, code)) code = 'en';
  if (code === lang) return;
  let c = null;
  if (code !== 'en') {
    try {
      c = (await import(`./lang-${code}.js`)).default;
    } catch (e) {
      console.error(e);
      code = 'en';
    }
  }
  lang = code;
  catalog = c;
  translatePage();
}
