// app.js - Wharf Mail, the webmail (doc/webmail.md): sign-in, folders,
// a virtual message list, the reading pane, compose, live updates. Talks
// to the server through JMAP only (jmap.js); HTML mail goes through
// render.js. No framework: the DOM of index.html, filled here.

import { Jmap, AuthError } from './jmap.js';
import { sanitize, frameDocument } from './render.js';

const $ = (id) => document.getElementById(id);
const ROW = 64;         // px per message row (style.css .row)
const PAGE = 50;        // messages fetched per Email/query page
const ROLE_ORDER = ['inbox', 'drafts', 'sent', 'archive', 'junk', 'trash'];
// Symbols every system font has (no emoji font, no icon font, nothing remote).
const ROLE_ICON = { inbox: '↓', drafts: '✎', sent: '↑', archive: '▤', junk: '⚠', trash: '✕' };
const LIST_PROPS = ['from', 'subject', 'receivedAt', 'keywords', 'preview', 'hasAttachment', 'mailboxIds'];

const st = {
  jmap: null, account: '', mailboxes: [], byRole: {}, current: null,
  total: 0, ids: [], emails: new Map(), pages: new Set(), selected: null, open: null,
  allowImages: false,
};

function text(el, s) { el.textContent = s == null ? '' : String(s); }
function addr(list) { return (list || []).map((a) => (a.name ? `${a.name} <${a.email}>` : a.email)).join(', '); }
function parseAddrs(s) {
  return s.split(/[,;]/).map((x) => x.trim()).filter(Boolean).map((x) => {
    const m = x.match(/^(.*)<([^>]+)>$/);
    return m ? { name: m[1].trim().replace(/^"|"$/g, ''), email: m[2].trim() } : { email: x };
  });
}
function fmtDate(iso) {
  const d = new Date(iso);
  const now = new Date();
  return d.toDateString() === now.toDateString()
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString();
}

// ---- sign-in ----

async function csrfPost(path) {
  return fetch(path, { method: 'POST', credentials: 'same-origin', headers: { 'X-Wharf-CSRF': st.jmap ? st.jmap.csrf : '' } });
}

function showSignIn(msg) {
  if (st.jmap) st.jmap.close();
  st.jmap = null;
  $('app').hidden = true;
  $('signin').hidden = false;
  text($('signin-error'), msg || '');
  document.title = 'Wharf Mail';
  $('signin-user').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const username = $('signin-user').value;
  const password = $('signin-pass').value;
  $('signin-pass').value = ''; // the page keeps no password once it is sent
  text($('signin-error'), '');
  $('signin-submit').disabled = true;
  try {
    const r = await fetch('/webmail/session', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) { text($('signin-error'), j.error || `sign-in failed (${r.status})`); return; }
    await start(j.account, j.csrf);
  } catch (e) {
    text($('signin-error'), String(e.message || e));
  } finally {
    $('signin-submit').disabled = false;
  }
}

async function signOut() {
  await csrfPost('/webmail/signout');
  showSignIn('Signed out.');
}

// Any call that meets a 401 goes back to the sign-in form.
async function guard(p) {
  try { return await p; } catch (e) {
    if (e instanceof AuthError) showSignIn('Your session has ended: sign in again.');
    else console.error(e);
    return null;
  }
}

async function start(account, csrf) {
  st.account = account;
  st.jmap = new Jmap(csrf);
  await st.jmap.init();
  $('signin').hidden = true;
  $('app').hidden = false;
  text($('who'), account);
  await loadMailboxes();
  const ids = await st.jmap.call([['Identity/get', {}, 'i']]);
  st.identity = ids.i.list[0];
  const inbox = st.byRole.inbox || st.mailboxes[0];
  if (inbox) await selectMailbox(inbox.id);
  st.jmap.listen(() => guard(refresh()));
}

// ---- folders ----

async function loadMailboxes() {
  const r = await st.jmap.call([['Mailbox/get', { properties: ['name', 'role', 'parentId', 'unreadEmails', 'totalEmails', 'sortOrder'] }, 'm']]);
  st.mailboxes = r.m.list;
  st.byRole = {};
  for (const m of st.mailboxes) if (m.role) st.byRole[m.role] = m;
  renderFolders();
}

