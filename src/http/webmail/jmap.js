// jmap.js - the webmail's JMAP client (RFC 8620/8621): the session, method
// calls, and push over EventSource. Authenticated by the session cookie
// (HttpOnly: never seen here) plus the CSRF token on every POST. Every URL
// is taken same-origin (the session's paths on this page's host).

const USING = ['urn:ietf:params:jmap:core', 'urn:ietf:params:jmap:mail',
  'urn:ietf:params:jmap:submission'];

export class AuthError extends Error {}

export class Jmap {
  constructor(csrf) {
    this.csrf = csrf;
  }

  static path(url) {
    return new URL(url, location.href).pathname;
  }

  async init() {
    const r = await fetch('/.well-known/jmap', { credentials: 'same-origin', headers: { 'X-Wharf-CSRF': this.csrf } });
    if (r.status === 401) throw new AuthError('signed out');
    if (!r.ok) throw new Error(`session: ${r.status}`);
    const s = await r.json();
    this.session = s;
    this.accountId = s.primaryAccounts['urn:ietf:params:jmap:mail'];
    this.apiPath = Jmap.path(s.apiUrl);
    this.downloadTemplate = s.downloadUrl;
    this.eventSourcePath = Jmap.path(s.eventSourceUrl.split('?')[0].replace(/\{[^}]*\}/g, ''));
  }

  // calls: [[name, args, tag], ...]; returns {tag: args} of the responses (errors throw).
  async call(calls) {
    const body = JSON.stringify({
      using: USING,
      methodCalls: calls.map(([n, a, t]) => [n, { accountId: this.accountId, ...a }, t]),
    });
    const r = await fetch(this.apiPath, {
      method: 'POST', credentials: 'same-origin', body,
      headers: { 'Content-Type': 'application/json', 'X-Wharf-CSRF': this.csrf },
    });
    if (r.status === 401) throw new AuthError('signed out');
    if (!r.ok) throw new Error(`JMAP: ${r.status}`);
    const out = {};
    for (const [name, args, tag] of (await r.json()).methodResponses) {
      if (name === 'error') throw new Error(`${tag}: ${args.type} ${args.description || ''}`);
      out[tag] = args;
    }
    return out;
  }

  downloadUrl(blobId, name, type) {
    const u = this.downloadTemplate
      .replace('{accountId}', encodeURIComponent(this.accountId))
      .replace('{blobId}', encodeURIComponent(blobId))
      .replace('{name}', encodeURIComponent(name || 'attachment'))
      .replace('{type}', encodeURIComponent(type || 'application/octet-stream'));
    const p = new URL(u, location.href);
    return p.pathname + p.search;
  }

  // fn() on every state change of the account (new mail, flags, moves by anyone).
  listen(fn) {
    const es = new EventSource(`${this.eventSourcePath}?types=*&closeafter=no&ping=60`);
    es.addEventListener('state', () => fn());
    this.es = es;
  }

  close() {
    if (this.es) this.es.close();
  }
}
