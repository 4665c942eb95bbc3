// jmap.js - the webmail's JMAP client (RFC 8620/8621): the session, method
// calls, and push over EventSource. Authenticated by the session cookie
// (HttpOnly: never seen here) plus the CSRF token on every POST. Every URL
// is taken same-origin (the session's paths on this page's host).

const USING = ['urn:ietf:params:jmap:core', 'urn:ietf:params:jmap:mail',
  'urn:ietf:params:jmap:submission', 'urn:ietf:params:jmap:vacationresponse'];

export class AuthError extends Error {}

export class Jmap {
  constructor(csrf) {
    this.csrf = csrf;
  }

  static path(url) {
    return new URL(url, location.href).pathname;
  }

  // The session resource (RFC 8620 2) of account: kept for this tab (sessionStorage), so a
  // reload goes straight to its first JMAP request. It names URLs and the account, no secret;
  // this.cached says it came from there or from given (the sign-in's answer carries it), and
  // forget() drops it: the caller asks again when a call made with it fails.
  async init(account, given) {
    const key = `wharf.jmap-session.${account}`;
    this.sessionKey = key;
    let s = null;
    try { s = JSON.parse(sessionStorage.getItem(key)); } catch { s = null; }
    if (!(s && s.primaryAccounts) && given && given.primaryAccounts) {
      s = given;
      sessionStorage.setItem(key, JSON.stringify(s));
    }
    this.cached = !!(s && s.primaryAccounts);
    if (!this.cached) {
      const r = await fetch('/.well-known/jmap', { credentials: 'same-origin', headers: { 'X-Wharf-CSRF': this.csrf } });
      if (r.status === 401) throw new AuthError('signed out');
      if (!r.ok) throw new Error(`session: ${r.status}`);
      s = await r.json();
      sessionStorage.setItem(key, JSON.stringify(s));
    }
    this.session = s;
    this.accountId = s.primaryAccounts['urn:ietf:params:jmap:mail'];
    this.apiPath = Jmap.path(s.apiUrl);
    this.downloadTemplate = s.downloadUrl;
    this.uploadPath = Jmap.path(s.uploadUrl.replace('{accountId}', encodeURIComponent(this.accountId)));
    this.maxSizeUpload = s.capabilities['urn:ietf:params:jmap:core'].maxSizeUpload;
    this.eventSourcePath = Jmap.path(s.eventSourceUrl.split('?')[0].replace(/\{[^}]*\}/g, ''));
  }

  forget() {
    sessionStorage.removeItem(this.sessionKey);
  }

  // The accounts others share with the user (RFC 8620 2: isPersonal false), by name:
  // [{id, name, isReadOnly}], the public folders last.
  sharedAccounts() {
    return Object.entries(this.session.accounts)
      .filter(([id, a]) => id !== this.accountId && !a.isPersonal && a.accountCapabilities['urn:ietf:params:jmap:mail'])
      .map(([id, a]) => ({ id, name: a.name, isReadOnly: a.isReadOnly, isPublic: a.name === 'Public folders' }))
      .sort((x, y) => (x.isPublic - y.isPublic) || (x.name < y.name ? -1 : 1));
  }

  // calls: [[name, args, tag], ...] on accountId (the user's own by default; a call's own
  // accountId wins); returns {tag: args} of the responses (errors throw).
  async call(calls, accountId = this.accountId) {
    const body = JSON.stringify({
      using: USING,
      methodCalls: calls.map(([n, a, t]) => [n, { accountId, ...a }, t]),
    });
    const r = await fetch(this.apiPath, {
      method: 'POST', credentials: 'same-origin', body,
      headers: { 'Content-Type': 'application/json', 'X-Wharf-CSRF': this.csrf },
    });
    if (r.status === 401) throw new AuthError('signed out');
    if (!r.ok) throw new Error(`JMAP: ${r.status}`);
    const out = {};
    const res = await r.json();
    // the accounts shared with the user changed (a share given or taken back): onSession,
    // once per new state (should the session resource lag, no reload after every call)
    if (this.session && res.sessionState !== this.session.state && res.sessionState !== this.seenState && this.onSession) {
      this.seenState = res.sessionState;
      this.onSession();
    }
    for (const [name, args, tag] of res.methodResponses) {
      // a call tagged "...?" may fail: its error object ({type}) is then its answer
      if (name === 'error' && tag.endsWith('?')) out[tag] = { error: args };
      else if (name === 'error') throw new Error(`${tag}: ${args.type} ${args.description || ''}`);
      else out[tag] = args;
    }
    return out;
  }

  downloadUrl(blobId, name, type, accountId = this.accountId) {
    const u = this.downloadTemplate
      .replace('{accountId}', encodeURIComponent(accountId))
      .replace('{blobId}', encodeURIComponent(blobId))
      .replace('{name}', encodeURIComponent(name || 'attachment'))
      .replace('{type}', encodeURIComponent(type || 'application/octet-stream'));
    const p = new URL(u, location.href);
    return p.pathname + p.search;
  }

  // Uploads a file (RFC 8620 6.1); resolves to {blobId, type, size}. XMLHttpRequest, not
  // fetch, for its upload progress: onProgress(fraction).
  upload(blob, type, onProgress) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open('POST', this.uploadPath);
      x.withCredentials = true;
      x.setRequestHeader('X-Wharf-CSRF', this.csrf);
      x.setRequestHeader('Content-Type', type || 'application/octet-stream');
      x.upload.onprogress = (ev) => { if (ev.lengthComputable && onProgress) onProgress(ev.loaded / ev.total); };
      x.onload = () => {
        if (x.status === 401) reject(new AuthError('signed out'));
        else if (x.status >= 200 && x.status < 300) resolve(JSON.parse(x.responseText));
        else reject(new Error(`upload: ${x.status}`));
      };
      x.onerror = () => reject(new Error('upload failed'));
      x.send(blob);
    });
  }

  // fn() on every state change of the account (new mail, flags, moves by anyone), and of
  // the accounts shared with the user (the server tells only of the mailboxes the user may
  // see). The server learns the shares when the stream opens: listen again (relisten) once
  // the session says they changed.
  listen(fn) {
    this.close();
    this.onState = fn;
    const es = new EventSource(`${this.eventSourcePath}?types=*&closeafter=no&ping=60`);
    es.addEventListener('state', () => fn());
    this.es = es;
  }

  relisten() {
    if (this.onState) this.listen(this.onState);
  }

  close() {
    if (this.es) this.es.close();
    this.es = null;
  }
}