function folderKey(m) {
  const i = ROLE_ORDER.indexOf(m.role);
  return [i < 0 ? 99 : i, m.sortOrder || 0, m.name.toLowerCase()];
}

function renderFolders() {
  const ul = $('folder-list');
  ul.replaceChildren();
  const kids = (pid) => st.mailboxes.filter((m) => (m.parentId || null) === pid)
    .sort((a, b) => { const x = folderKey(a), y = folderKey(b); return x[0] - y[0] || x[1] - y[1] || (x[2] < y[2] ? -1 : 1); });
  const build = (pid, into) => {
    for (const m of kids(pid)) {
      const li = document.createElement('li');
      li.setAttribute('role', 'treeitem');
      const b = document.createElement('button');
      b.dataset.id = m.id;
      b.setAttribute('aria-current', String(st.current === m.id));
      const icon = document.createElement('span');
      icon.setAttribute('aria-hidden', 'true');
      text(icon, ROLE_ICON[m.role] || '▸');
      const name = document.createElement('span');
      text(name, m.name);
      b.append(icon, name);
      if (m.unreadEmails > 0) {
        const c = document.createElement('span');
        c.className = 'count';
        text(c, m.unreadEmails);
        b.append(c);
      }
      b.setAttribute('aria-label', `${m.name}${m.unreadEmails ? `, ${m.unreadEmails} unread` : ''}`);
      b.addEventListener('click', () => { $('app').classList.remove('show-folders'); guard(selectMailbox(m.id)); });
      b.addEventListener('dragover', (ev) => {
        if (!ev.dataTransfer.types.includes('application/x-wharf-email')) return;
        ev.preventDefault();
        b.classList.add('drop');
      });
      b.addEventListener('dragleave', () => b.classList.remove('drop'));
      b.addEventListener('drop', (ev) => {
        ev.preventDefault();
        b.classList.remove('drop');
        const id = ev.dataTransfer.getData('application/x-wharf-email');
        if (id) guard(moveEmail(id, m.id));
      });
      li.append(b);
      if (kids(m.id).length) { const sub = document.createElement('ul'); sub.setAttribute('role', 'group'); build(m.id, sub); li.append(sub); }
      into.append(li);
    }
  };
  build(null, ul);
  showFolderActions();
  const inbox = st.byRole.inbox;
  document.title = inbox && inbox.unreadEmails ? `(${inbox.unreadEmails}) Wharf Mail` : 'Wharf Mail';
}

// ---- folder management: create, rename, move (a new parent), delete ----

function currentFolder() {
  return st.mailboxes.find((m) => m.id === st.current) || null;
}

// Folders with a role (Inbox, Sent, ...) are the client's and the server's landmarks: kept.
function showFolderActions() {
  const m = currentFolder();
  $('f-rename').disabled = !m || !!m.role;
  $('f-delete').disabled = !m || !!m.role;
}

function folderDialog(kind) {
  const m = currentFolder();
  st.folderEdit = kind === 'rename' ? m : null;
  text($('f-title'), kind === 'rename' ? `Rename “${m.name}”` : 'New folder');
  text($('f-error'), '');
  $('f-name').value = kind === 'rename' ? m.name : '';
  const sel = $('f-parent');
  sel.replaceChildren();
  const top = document.createElement('option');
  top.value = '';
  text(top, '(top level)');
  sel.append(top);
  // not inside itself or its own subfolders
  const banned = new Set();
  if (kind === 'rename') {
    banned.add(m.id);
    let grew = true;
    while (grew) {
      grew = false;
      for (const x of st.mailboxes) if (x.parentId && banned.has(x.parentId) && !banned.has(x.id)) { banned.add(x.id); grew = true; }
    }
  }
  for (const x of st.mailboxes) {
    if (banned.has(x.id)) continue;
    const o = document.createElement('option');
    o.value = x.id;
    text(o, x.name);
    sel.append(o);
  }
  sel.value = kind === 'rename' ? (m.parentId || '') : '';
  $('folder-dialog').showModal();
  $('f-name').focus();
}

