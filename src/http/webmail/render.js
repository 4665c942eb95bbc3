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
