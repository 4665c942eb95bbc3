// render.js - how a message's HTML is shown (doc/webmail.md, "Reading HTML
// mail safely"): sanitised with DOMPurify, then written into a sandboxed
// iframe (no allow-scripts, no allow-same-origin) under a CSP of its own
// that blocks every remote load until the user asks for images. Both the
// sanitiser and the CSP must fail for anything to run or load.

import DOMPurify from './vendor/purify.js';

const REMOTE = /^\s*(https?:)?\/\//i;
const URL_ATTRS = ['src', 'srcset', 'background', 'poster', 'lowsrc', 'dynsrc'];

// The cid: references of a body (RFC 2392), without the scheme, decoded.
export function cidsOf(html) {
  const out = new Set();
  for (const m of html.matchAll(/["'\s=(]cid:([^"'\s)>]+)/gi)) {
    try { out.add(decodeURIComponent(m[1])); } catch { out.add(m[1]); }
  }
  return out;
}

// Returns {html, remote}: the body to show and how many remote loads were held back.
// cids: Content-ID -> data: URL of the inline part (fetched from the download route);
// a cid: with no such part is removed.
export function sanitize(html, allowImages, cids) {
  let remote = 0;
  const purify = DOMPurify();
  purify.addHook('afterSanitizeAttributes', (node) => {
    for (const a of URL_ATTRS) {
      const v = node.getAttribute && node.getAttribute(a);
      if (v && /^\s*cid:/i.test(v)) {
        let id = v.trim().slice(4);
        try { id = decodeURIComponent(id); } catch { /* kept as it is */ }
        const url = cids && cids.get(id);
        if (url && /^data:image\//.test(url)) node.setAttribute(a, url);
        else node.removeAttribute(a);
        continue;
      }
      if (v && REMOTE.test(v)) {
        remote++;
        if (!allowImages) node.removeAttribute(a);
      }
    }
    const style = node.getAttribute && node.getAttribute('style');
    if (style && /url\s*\(/i.test(style)) {
      remote++;
      if (!allowImages) node.setAttribute('style', style.replace(/url\s*\([^)]*\)/gi, 'none'));
    }
    if (node.tagName === 'STYLE' && /url\s*\(|@import/i.test(node.textContent)) {
      remote++;
      if (!allowImages) node.textContent = node.textContent.replace(/url\s*\([^)]*\)|@import[^;]*;/gi, 'none');
    }
    if (node.tagName === 'A') {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
  });
  const clean = purify.sanitize(html, {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ['form', 'input', 'button', 'textarea', 'select', 'base', 'link', 'meta',
      'svg', 'math', 'iframe', 'frame', 'object', 'embed'],
    FORBID_ATTR: ['action', 'formaction'],
    WHOLE_DOCUMENT: false,
    FORCE_BODY: true,
  });
  return { html: clean, remote };
}

// The document of the reading frame: its own CSP first, then the cleaned body.
export function frameDocument(cleanHtml, allowImages) {
  const img = allowImages ? 'data: https: http:' : 'data:';
  const csp = `default-src 'none'; img-src ${img}; style-src 'unsafe-inline'; font-src data:`;
  return `<!doctype html><html><head><meta charset="utf-8">` +
    `<meta http-equiv="Content-Security-Policy" content="${csp}">` +
    `<style>body{font:15px/1.45 system-ui,sans-serif;margin:8px;overflow-wrap:anywhere}` +
    `img{max-width:100%;height:auto}</style></head><body>${cleanHtml}</body></html>`;
}

// ---- compose in rich text: what the editor's HTML may hold when sent, and its plain text ----

// The composer's HTML, cleaned for sending: basic formatting, lists, quotes and http(s)/mailto
// links only (DOMPurify; no styles, no images, no scripts, nothing remote).
export function sanitizeCompose(html) {
  return DOMPurify().sanitize(html, {
    ALLOWED_TAGS: ['b', 'strong', 'i', 'em', 'u', 'ul', 'ol', 'li', 'a', 'br', 'p', 'div', 'blockquote'],
    ALLOWED_ATTR: ['href'],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
    FORCE_BODY: true,
  });
}

const escapeHtml = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// Plain text into the editor: one line a <br>, "> " lines (a reply's quote) a <blockquote>.
export function textToHtml(t) {
  let out = '';
  let quote = [];
  const flush = () => {
    if (quote.length) out += `<blockquote>${quote.map(escapeHtml).join('<br>')}</blockquote>`;
    quote = [];
  };
  for (const l of t.split('\n')) {
    if (/^>/.test(l)) quote.push(l.replace(/^> ?/, ''));
    else { flush(); out += `${escapeHtml(l)}<br>`; }
  }
  flush();
  return out;
}

// The text/plain alternative of (cleaned) HTML: blocks and <br> as line breaks, list items as
// "- " or "1. ", quotes as "> ", a link as "text <url>" when the text is not the address.
export function htmlToText(html) {
  const doc = new DOMParser().parseFromString(`<!doctype html><body>${html}`, 'text/html');
  const nl = (s) => (s && !s.endsWith('\n') ? `${s}\n` : s);
  const walk = (node) => {
    let s = '';
    for (const n of node.childNodes) {
      if (n.nodeType === Node.TEXT_NODE) { s += n.nodeValue.replace(/[\t\r\n]+/g, ' '); continue; }
      if (n.nodeType !== Node.ELEMENT_NODE) continue;
      const tag = n.tagName;
      if (tag === 'BR') s += '\n';
      else if (tag === 'P' || tag === 'DIV') s = nl(nl(s) + walk(n));
      else if (tag === 'UL' || tag === 'OL') {
        let k = 0;
        for (const li of n.children) s = nl(nl(s) + (tag === 'OL' ? `${++k}. ` : '- ') + walk(li).replace(/\n+$/, '').replace(/\n/g, '\n   '));
      } else if (tag === 'BLOCKQUOTE') {
        s = nl(nl(s) + walk(n).replace(/\n+$/, '').split('\n').map((l) => (l ? `> ${l}` : '>')).join('\n'));
      } else if (tag === 'A') {
        const t = walk(n);
        const href = n.getAttribute('href') || '';
        s += href && href !== t && href !== `mailto:${t}` ? `${t} <${href}>` : t;
      } else s += walk(n);
    }
    return s;
  };
  return walk(doc.body).replace(/\u00a0/g, ' ').replace(/\n+$/, '\n');
}