async function saveFolder(ev) {
  ev.preventDefault();
  const props = { name: $('f-name').value.trim(), parentId: $('f-parent').value || null };
  if (!props.name) return;
  const m = st.folderEdit;
  const r = await st.jmap.call([['Mailbox/set', m ? { update: { [m.id]: props } } : { create: { f: props } }, 's']]);
  const err = m ? (r.s.notUpdated || {})[m.id] : (r.s.notCreated || {}).f;
  if (err) { text($('f-error'), err.description || err.type); return; }
  $('folder-dialog').close();
  await loadMailboxes();
  if (!m) await selectMailbox(r.s.created.f.id);
}

async function deleteFolder() {
  const m = currentFolder();
  if (!m || m.role) return;
  const n = m.totalEmails || 0;
  if (!window.confirm(n ? `Delete “${m.name}” and its ${n} message(s)?` : `Delete “${m.name}”?`)) return;
  const r = await st.jmap.call([['Mailbox/set', { destroy: [m.id], onDestroyRemoveEmails: true }, 's']]);
  const err = (r.s.notDestroyed || {})[m.id];
  if (err) { window.alert(`Not deleted: ${err.description || err.type}`); return; }
  await loadMailboxes();
  await selectMailbox((st.byRole.inbox || st.mailboxes[0]).id);
}

// ---- the message list: Email/query pages on demand, only the visible rows in the DOM ----

// The list shows a folder, or a search (st.search: the JMAP filter) in it or everywhere.
function listFilter() {
  return st.search || { inMailbox: st.current };
}

// "from:ann to:bob subject:plan crane" -> a JMAP FilterOperator (RFC 8621 4.4.1); quotes keep spaces.
function searchFilter(q, inMailbox) {
  const conds = [];
  const words = [];
  for (const m of q.matchAll(/(?:(from|to|cc|subject|body):)?(?:"([^"]*)"|(\S+))/gi)) {
    const value = m[2] !== undefined ? m[2] : m[3];
    if (!value) continue;
    if (m[1]) conds.push({ [m[1].toLowerCase()]: value });
    else words.push(value);
  }
  if (words.length) conds.push({ text: words.join(' ') });
  if (inMailbox) conds.push({ inMailbox });
  return conds.length === 1 ? conds[0] : { operator: 'AND', conditions: conds };
}

async function search(ev) {
  ev.preventDefault();
  const q = $('q').value.trim();
  if (!q) { clearSearch(); return; }
  const all = $('q-scope').value === 'all';
  st.search = searchFilter(q, all ? null : st.current);
  const where = all ? 'all folders' : (st.mailboxes.find((m) => m.id === st.current) || {}).name;
  text($('list-search-text'), `Results for “${q}” in ${where}`);
  $('list-search').hidden = false;
  closeReader();
  $('list').scrollTop = 0;
  await reloadList();
}

function clearSearch() {
  st.search = null;
  $('q').value = '';
  $('list-search').hidden = true;
  guard(reloadList());
}

async function selectMailbox(id) {
  st.search = null;
  $('q').value = '';
  $('list-search').hidden = true;
  st.current = id;
  resetList();
  st.selected = null;
  $('list').scrollTop = 0;
  renderFolders();
  await reloadList();
}

// Forgets the loaded pages; answers to requests made before are dropped (st.gen).
function resetList() {
  st.gen = (st.gen || 0) + 1;
  st.emails = new Map();
  st.pages = new Set();
  st.ids = [];
}

async function reloadList() {
  resetList();
  await fetchPage(0, true);
  renderRows();
}

async function fetchPage(n, withTotal) {
  if (st.pages.has(n)) return;
  st.pages.add(n);
  const gen = st.gen;
  const r = await st.jmap.call([
    ['Email/query', { filter: listFilter(), sort: [{ property: 'receivedAt', isAscending: false }], position: n * PAGE, limit: PAGE, calculateTotal: !!withTotal }, 'q'],
    ['Email/get', { '#ids': { resultOf: 'q', name: 'Email/query', path: '/ids' }, properties: LIST_PROPS }, 'g'],
  ]);
  if (gen !== st.gen) return;
  if (withTotal) st.total = r.q.total;
  r.q.ids.forEach((id, i) => { st.ids[r.q.position + i] = id; });
  for (const e of r.g.list) st.emails.set(e.id, e);
}

function renderRows() {
  const list = $('list');
  $('list-spacer').style.height = `${st.total * ROW}px`;
  $('list-empty').hidden = st.total > 0;
  const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 5);
  const last = Math.min(st.total, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + 5);
  const rows = $('list-rows');
  rows.replaceChildren();
  const missing = new Set();
  for (let i = first; i < last; i++) {
    const id = st.ids[i];
    const e = id && st.emails.get(id);
    if (!e) { missing.add(Math.floor(i / PAGE)); continue; }
    rows.append(row(e, i));
  }
  for (const p of missing) {
    if (!st.pages.has(p)) guard(fetchPage(p).then(renderRows));
  }
}

function row(e, i) {
  const d = document.createElement('div');
  d.className = 'row';
  d.style.top = `${i * ROW}px`;
  d.setAttribute('role', 'option');
  d.dataset.id = e.id;
  const kw = e.keywords || {};
  if (!kw.$seen) d.classList.add('unread');
  d.setAttribute('aria-selected', String(st.selected === e.id));
  const from = (e.from && e.from[0]) ? (e.from[0].name || e.from[0].email) : '';
  const marks = `${kw.$flagged ? '⚑' : ''}${e.hasAttachment ? '⎘' : ''}`;
  d.setAttribute('aria-label', `${kw.$seen ? '' : 'Unread, '}${kw.$flagged ? 'flagged, ' : ''}${e.hasAttachment ? 'with attachment, ' : ''}from ${from}: ${e.subject || '(no subject)'}`);
  const l1 = document.createElement('div'); l1.className = 'line';
  const f = document.createElement('span'); f.className = 'from'; text(f, from);
  const m = document.createElement('span'); m.className = 'marks'; text(m, marks);
  const t = document.createElement('time'); text(t, fmtDate(e.receivedAt));
  l1.append(f, m, t);
  const s = document.createElement('div'); s.className = 'subject'; text(s, e.subject || '(no subject)');
  const p = document.createElement('div'); p.className = 'preview'; text(p, e.preview);
  d.append(l1, s, p);
  d.addEventListener('click', () => guard(openEmail(e.id)));
  d.draggable = true; // onto a folder: moved there
  d.addEventListener('dragstart', (ev) => {
    ev.dataTransfer.setData('application/x-wharf-email', e.id);
    ev.dataTransfer.effectAllowed = 'move';
  });
  return d;
}

// New mail, flags or moves by anyone: counts, the loaded pages, the open message.
// One refresh at a time; a change during one asks for one more after it.
let refreshing = null;
let again = false;
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    do { again = false; await refreshOnce(); } while (again && st.jmap);
  })();
  try { await refreshing; } finally { refreshing = null; }
}

async function refreshOnce() {
  if (!st.jmap) return;
  await loadMailboxes();
  const pages = [...st.pages].sort((a, b) => a - b);
  resetList();
  for (const [k, p] of pages.entries()) await fetchPage(p, k === 0);
  if (!pages.length) await fetchPage(0, true);
  renderRows();
}

// ---- reading ----

async function openEmail(id) {
  st.selected = id;
  st.allowImages = false;
  renderRows();
  const r = await st.jmap.call([['Email/get', {
    ids: [id],
    properties: ['from', 'to', 'cc', 'replyTo', 'subject', 'receivedAt', 'keywords', 'mailboxIds', 'messageId', 'references', 'textBody', 'htmlBody', 'attachments', 'bodyValues'],
    fetchTextBodyValues: true, fetchHTMLBodyValues: true, maxBodyValueBytes: 1048576,
  }, 'g']]);
  const e = r.g.list[0];
  if (!e) return;
  st.open = e;
  $('reader').hidden = false;
  $('app').classList.add('reading');
  text($('r-subject'), e.subject || '(no subject)');
  text($('r-from'), addr(e.from));
  text($('r-date'), new Date(e.receivedAt).toLocaleString());
  $('r-date').setAttribute('datetime', e.receivedAt);
  text($('r-to'), addr(e.to));
  showFlag(e);
  const inJunk = st.byRole.junk && e.mailboxIds[st.byRole.junk.id];
  text($('junk'), inJunk ? 'Not junk' : 'Junk');
  $('junk').setAttribute('aria-label', inJunk ? 'Not junk' : 'Mark as junk');
  showBody();
  const ul = $('r-attachments');
  ul.replaceChildren();
  for (const a of e.attachments || []) {
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.href = st.jmap.downloadUrl(a.blobId, a.name, a.type);
    link.setAttribute('download', a.name || 'attachment');
    text(link, `${a.name || 'attachment'} (${Math.ceil((a.size || 0) / 1024)} KB)`);
    li.append(link);
    ul.append(li);
  }
  if (!(e.keywords || {}).$seen) await setKeyword(e, '$seen', true);
}

function bodyText(e, parts) {
  return (parts || []).map((p) => (e.bodyValues[p.partId] || {}).value || '').join('\n');
}

function showBody() {
  const e = st.open;
  const html = (e.htmlBody || []).some((p) => p.type === 'text/html');
  $('r-text').hidden = html;
  $('r-html').hidden = !html;
  if (!html) {
    text($('r-text'), bodyText(e, e.textBody));
    $('r-images').hidden = true;
    return;
  }
  const { html: clean, remote } = sanitize(bodyText(e, e.htmlBody), st.allowImages);
  $('r-images').hidden = st.allowImages || remote === 0;
  $('r-html').srcdoc = frameDocument(clean, st.allowImages);
}

function showFlag(e) {
  const on = !!(e.keywords || {}).$flagged;
  $('flag').setAttribute('aria-pressed', String(on));
  text($('flag'), on ? 'Unflag' : 'Flag');
}

async function setKeyword(e, kw, on) {
  await st.jmap.call([['Email/set', { update: { [e.id]: { [`keywords/${kw}`]: on ? true : null } } }, 's']]);
  e.keywords = { ...(e.keywords || {}) };
  if (on) e.keywords[kw] = true; else delete e.keywords[kw];
  const listed = st.emails.get(e.id);
  if (listed) { listed.keywords = e.keywords; renderRows(); }
  showFlag(e);
}

async function deleteOpen() {
  const e = st.open;
  if (!e) return;
  const trash = st.byRole.trash;
  if (trash && !e.mailboxIds[trash.id]) {
    await st.jmap.call([['Email/set', { update: { [e.id]: { mailboxIds: { [trash.id]: true } } } }, 's']]);
  } else {
    await st.jmap.call([['Email/set', { destroy: [e.id] }, 's']]);
  }
  closeReader();
  await refresh();
}

// Moves a message into one folder (out of every other): a drop on a folder, Junk, Not junk.
async function moveEmail(id, mailboxId, keywords) {
  const update = { mailboxIds: { [mailboxId]: true } };
  for (const [k, on] of Object.entries(keywords || {})) update[`keywords/${k}`] = on ? true : null;
  await st.jmap.call([['Email/set', { update: { [id]: update } }, 's']]);
  if (st.open && st.open.id === id && !(st.search && !st.search.inMailbox)) closeReader();
  await refresh();
}

// Junk, or "Not junk" when the message is in Junk: moved, with the keywords spam filters learn from.
async function junkOpen() {
  const e = st.open;
  const junk = st.byRole.junk, inbox = st.byRole.inbox;
  if (!e || !junk || !inbox) return;
  if (e.mailboxIds[junk.id]) await moveEmail(e.id, inbox.id, { $junk: false, $notjunk: true });
  else await moveEmail(e.id, junk.id, { $junk: true, $notjunk: false });
}

function closeReader() {
  st.open = null;
  $('reader').hidden = true;
  $('app').classList.remove('reading');
}

// ---- compose ----

function compose(kind) {
  const e = st.open;
  $('c-form').reset();
  text($('c-error'), '');
  st.replyTo = null;
  if (kind === 'reply' && e) {
    $('c-to').value = addr(e.replyTo && e.replyTo.length ? e.replyTo : e.from);
    $('c-subject').value = /^re:/i.test(e.subject || '') ? e.subject : `Re: ${e.subject || ''}`;
    $('c-body').value = `\n\n${addr(e.from)} wrote:\n${bodyText(e, e.textBody).split('\n').map((l) => `> ${l}`).join('\n')}`;
    st.replyTo = e;
  } else if (kind === 'forward' && e) {
    $('c-subject').value = `Fwd: ${e.subject || ''}`;
    $('c-body').value = `\n\n---------- Forwarded message ----------\nFrom: ${addr(e.from)}\nSubject: ${e.subject || ''}\n\n${bodyText(e, e.textBody)}`;
  }
  text($('c-title'), kind === 'reply' ? 'Reply' : kind === 'forward' ? 'Forward' : 'New message');
  $('composer').showModal();
  (kind === 'reply' ? $('c-body') : $('c-to')).focus();
}

async function send(ev) {
  ev.preventDefault();
  const to = parseAddrs($('c-to').value);
  const cc = parseAddrs($('c-cc').value);
  if (!to.length) { text($('c-error'), 'Who is it for?'); return; }
  const sent = st.byRole.sent || st.byRole.drafts || st.byRole.inbox;
  const email = {
    mailboxIds: { [sent.id]: true },
    keywords: { $seen: true },
    from: [{ name: st.identity.name || '', email: st.identity.email }],
    to, subject: $('c-subject').value,
    textBody: [{ partId: '1', type: 'text/plain' }],
    bodyValues: { 1: { value: $('c-body').value } },
  };
  if (cc.length) email.cc = cc;
  if (st.replyTo && st.replyTo.messageId) {
    email.inReplyTo = st.replyTo.messageId;
    email.references = [...(st.replyTo.references || []), ...st.replyTo.messageId];
  }
  $('c-send').disabled = true;
  try {
    const r = await st.jmap.call([
      ['Email/set', { create: { c: email } }, 'e'],
      ['EmailSubmission/set', { create: { s: { emailId: '#c', identityId: st.identity.id } } }, 's'],
    ]);
    const err = (r.e.notCreated && r.e.notCreated.c) || (r.s.notCreated && r.s.notCreated.s);
    if (err) { text($('c-error'), `Not sent: ${err.description || err.type}`); return; }
    $('composer').close();
  } catch (e) {
    if (e instanceof AuthError) { $('composer').close(); showSignIn('Your session has ended: sign in again.'); }
    text($('c-error'), String(e.message || e));
  } finally {
    $('c-send').disabled = false;
  }
}

// ---- wiring ----

function wire() {
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', () => guard(signOut()));
  $('compose').addEventListener('click', () => compose('new'));
  $('reply').addEventListener('click', () => compose('reply'));
  $('forward').addEventListener('click', () => compose('forward'));
  $('c-form').addEventListener('submit', (ev) => guard(send(ev)));
  $('c-cancel').addEventListener('click', () => $('composer').close());
  $('flag').addEventListener('click', () => st.open && guard(setKeyword(st.open, '$flagged', !(st.open.keywords || {}).$flagged)));
  $('unread').addEventListener('click', () => st.open && guard(setKeyword(st.open, '$seen', false)));
  $('delete').addEventListener('click', () => guard(deleteOpen()));
  $('junk').addEventListener('click', () => guard(junkOpen()));
  $('search').addEventListener('submit', (ev) => guard(search(ev)));
  $('q-clear').addEventListener('click', clearSearch);
  $('f-new').addEventListener('click', () => folderDialog('new'));
  $('f-rename').addEventListener('click', () => folderDialog('rename'));
  $('f-delete').addEventListener('click', () => guard(deleteFolder()));
  $('f-form').addEventListener('submit', (ev) => guard(saveFolder(ev)));
  $('f-cancel').addEventListener('click', () => $('folder-dialog').close());
  $('back').addEventListener('click', closeReader);
  $('menu').addEventListener('click', () => $('app').classList.toggle('show-folders'));
  $('load-images').addEventListener('click', () => { st.allowImages = true; showBody(); });
  let pending = false;
  $('list').addEventListener('scroll', () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; renderRows(); });
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.target.closest('input, textarea, dialog') || $('app').hidden) return;
    if (ev.key === 'n') compose('new');
    else if (ev.key === 'r' && st.open) compose('reply');
    else if (ev.key === 'Delete' && st.open) guard(deleteOpen());
  });
}

async function boot() {
  wire();
  // X-Wharf-CSRF marks the app's requests: a 401 then carries no challenge (no browser prompt).
  const r = await fetch('/webmail/session', { credentials: 'same-origin', headers: { 'X-Wharf-CSRF': '-' } }).catch(() => null);
  if (r && r.ok) {
    const j = await r.json();
    if (j.csrf) { await guard(start(j.account, j.csrf)); return; }
  }
  showSignIn('');
}

boot();
