// app.js - Wharf Mail, the webmail (doc/webmail.md): sign-in, folders,
// a virtual message list, the reading pane, compose, live updates. Talks
// to the server through JMAP only (jmap.js); HTML mail goes through
// render.js. No framework: the DOM of index.html, filled here.

import { Jmap, AuthError } from './jmap.js';
import { sanitize, frameDocument, cidsOf, sanitizeCompose, textToHtml, htmlToText } from './render.js';
import { t, language, locale, setLanguage, LANGUAGES } from './i18n.js';

const $ = (id) => document.getElementById(id);
const ROW = 64;         // px per message row (style.css .row)
const PAGE = 50;        // messages fetched per Email/query page
const ROLE_ORDER = ['inbox', 'drafts', 'sent', 'archive', 'junk', 'trash'];
// Symbols every system font has (no emoji font, no icon font, nothing remote).
const ROLE_ICON = { inbox: '↓', drafts: '✎', sent: '↑', archive: '▤', junk: '⚠', trash: '✕' };
const LIST_PROPS = ['from', 'subject', 'receivedAt', 'keywords', 'preview', 'hasAttachment', 'mailboxIds', 'threadId', 'size'];
const SET_CHUNK = 256;
const SETTINGS_KW = '$wharfsettings'; // the settings message (loadSettings)
const INLINE_MAX = 5 * 1024 * 1024;     // largest cid: image shown inline
const SOURCE_SHOWN = 1024 * 1024;
const ATTACHMENTS_SHOWN = 100;         // links under a message; a message of 5,000 parts says how many more      // "Show source" shows this much; the rest downloads  // Email/set updates per request (under the server's maxObjectsInSet)

const st = {
  jmap: null, account: '', mailboxes: [], byRole: {}, current: null,
  total: 0, ids: [], emails: new Map(), pages: new Set(), selected: null, open: null,
  allowImages: false,
  // conversations: threadId -> its emailIds (Thread/get), for the rows loaded
  threads: new Map(),
  // multi-select: the rows (each a conversation) picked; selAll: every row of the list
  sel: new Set(), selAll: false, anchor: -1, openSeq: 0,
  sort: { property: 'receivedAt', isAscending: false },
};

function text(el, s) { el.textContent = s == null ? '' : String(s); }
function addr(list) { return (list || []).map((a) => (a.name ? `${a.name} <${a.email}>` : a.email)).join(', '); }
function parseAddrs(s) {
  return s.split(/[,;]/).map((x) => x.trim()).filter(Boolean).map((x) => {
    const m = x.match(/^(.*)<([^>]+)>$/);
    return m ? { name: m[1].trim().replace(/^"|"$/g, ''), email: m[2].trim() } : { email: x };
  });
}
// Dates in the time zone of the settings (the browser's when none is chosen).
function zone() {
  return (st.settings && st.settings.timeZone) || undefined;
}
// A row's date through formatters made once per zone and language (what toLocaleDateString
// and toLocaleTimeString make on every call: three per row, the list's costliest step).
const rowFormats = new Map();
function fmtDate(iso) {
  const z = zone();
  const l = locale();
  const key = `${z || ''} ${l}`;
  let f = rowFormats.get(key);
  if (!f) {
    f = {
      day: new Intl.DateTimeFormat('en-CA', { timeZone: z }), // a day's key, never shown
      time: new Intl.DateTimeFormat(l, { hour: '2-digit', minute: '2-digit', timeZone: z }),
      date: new Intl.DateTimeFormat(l, { timeZone: z }),
    };
    rowFormats.set(key, f);
  }
  const d = new Date(iso);
  return f.day.format(d) === f.day.format(new Date()) ? f.time.format(d) : f.date.format(d);
}
function fmtFull(iso) {
  return new Date(iso).toLocaleString(locale(), { timeZone: zone(), timeZoneName: 'short' });
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
  // while the form waits for the user: the list's date formatters made (the first one in a
  // browser process loads the locale's data, tens of ms), not after the sign-in
  (window.requestIdleCallback || setTimeout)(() => fmtDate(new Date().toISOString()));
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
    if (!r.ok) { text($('signin-error'), j.error || t('sign-in failed ({status})', { status: r.status })); return; }
    await start(j.account, j.csrf, j);
  } catch (e) {
    text($('signin-error'), String(e.message || e));
  } finally {
    $('signin-submit').disabled = false;
  }
}

async function signOut() {
  await csrfPost('/webmail/signout');
  showSignIn(t('Signed out.'));
}

// Any call that meets a 401 goes back to the sign-in form.
async function guard(p) {
  try { return await p; } catch (e) {
    if (e instanceof AuthError) showSignIn(t('Your session has ended: sign in again.'));
    else console.error(e);
    return null;
  }
}

// The Inbox's id, kept per account in this browser: with it, start-up asks for the
// folders and the Inbox's first page in one request (a mailbox id never changes).
const INBOX_KEY = (account) => `wharf.inbox.${account}`;

// signedIn: the sign-in's answer, which may carry the JMAP session resource and the Inbox's
// id (a first sign-in in this browser then needs no more than one request to its rows).
async function start(account, csrf, signedIn = {}) {
  st.account = account;
  st.jmap = new Jmap(csrf);
  await st.jmap.init(account, signedIn.jmapSession);
  // folders, identities, settings and (when this browser knows the Inbox) the Inbox's first
  // page in one request: one round trip to the rows on screen
  const guess = localStorage.getItem(INBOX_KEY(account)) || signedIn.inbox;
  st.jmap.onSession = () => guard(reloadSession());
  const calls = [...mailboxCalls(), ...IDENTITY_CALLS, ...SETTINGS_CALLS];
  if (guess) calls.push(...pageCalls(0, true, 'p', guess));
  // sent before the app is drawn: its first drawing (style, layout) happens while the
  // server answers, not before the request leaves
  const answer = st.jmap.call(calls);
  fmtDate(new Date().toISOString()); // a reload's date formatters made meanwhile too
  $('signin').hidden = true;
  $('app').hidden = false;
  text($('who'), account);
  if (guess) {
    showMailbox(guess);
    st.pages.add(0);
  }
  const gen = st.gen;
  let r;
  try {
    r = await answer;
  } catch (e) {
    if (e instanceof AuthError || !(guess || st.jmap.cached)) throw e;
    // a folder gone or a session resource out of date: ask again without them
    localStorage.removeItem(INBOX_KEY(account));
    st.jmap.forget();
    return start(account, csrf); // without the sign-in's guesses either
  }
  applySettings(r);
  // the user's language (from another browser, or a first sign-in here) before the app is drawn
  if (st.settings.lang !== language()) await useLanguage(st.settings.lang, false);
  applyMailboxes(r);
  applyIdentities(r);
  const inbox = st.byRole.inbox || st.mailboxes[0];
  if (inbox) localStorage.setItem(INBOX_KEY(account), inbox.id);
  if (inbox && gen === st.gen) { // else a folder was picked meanwhile: that one stays
    if (inbox.id === guess) {
      applyPage(r, true, 'p');
      renderRows();
    } else await selectMailbox(inbox.id);
  }
  st.jmap.listen(() => guard(refresh()));
}

// ---- settings kept on the server, where any JMAP or IMAP client of the user can reach them:
// one message (JSON body) with the keyword $wharfsettings in Drafts, hidden from the list ----

const SETTINGS_CALLS = [
  ['Email/query', { filter: { hasKeyword: SETTINGS_KW }, limit: 1 }, 'sq'],
  ['Email/get', { '#ids': { resultOf: 'sq', name: 'Email/query', path: '/ids' }, properties: ['textBody', 'bodyValues'], fetchTextBodyValues: true }, 'sg'],
];

function applySettings(r) {
  const e = r.sg.list[0];
  st.settingsId = e ? e.id : null;
  let s = {};
  try { s = e ? JSON.parse(bodyText(e, e.textBody)) : {}; } catch { s = {}; }
  if (!s || typeof s !== 'object') s = {};
  if (!Array.isArray(s.imagesFrom)) s.imagesFrom = [];
  if (!['never', 'ask', 'always'].includes(s.images)) s.images = 'ask';
  if (typeof s.timeZone !== 'string' || !validZone(s.timeZone)) s.timeZone = '';
  if (!Object.hasOwn(LANGUAGES, s.lang)) s.lang = 'en';
  st.settings = s;
}

// ---- language (i18n.js): the settings message's "lang"; this browser also keeps the last
// one, so that a reload or the sign-in page is drawn in it at once ----

const LANG_KEY = 'wharf.lang';

// The page in language code; redraw: what app.js drew is drawn again in it (the folders,
// the rows and their dates, the selection, the search line, the open conversation).
async function useLanguage(code, redraw = true) {
  await setLanguage(code);
  localStorage.setItem(LANG_KEY, language());
  if (!redraw || !st.jmap) return;
  notice('');
  renderFolders();
  showSelection(); // its count, and the rows
  if (st.search && st.searchWords) searchBanner();
  if (st.open) {
    const id = st.open.id;
    await openThread(openRow());
    if (st.open && st.open.id !== id) await showMessage(id);
  }
}

function fillLanguages() {
  const sel = $('set-lang');
  if (sel.options.length) return;
  for (const [code, name] of Object.entries(LANGUAGES)) {
    const o = document.createElement('option');
    o.value = code;
    o.lang = code; // each named in itself
    text(o, name);
    sel.append(o);
  }
}

function validZone(z) {
  try {
    new Intl.DateTimeFormat('en', { timeZone: z || undefined });
    return true;
  } catch {
    return false;
  }
}

// A message cannot change: a new one replaces the old in the same call.
async function saveSettings() {
  const box = st.byRole.drafts || st.byRole.inbox;
  const args = {
    create: { s: {
      mailboxIds: { [box.id]: true },
      keywords: { [SETTINGS_KW]: true, $seen: true },
      from: [{ email: st.identity.email }],
      subject: 'Wharf Mail settings',
      textBody: [{ partId: '1', type: 'text/plain' }],
      bodyValues: { 1: { value: JSON.stringify(st.settings, null, 1) } },
    } },
  };
  if (st.settingsId) args.destroy = [st.settingsId];
  const r = await st.jmap.call([['Email/set', args, 's']]);
  if (r.s.created && r.s.created.s) st.settingsId = r.s.created.s.id;
}

function senderOf(e) {
  return ((e.from && e.from[0] && e.from[0].email) || '').toLowerCase();
}

// The remote-image policy of the settings: never, ask (per message, or always for a
// sender), always.
function imagesAllowed(e) {
  if (st.settings.images === 'never') return false;
  if (st.settings.images === 'always') return true;
  return st.allowImages || (!!senderOf(e) && st.settings.imagesFrom.includes(senderOf(e)));
}

async function alwaysImages() {
  const who = senderOf(st.open);
  if (!who) return;
  if (!st.settings.imagesFrom.includes(who)) st.settings.imagesFrom.push(who);
  await saveSettings();
  await showBody();
}

// ---- folders ----

const MAILBOX_PROPS = ['name', 'role', 'parentId', 'unreadEmails', 'totalEmails', 'sortOrder', 'myRights'];

// The folders of the user's account ('m') and of each account shared with them ('m.N?':
// a share taken back meanwhile answers accountNotFound, and is then left out).
function mailboxCalls() {
  st.shared = st.jmap.sharedAccounts();
  return [['Mailbox/get', { properties: MAILBOX_PROPS }, 'm'],
    ...st.shared.map((a, i) => ['Mailbox/get', { accountId: a.id, properties: MAILBOX_PROPS }, `m.${i}?`])];
}

async function loadMailboxes() {
  applyMailboxes(await st.jmap.call(mailboxCalls()));
}

// Each folder knows its account (acct) and, when shared, whose (shared): folder ids are
// unique across accounts (the store's), so st.current alone names the folder shown.
function applyMailboxes(r) {
  const own = st.jmap.accountId;
  st.mailboxes = r.m.list.map((m) => ({ ...m, acct: own, shared: null }));
  (st.shared || []).forEach((a, i) => {
    const x = r[`m.${i}?`];
    if (x && !x.error) st.mailboxes.push(...x.list.map((m) => ({ ...m, acct: a.id, shared: a })));
  });
  st.byRole = {};
  for (const m of st.mailboxes) if (m.role && !m.shared) st.byRole[m.role] = m;
  renderFolders();
}

// The session says the shares changed: the accounts again, then their folders; the folder
// shown, when it is gone with its share, gives way to the Inbox.
let sessionReload = null;
async function reloadSession() {
  if (sessionReload) return sessionReload;
  sessionReload = (async () => {
    st.jmap.forget(); // the session resource kept for this tab is out of date
    await st.jmap.init(st.account);
    st.jmap.relisten(); // the push of the accounts shared now
    await loadMailboxes();
    if (st.current && !currentFolder()) await selectMailbox((st.byRole.inbox || st.mailboxes[0]).id);
  })();
  try { await sessionReload; } finally { sessionReload = null; }
}

// The account of the folder shown (the user's own, or one shared with them): every call on
// the list and the reading pane goes there.
function acct() {
  const m = currentFolder();
  return m ? m.acct : st.jmap.accountId;
}

// The rights (RFC 8621 MailboxRights) on the folder shown; every right in the user's own.
function may(right) {
  const m = currentFolder();
  return !m || !m.shared || !!(m.myRights || {})[right];
}

function folderKey(m) {
  const i = ROLE_ORDER.indexOf(m.role);
  return [i < 0 ? 99 : i, m.sortOrder || 0, m.name.toLowerCase()];
}

function renderFolders() {
  const ul = $('folder-list');
  ul.replaceChildren();
  const kids = (acc, pid) => st.mailboxes.filter((m) => m.acct === acc && (m.parentId || null) === pid)
    .sort((a, b) => { const x = folderKey(a), y = folderKey(b); return x[0] - y[0] || x[1] - y[1] || (x[2] < y[2] ? -1 : 1); });
  const build = (acc, pid, into) => {
    for (const m of kids(acc, pid)) {
      const li = document.createElement('li');
      li.setAttribute('role', 'treeitem');
      const b = document.createElement('button');
      b.dataset.id = m.id;
      b.setAttribute('aria-current', String(st.current === m.id));
      const icon = document.createElement('span');
      icon.setAttribute('aria-hidden', 'true');
      text(icon, (!m.shared && ROLE_ICON[m.role]) || '▸');
      const name = document.createElement('span');
      text(name, m.name);
      b.append(icon, name);
      if (m.unreadEmails > 0) {
        const c = document.createElement('span');
        c.className = 'count';
        text(c, m.unreadEmails);
        b.append(c);
      }
      b.setAttribute('aria-label', m.unreadEmails ? t('{name}, {n} unread', { name: m.name, n: m.unreadEmails }) : m.name);
      b.addEventListener('click', () => { $('app').classList.remove('show-folders'); guard(selectMailbox(m.id)); });
      b.addEventListener('dragover', (ev) => {
        // a drop moves into a folder that takes mail (dropAction); into another account, a
        // copy when the folder shown keeps its messages
        const action = dropAction(m);
        if (!ev.dataTransfer.types.includes('application/x-wharf-email') || !action) return;
        ev.preventDefault();
        ev.dataTransfer.dropEffect = action;
        b.classList.add('drop');
      });
      b.addEventListener('dragleave', () => b.classList.remove('drop'));
      b.addEventListener('drop', (ev) => {
        ev.preventDefault();
        b.classList.remove('drop');
        const ids = ev.dataTransfer.getData('application/x-wharf-email');
        const action = dropAction(m);
        if (ids && action) guard(bulk(ids.split(','), action, m.id));
      });
      li.append(b);
      if (kids(acc, m.id).length) { const sub = document.createElement('ul'); sub.setAttribute('role', 'group'); build(acc, m.id, sub); li.append(sub); }
      into.append(li);
    }
  };
  build(st.jmap.accountId, null, ul);
  // the folders others share ("Shared by alice@example.org") and the public folders
  for (const a of st.shared || []) {
    if (!st.mailboxes.some((m) => m.acct === a.id)) continue;
    const li = document.createElement('li');
    li.setAttribute('role', 'treeitem');
    li.setAttribute('aria-expanded', 'true');
    li.className = 'shared';
    li.dataset.account = a.id;
    const h = document.createElement('span');
    h.className = 'section';
    text(h, a.isPublic ? t('Public folders') : t('Shared by {name}', { name: a.name }));
    h.title = h.textContent; // the whole name where the column cuts it
    const sub = document.createElement('ul');
    sub.setAttribute('role', 'group');
    sub.setAttribute('aria-label', h.textContent);
    build(a.id, null, sub);
    li.append(h, sub);
    ul.append(li);
  }
  showFolderActions();
  const inbox = st.byRole.inbox;
  document.title = inbox && inbox.unreadEmails ? `(${inbox.unreadEmails}) Wharf Mail` : 'Wharf Mail';
}

// ---- folder management: create, rename, move (a new parent), delete ----

function currentFolder() {
  return st.mailboxes.find((m) => m.id === st.current) || null;
}


// Folders with a role (Inbox, Sent, ...) are the client's and the server's landmarks: kept.
// In a shared folder its rights (myRights) decide; what they do not allow is off, and
// #f-why (the buttons' description) says why.
function showFolderActions() {
  const m = currentFolder();
  const r = m && m.shared ? m.myRights || {} : null;
  const can = {
    'f-new': !r || !!r.mayCreateChild,
    'f-rename': !!m && !m.role && (!r || !!r.mayRename),
    'f-delete': !!m && !m.role && (!r || !!r.mayDelete),
  };
  const words = { 'f-new': t('make folders in it'), 'f-rename': t('rename it'), 'f-delete': t('delete it') };
  const off = Object.keys(can).filter((k) => !can[k]);
  let why = '';
  if (m && r && off.length) {
    const what = { folder: m.name, owner: m.shared.name, what: off.map((k) => words[k]).join(', ') };
    why = m.shared.isPublic ? t('“{folder}” is the public folder: you may not {what}.', what)
      : t('“{folder}” is {owner}\'s folder: you may not {what} ({owner} decides).', what);
  } else if (m && m.role && !r) why = t('“{folder}” is a special folder: it is kept as it is.', { folder: m.name });
  for (const [k, on] of Object.entries(can)) {
    $(k).disabled = !on;
    $(k).title = on ? '' : why;
  }
  text($('f-why'), why);
  $('f-why').hidden = !(m && r && why); // a special folder's reason: the buttons' description only
  // the reading pane's actions where the folder's rights allow them (a shared folder)
  $('delete').disabled = !may('mayRemoveItems');
  $('flag').disabled = !may('maySetKeywords');
  $('unread').disabled = !may('maySetSeen');
  $('junk').hidden = !!(m && m.shared);
}

// Whether a folder takes mail from the user: their own, or a shared one with mayAddItems.
function takesMail(m) {
  return !m.shared || !!(m.myRights || {}).mayAddItems;
}

// Whether the rows shown may move to folder m: rights to take and give; into another account
// it is a copy and a removal (transfer).
function canMoveTo(m) {
  return m.id !== st.current && may('mayRemoveItems') && takesMail(m);
}

// Whether the rows shown may be copied to folder m: only into another account (Email/copy;
// within one, a message is in a folder or not).
function canCopyTo(m) {
  return m.acct !== acct() && takesMail(m);
}

// What dropping the rows shown on folder m does: 'move', 'copy' (into another account when
// the folder shown keeps its messages: a shared folder without mayRemoveItems), or null.
function dropAction(m) {
  if (canMoveTo(m)) return 'move';
  return canCopyTo(m) ? 'copy' : null;
}

// A folder's name where others of the same name may be: "Team (alice@example.org)".
function folderLabel(m) {
  return m.shared ? `${m.name} (${m.shared.isPublic ? t('public') : m.shared.name})` : m.name;
}

// A one-line message over the list (role=status): what an action did or why it did not.
function notice(msg) {
  text($('notice-text'), msg);
  $('notice').hidden = !msg;
}

function folderDialog(kind) {
  const m = currentFolder();
  st.folderEdit = kind === 'rename' ? m : null;
  // a new folder goes into the account of the folder shown; in a shared one, inside a folder
  // whose rights allow children (nothing is made at the top of another's account)
  const on = m && m.shared ? m : null;
  st.folderAcct = on ? on.acct : st.jmap.accountId;
  text($('f-title'), kind === 'rename' ? t('Rename “{folder}”', { folder: m.name }) : t('New folder'));
  text($('f-error'), '');
  $('f-name').value = kind === 'rename' ? m.name : '';
  const sel = $('f-parent');
  sel.replaceChildren();
  const top = document.createElement('option');
  top.value = '';
  text(top, on ? t('(where it is)') : t('(top level)'));
  if (!on || (kind === 'rename' && !m.parentId)) sel.append(top);
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
    if (banned.has(x.id) || x.acct !== st.folderAcct) continue;
    if (on && !(x.myRights || {}).mayCreateChild && !(kind === 'rename' && x.id === m.parentId)) continue;
    const o = document.createElement('option');
    o.value = x.id;
    text(o, x.name);
    sel.append(o);
  }
  sel.value = kind === 'rename' ? (m.parentId || '') : (on ? m.id : '');
  $('folder-dialog').showModal();
  $('f-name').focus();
}

async function saveFolder(ev) {
  ev.preventDefault();
  const name = $('f-name').value.trim();
  const parentId = $('f-parent').value || null;
  if (!name) return;
  const m = st.folderEdit;
  // a rename sends the parent only when it changes (in a shared account a new parent asks a right)
  const props = m && (m.parentId || null) === parentId ? { name } : { name, parentId };
  const r = await st.jmap.call([['Mailbox/set', m ? { update: { [m.id]: props } } : { create: { f: props } }, 's']], st.folderAcct);
  const err = m ? (r.s.notUpdated || {})[m.id] : (r.s.notCreated || {}).f;
  if (err) { text($('f-error'), err.type === 'forbidden' ? t('Not allowed: {why}', { why: err.description || t('no right to do this here') }) : err.description || err.type); return; }
  $('folder-dialog').close();
  await loadMailboxes();
  if (m) return;
  // in another's account too: a new folder starts with its parent's rights (the store copies
  // the parent's ACL), so the one who made it sees it at once
  const made = r.s.created.f.id;
  if (st.mailboxes.some((x) => x.id === made)) await selectMailbox(made);
}

async function deleteFolder() {
  const m = currentFolder();
  if (!m || m.role || (m.shared && !(m.myRights || {}).mayDelete)) return;
  const n = m.totalEmails || 0;
  // each question whole (a language may order it its own way), the owner a placeholder
  const v = { folder: m.name, n, owner: m.shared && m.shared.name };
  let ask;
  if (!m.shared) ask = n ? t('Delete “{folder}” and its {n} message(s)?', v) : t('Delete “{folder}”?', v);
  else if (m.shared.isPublic) ask = n ? t('Delete “{folder}” and its {n} message(s) from the public folders?', v) : t('Delete “{folder}” from the public folders?', v);
  else ask = n ? t('Delete “{folder}” and its {n} message(s) from {owner}\'s folders?', v) : t('Delete “{folder}” from {owner}\'s folders?', v);
  if (!window.confirm(ask)) return;
  const r = await st.jmap.call([['Mailbox/set', { destroy: [m.id], onDestroyRemoveEmails: true }, 's']], m.acct);
  const err = (r.s.notDestroyed || {})[m.id];
  if (err) { window.alert(t('Not deleted: {why}', { why: err.description || err.type })); return; }
  await loadMailboxes();
  await selectMailbox((st.byRole.inbox || st.mailboxes[0]).id);
}

// ---- the message list: Email/query pages on demand, only the visible rows in the DOM ----

// The list shows a folder, or a search (st.search: the JMAP filter) in it or everywhere.
// (mailbox: that folder's list instead, for a request made before the folder is shown)
function listFilter(mailbox) {
  const where = mailbox ? { inMailbox: mailbox } : st.search || { inMailbox: st.current };
  return { operator: 'AND', conditions: [where, { notKeyword: SETTINGS_KW }] };
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
  st.searchWords = { q, all };
  searchBanner();
  $('list-search').hidden = false;
  closeReader();
  clearSelection();
  $('list').scrollTop = 0;
  await reloadList();
}

// "Results for “crane” in Inbox" over the list (drawn again in another language).
function searchBanner() {
  const { q, all } = st.searchWords;
  const where = all ? t('all folders') : (st.mailboxes.find((m) => m.id === st.current) || {}).name;
  text($('list-search-text'), t('Results for “{q}” in {where}', { q, where }));
}

function clearSearch() {
  clearSelection();
  st.search = null;
  $('q').value = '';
  $('list-search').hidden = true;
  guard(reloadList());
}

async function selectMailbox(id) {
  showMailbox(id);
  await reloadList();
}

// The list set to folder id, empty (its pages not asked for yet).
function showMailbox(id) {
  // another folder's message does not stay in the pane (its actions would ask this folder's rights)
  if (id !== st.current) closeReader();
  notice('');
  clearSelection();
  st.search = null;
  $('q').value = '';
  $('list-search').hidden = true;
  st.current = id;
  resetList();
  st.selected = null;
  $('list').scrollTop = 0;
  renderFolders();
}

// Forgets the loaded pages; answers to requests made before are dropped (st.gen).
function resetList() {
  st.gen = (st.gen || 0) + 1;
  st.prev = null;
  st.emails = new Map();
  st.threads = new Map();
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
  const r = await st.jmap.call(pageCalls(n, withTotal, ''), acct());
  if (gen === st.gen) applyPage(r, withTotal, '');
}

// Page n of the list as three calls (tags suffixed by tag: several pages in one request).
function pageCalls(n, withTotal, tag, mailbox) {
  return [
    ['Email/query', { filter: listFilter(mailbox), sort: [st.sort], collapseThreads: true, position: n * PAGE, limit: PAGE, calculateTotal: !!withTotal }, `q${tag}`],
    ['Email/get', { '#ids': { resultOf: `q${tag}`, name: 'Email/query', path: '/ids' }, properties: LIST_PROPS }, `g${tag}`],
    ['Thread/get', { '#ids': { resultOf: `g${tag}`, name: 'Email/get', path: '/list/*/threadId' } }, `t${tag}`],
  ];
}

function applyPage(r, withTotal, tag) {
  const q = r[`q${tag}`];
  if (withTotal) st.total = q.total;
  q.ids.forEach((id, i) => { st.ids[q.position + i] = id; });
  for (const e of r[`g${tag}`].list) st.emails.set(e.id, e);
  for (const th of r[`t${tag}`].list) st.threads.set(th.id, th.emailIds);
}

// The Emails of a conversation (a row), or just the Email when its thread is not known.
function threadOf(id) {
  const e = st.emails.get(id) || (st.prev && st.prev.emails.get(id)) || (st.open && st.open.id === id ? st.open : null);
  return (e && (st.threads.get(e.threadId) || (st.prev && st.prev.threads.get(e.threadId)))) || [id];
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
    if (!e) {
      const old = st.prev && st.prev.emails.get(st.prev.ids[i]);
      if (old) rows.append(row(old, i)); // refreshing: the row as it was
      else missing.add(Math.floor(i / PAGE));
      continue;
    }
    rows.append(row(e, i));
  }
  for (const p of missing) {
    if (!st.pages.has(p)) guard(fetchPage(p).then(renderRows));
  }
}

// A paperclip drawn, not a character: no font the system is sure to have holds one
// (Debian's DejaVu has neither U+1F4CE nor U+2398: a missing-glyph box).
function clipIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'clip');
  svg.setAttribute('aria-hidden', 'true'); // the row's label says "with attachment"
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', 'M10.5 4.5v6.5a2.5 2.5 0 0 1-5 0V3.5a1.5 1.5 0 0 1 3 0V10a.5.5 0 0 1-1 0V4.5');
  svg.append(p);
  return svg;
}

function row(e, i) {
  const d = document.createElement('div');
  d.className = 'row';
  d.style.top = `${i * ROW}px`;
  d.setAttribute('role', 'option');
  d.dataset.id = e.id;
  const kw = e.keywords || {};
  if (!kw.$seen) d.classList.add('unread');
  d.setAttribute('aria-selected', String(st.selAll || st.sel.has(e.id)));
  const from = (e.from && e.from[0]) ? (e.from[0].name || e.from[0].email) : '';
  const n = threadOf(e.id).length;
  const label = [];
  if (!kw.$seen) label.push(t('Unread'));
  if (kw.$flagged) label.push(t('flagged'));
  if (e.hasAttachment) label.push(t('with attachment'));
  if (n > 1) label.push(t('{n} messages', { n }));
  label.push(t('from {name}: {subject}', { name: from, subject: e.subject || t('(no subject)') }));
  d.setAttribute('aria-label', label.join(', '));
  const l1 = document.createElement('div'); l1.className = 'line';
  const f = document.createElement('span'); f.className = 'from'; text(f, from);
  const m = document.createElement('span'); m.className = 'marks'; text(m, kw.$flagged ? '⚑' : '');
  if (e.hasAttachment) m.append(clipIcon());
  const tm = document.createElement('time'); text(tm, fmtDate(e.receivedAt));
  l1.append(f);
  if (n > 1) { const c = document.createElement('span'); c.className = 'thread-count'; text(c, n); l1.append(c); }
  l1.append(m, tm);
  const s = document.createElement('div'); s.className = 'subject'; text(s, e.subject || t('(no subject)'));
  const p = document.createElement('div'); p.className = 'preview'; text(p, e.preview);
  d.append(l1, s, p);
  d.addEventListener('click', (ev) => rowClick(ev, e.id, i));
  d.draggable = true; // onto a folder: moved there (with the rest of the selection, if picked)
  d.addEventListener('dragstart', (ev) => {
    const ids = st.sel.has(e.id) && !st.selAll ? [...st.sel] : [e.id];
    ev.dataTransfer.setData('application/x-wharf-email', ids.join(','));
    ev.dataTransfer.effectAllowed = 'copyMove';
  });
  return d;
}

// ---- multi-select: click, shift-click (a range), ctrl/cmd-click (one more or less), select all ----

function rowClick(ev, id, i) {
  if (ev.shiftKey && st.anchor >= 0) {
    st.selAll = false;
    st.sel = new Set();
    const [a, b] = st.anchor < i ? [st.anchor, i] : [i, st.anchor];
    for (let k = a; k <= b; k++) if (st.ids[k]) st.sel.add(st.ids[k]);
  } else if (ev.ctrlKey || ev.metaKey) {
    if (st.selAll) { st.selAll = false; st.sel = new Set(st.ids.filter(Boolean)); }
    if (st.sel.has(id)) st.sel.delete(id); else st.sel.add(id);
    st.anchor = i;
  } else {
    st.selAll = false;
    st.sel = new Set([id]);
    st.anchor = i;
    guard(openThread(id));
  }
  showSelection();
}

function selectAll() {
  st.selAll = !st.selAll;
  st.sel = new Set();
  st.anchor = -1;
  showSelection();
}

function clearSelection() {
  st.selAll = false;
  st.sel = new Set();
  st.anchor = -1;
  showSelection();
}

// The bulk bar shows from two rows picked (one row: the reading pane has the actions).
function showSelection() {
  const n = st.selAll ? st.total : st.sel.size;
  $('bulk').hidden = !(st.selAll || n > 1);
  text($('bulk-count'), t('{n} selected', { n }));
  $('select-all').setAttribute('aria-pressed', String(st.selAll));
  const to = $('bulk-move');
  if (!$('bulk').hidden) {
    fillFolders(to, t('Move to…'), canMoveTo);
    fillFolders($('bulk-copy'), t('Copy to…'), canCopyTo);
  }
  renderRows();
}

// A "Move to…" or "Copy to…" select: the folders that pass ok; hidden when none does.
function fillFolders(sel, first, ok) {
  sel.replaceChildren();
  const o = document.createElement('option');
  o.value = '';
  text(o, first);
  sel.append(o);
  for (const m of st.mailboxes.filter(ok)) {
    const x = document.createElement('option');
    x.value = m.id;
    text(x, folderLabel(m));
    sel.append(x);
  }
  sel.hidden = sel.options.length < 2;
}

// Every Email of the list (select all): the query's ids, uncollapsed, a page at a time.
async function allListed() {
  const out = [];
  for (let pos = 0; ; pos += 1000) {
    const r = await st.jmap.call([['Email/query', { filter: listFilter(), position: pos, limit: 1000 }, 'q']], acct());
    out.push(...r.q.ids);
    if (r.q.ids.length < 1000) return out;
  }
}

// The Emails an action on rows touches: each row's whole conversation, within the folder shown.
async function targets(rows) {
  if (rows === 'all') return allListed();
  const ids = [...new Set(rows.flatMap((id) => threadOf(id)))];
  const inFolder = !st.search || st.search.inMailbox ? st.current : null;
  if (!inFolder) return ids;
  const r = await st.jmap.call([['Email/get', { ids, properties: ['mailboxIds'] }, 'g']], acct());
  return r.g.list.filter((e) => e.mailboxIds[inFolder]).map((e) => e.id);
}

// One action on rows (ids, or 'all'): read, unread, flag, unflag, move (to arg), delete, junk, notjunk.
async function bulk(rows, action, arg) {
  // a shared folder: only what its rights allow; deleting there goes to its account's Trash
  const f = currentFolder() || {};
  const shared = !!f.shared;
  const need = { read: 'maySetSeen', unread: 'maySetSeen', flag: 'maySetKeywords', unflag: 'maySetKeywords', move: 'mayRemoveItems', delete: 'mayRemoveItems', copy: 'mayReadItems' }[action];
  if ((shared && !need) || (need && !may(need))) return;
  const to = st.mailboxes.find((m) => m.id === arg) || {};
  if (action === 'move' && !canMoveTo(to)) return;
  if (action === 'copy' && !canCopyTo(to)) return;
  if (action === 'copy' || (action === 'move' && to.acct !== acct())) { await transfer(rows, to, action === 'move'); return; }
  const ids = await targets(rows);
  const { junk, inbox } = shared ? {} : st.byRole;
  // the Trash of the folder's account (a shared account's when the user may put mail in it)
  let trash = shared ? st.mailboxes.find((m) => m.acct === f.acct && m.role === 'trash' && takesMail(m)) : st.byRole.trash;
  if (action === 'delete' && shared && !trash && ids.length &&
      !window.confirm(f.shared.isPublic ? t('No Trash in the public folders that you may put messages in: delete {n} message(s) for good?', { n: ids.length })
        : t('No Trash in {owner}\'s folders that you may put messages in: delete {n} message(s) for good?', { owner: f.shared.name, n: ids.length }))) return;
  const update = {};
  const destroy = [];
  for (const id of ids) {
    if (action === 'read' || action === 'unread') update[id] = { 'keywords/$seen': action === 'read' ? true : null };
    else if (action === 'flag' || action === 'unflag') update[id] = { 'keywords/$flagged': action === 'flag' ? true : null };
    else if (action === 'move') update[id] = { mailboxIds: { [arg]: true } };
    else if (action === 'junk' && junk) update[id] = { mailboxIds: { [junk.id]: true }, 'keywords/$junk': true, 'keywords/$notjunk': null };
    else if (action === 'notjunk' && inbox) update[id] = { mailboxIds: { [inbox.id]: true }, 'keywords/$junk': null, 'keywords/$notjunk': true };
    else if (action === 'delete') {
      if (trash && st.current !== trash.id) update[id] = { mailboxIds: { [trash.id]: true } };
      else destroy.push(id);
    }
  }
  const upd = Object.entries(update);
  for (let k = 0; k < Math.max(upd.length, destroy.length); k += SET_CHUNK) {
    const args = {};
    if (k < upd.length) args.update = Object.fromEntries(upd.slice(k, k + SET_CHUNK));
    if (k < destroy.length) args.destroy = destroy.slice(k, k + SET_CHUNK);
    await st.jmap.call([['Email/set', args, 's']], acct());
  }
  const gone = ['move', 'delete', 'junk', 'notjunk'].includes(action);
  if (gone) {
    if (st.open && (rows === 'all' || ids.includes(st.open.id))) closeReader();
    clearSelection();
  }
  await refresh();
}

// Rows into folder `to` of another account: Email/copy (keywords and date kept), then, for a
// move (remove), each original copied out of the folder shown: destroyed when in no other
// folder of its account, else taken out of this one. An original stays when its copy failed.
async function transfer(rows, to, remove) {
  const from = acct();
  const ids = await targets(rows);
  let done = 0;
  let failed = null;
  for (let k = 0; k < ids.length; k += SET_CHUNK) {
    const chunk = ids.slice(k, k + SET_CHUNK);
    const create = Object.fromEntries(chunk.map((id, i) => [`c${i}`, { id, mailboxIds: { [to.id]: true } }]));
    // 'c?': a refusal of the whole call (a share taken back meanwhile) is said, not thrown
    const c = (await st.jmap.call([['Email/copy', { fromAccountId: from, create }, 'c?']], to.acct))['c?'];
    if (c.error) { failed = c.error; break; }
    const copied = chunk.filter((id, i) => (c.created || {})[`c${i}`]);
    failed = failed || Object.values(c.notCreated || {})[0] || null;
    done += copied.length;
    if (!remove || !copied.length) continue;
    const g = await st.jmap.call([['Email/get', { ids: copied, properties: ['mailboxIds'] }, 'g']], from);
    const update = {};
    const destroy = [];
    for (const e of g.g.list) {
      if (e.mailboxIds[st.current] && Object.keys(e.mailboxIds).length > 1) update[e.id] = { [`mailboxIds/${st.current}`]: null };
      else destroy.push(e.id);
    }
    await st.jmap.call([['Email/set', { update, destroy }, 's']], from);
  }
  const v = { n: done, folder: folderLabel(to) };
  let what;
  if (remove) what = done === 1 ? t('{n} message moved to {folder}', v) : t('{n} messages moved to {folder}', v);
  else what = done === 1 ? t('{n} message copied to {folder}', v) : t('{n} messages copied to {folder}', v);
  notice(failed ? t('{done}; {n} not: {why}.', { done: what, n: ids.length - done, why: failed.type === 'forbidden' ? t('no right to put messages there') : failed.description || failed.type })
    : `${what}.`);
  if (remove && done) {
    if (st.open && (rows === 'all' || ids.includes(st.open.id))) closeReader();
    clearSelection();
  }
  await refresh();
}

function selectedRows() {
  return st.selAll ? 'all' : [...st.sel];
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
  // the pages of the rows on screen (others load again when scrolled to)
  const list = $('list');
  const first = Math.floor(Math.max(0, Math.floor(list.scrollTop / ROW) - 5) / PAGE);
  const last = Math.floor((Math.ceil((list.scrollTop + list.clientHeight) / ROW) + 5) / PAGE);
  const pages = [...st.pages].filter((p) => p >= first && p <= last).sort((x, y) => x - y);
  if (!pages.length) pages.push(first);
  // the rows on screen stay (st.prev) until the new pages are in: no flicker, nothing to click lost
  const prev = { ids: st.ids, emails: st.emails, threads: st.threads };
  resetList();
  st.prev = prev;
  const gen = st.gen;
  try {
    // the counts and every loaded page in one request (one account state, one round trip)
    const calls = mailboxCalls();
    const on = acct();
    for (const [k, p] of pages.entries()) {
      st.pages.add(p);
      calls.push(...pageCalls(p, k === 0, `${k}`).map(([n, a, t]) => [n, { accountId: on, ...a }, t]));
    }
    const r = await st.jmap.call(calls);
    applyMailboxes(r);
    if (gen === st.gen) pages.forEach((p, k) => applyPage(r, k === 0, `${k}`));
  } finally {
    if (st.prev === prev) st.prev = null;
  }
  renderRows();
}

// ---- reading ----

// A row: its conversation listed in the reading pane, the row's own message shown in full,
// every unread message of it marked read.
async function openThread(id) {
  st.selected = id;
  const seq = ++st.openSeq; // a later click wins over answers still on the way
  const ids = threadOf(id);
  const ul = $('r-thread');
  ul.replaceChildren();
  ul.hidden = ids.length < 2;
  if (ids.length > 1) {
    const r = await st.jmap.call([['Email/get', { ids, properties: ['from', 'receivedAt', 'preview', 'keywords'] }, 'g']], acct());
    if (seq !== st.openSeq) return;
    const byId = new Map(r.g.list.map((e) => [e.id, e]));
    for (const eid of ids) {
      const e = byId.get(eid);
      if (!e) continue;
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.dataset.id = eid;
      const who = document.createElement('span'); who.className = 'from'; text(who, addr(e.from));
      const when = document.createElement('time'); text(when, fmtDate(e.receivedAt));
      const p = document.createElement('span'); p.className = 'preview'; text(p, e.preview);
      b.append(who, when, p);
      b.setAttribute('aria-label', `${addr(e.from)}, ${fmtFull(e.receivedAt)}: ${e.preview || ''}`);
      b.addEventListener('click', () => guard(showMessage(eid)));
      li.append(b);
      ul.append(li);
    }
    const unread = r.g.list.filter((e) => !(e.keywords || {}).$seen).map((e) => e.id);
    if (unread.length && may('maySetSeen')) {
      await st.jmap.call([['Email/set', { update: Object.fromEntries(unread.map((u) => [u, { 'keywords/$seen': true }])) }, 's']], acct());
      const row = st.emails.get(id);
      if (row) row.keywords = { ...(row.keywords || {}), $seen: true };
    }
    if (seq !== st.openSeq) return;
  }
  await showMessage(id, seq);
}

async function showMessage(id, seq) {
  if (seq === undefined) seq = ++st.openSeq;
  st.allowImages = false;
  for (const b of $('r-thread').querySelectorAll('button')) b.setAttribute('aria-current', String(b.dataset.id === id));
  renderRows();
  const r = await st.jmap.call([['Email/get', {
    ids: [id],
    properties: ['blobId', 'size', 'from', 'to', 'cc', 'bcc', 'replyTo', 'subject', 'receivedAt', 'keywords', 'mailboxIds', 'messageId', 'references', 'threadId', 'textBody', 'htmlBody', 'attachments', 'bodyValues'],
    fetchTextBodyValues: true, fetchHTMLBodyValues: true, maxBodyValueBytes: 1048576,
  }, 'g']], acct());
  const e = r.g.list[0];
  if (!e || seq !== st.openSeq) return;
  e.acct = acct(); // its downloads and changes go to its account
  st.open = e;
  $('reader').hidden = false;
  $('app').classList.add('reading');
  text($('r-subject'), e.subject || t('(no subject)'));
  text($('r-from'), addr(e.from));
  text($('r-date'), fmtFull(e.receivedAt));
  $('r-date').setAttribute('datetime', e.receivedAt);
  text($('r-to'), addr(e.to));
  text($('r-cc'), addr(e.cc));
  $('r-cc-line').hidden = !(e.cc || []).length;
  showFlag(e);
  $('edit-draft').hidden = !(e.keywords || {}).$draft;
  fillFolders($('copy-to'), t('Copy to…'), canCopyTo);
  const inJunk = st.byRole.junk && e.acct === st.jmap.accountId && e.mailboxIds[st.byRole.junk.id];
  text($('junk'), inJunk ? t('Not junk') : t('Junk'));
  $('junk').setAttribute('aria-label', inJunk ? t('Not junk') : t('Mark as junk'));
  await showBody();
  const ul = $('r-attachments');
  ul.replaceChildren();
  const files = (e.attachments || []).filter((a) => !(a.cid && e.cidUrls && e.cidUrls.has(a.cid))); // inline: shown
  for (const a of files.slice(0, ATTACHMENTS_SHOWN)) {
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.href = st.jmap.downloadUrl(a.blobId, a.name, a.type, e.acct);
    link.setAttribute('download', a.name || t('attachment'));
    text(link, t('{name} ({n} KB)', { name: a.name || t('attachment'), n: Math.ceil((a.size || 0) / 1024) }));
    li.append(link);
    ul.append(li);
  }
  if (files.length > ATTACHMENTS_SHOWN) {
    const li = document.createElement('li');
    text(li, t('… and {n} more', { n: files.length - ATTACHMENTS_SHOWN }));
    ul.append(li);
  }
  if (!(e.keywords || {}).$seen && may('maySetSeen')) await setKeyword(e, '$seen', true);
}

function bodyText(e, parts) {
  return (parts || []).map((p) => (e.bodyValues[p.partId] || {}).value || '').join('\n');
}

async function showBody() {
  const e = st.open;
  const html = (e.htmlBody || []).some((p) => p.type === 'text/html');
  // maxBodyValueBytes cut a long body: said, with the way to the rest
  $('r-truncated').hidden = ![...(html ? e.htmlBody : e.textBody) || []].some((p) => (e.bodyValues[p.partId] || {}).isTruncated);
  $('r-text').hidden = html;
  $('r-html').hidden = !html;
  if (!html) {
    text($('r-text'), bodyText(e, e.textBody));
    $('r-images').hidden = true;
    return;
  }
  const src = bodyText(e, e.htmlBody);
  if (!e.cidUrls) e.cidUrls = await inlineImages(e, cidsOf(src));
  if (st.open !== e) return;
  const allow = imagesAllowed(e);
  const { html: clean, remote } = sanitize(src, allow, e.cidUrls);
  $('r-images').hidden = allow || remote === 0 || st.settings.images === 'never';
  $('r-html').srcdoc = frameDocument(clean, allow);
}

// The image parts a body names by cid:, each fetched from the download route (the session
// cookie) and made a data: URL: the frame (sandboxed, its own CSP) loads nothing itself.
async function inlineImages(e, refs) {
  const out = new Map();
  if (!refs.size) return out;
  const parts = [...(e.attachments || []), ...(e.htmlBody || [])];
  for (const p of parts) {
    if (!p.cid || !refs.has(p.cid) || out.has(p.cid) || !/^image\//i.test(p.type || '') || p.size > INLINE_MAX) continue;
    const r = await fetch(st.jmap.downloadUrl(p.blobId, p.name || 'image', p.type, e.acct), { credentials: 'same-origin' });
    if (!r.ok) continue;
    const blob = new Blob([await r.blob()], { type: p.type });
    out.set(p.cid, await new Promise((done) => {
      const fr = new FileReader();
      fr.onload = () => done(fr.result);
      fr.onerror = () => done('');
      fr.readAsDataURL(blob);
    }));
  }
  return out;
}

// "Show source": the raw message (the Email's blob) as text, its first MB, and a download link.
async function showSource() {
  const e = st.open;
  if (!e) return;
  const url = st.jmap.downloadUrl(e.blobId, 'message.eml', 'message/rfc822', e.acct);
  $('s-download').href = url;
  text($('s-text'), t('Loading…'));
  $('source-dialog').showModal();
  const r = await fetch(url, { credentials: 'same-origin' });
  if (!r.ok) { text($('s-text'), t('Not available ({status})', { status: r.status })); return; }
  const reader = r.body.getReader();
  const chunks = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.length;
    if (n >= SOURCE_SHOWN) { reader.cancel(); break; }
  }
  const all = new Uint8Array(Math.min(n, SOURCE_SHOWN));
  let at = 0;
  for (const c of chunks) { const k = Math.min(c.length, all.length - at); all.set(c.subarray(0, k), at); at += k; }
  text($('s-text'), new TextDecoder('utf-8').decode(all));
  $('s-more').hidden = n < SOURCE_SHOWN;
}

function showFlag(e) {
  const on = !!(e.keywords || {}).$flagged;
  $('flag').setAttribute('aria-pressed', String(on));
  text($('flag'), on ? t('Unflag') : t('Flag'));
}

async function setKeyword(e, kw, on) {
  await st.jmap.call([['Email/set', { update: { [e.id]: { [`keywords/${kw}`]: on ? true : null } } }, 's']], e.acct);
  e.keywords = { ...(e.keywords || {}) };
  if (on) e.keywords[kw] = true; else delete e.keywords[kw];
  const listed = st.emails.get(e.id);
  if (listed) { listed.keywords = e.keywords; renderRows(); }
  showFlag(e);
}

// The reading pane's Delete, Junk and Mark unread act on the open conversation (in this folder).
function openRow() {
  return st.selected && threadOf(st.selected).includes(st.open.id) ? st.selected : st.open.id;
}

async function deleteOpen() {
  if (st.open) await bulk([openRow()], 'delete');
}

// Junk, or "Not junk" when the message is in Junk: moved, with the keywords spam filters learn from.
async function junkOpen() {
  const e = st.open;
  const junk = st.byRole.junk;
  if (!e || !junk || e.acct !== st.jmap.accountId) return;
  await bulk([openRow()], e.mailboxIds[junk.id] ? 'notjunk' : 'junk');
}

function closeReader() {
  st.open = null;
  $('reader').hidden = true;
  $('app').classList.remove('reading');
}

// ---- compose: identities and signatures, autocomplete, attachments (upload), drafts ----

function identity() {
  return st.identities.find((i) => i.id === $('c-from').value) || st.identities[0];
}

// The identity to write from: one the user made for this address (it has the signature) first.
function pickIdentity(email) {
  const mine = st.identities.filter((i) => !email || i.email.toLowerCase() === email.toLowerCase());
  const pool = mine.length ? mine : st.identities;
  return pool.find((i) => i.mayDelete) || pool[0];
}

const IDENTITY_CALLS = [['Identity/get', {}, 'i']];

async function loadIdentities() {
  applyIdentities(await st.jmap.call(IDENTITY_CALLS));
}

function applyIdentities(r) {
  st.identities = r.i.list;
  st.identity = pickIdentity(st.account);
  const sel = $('c-from');
  sel.replaceChildren();
  for (const i of st.identities) {
    const o = document.createElement('option');
    o.value = i.id;
    text(o, i.name ? `${i.name} <${i.email}>` : i.email);
    sel.append(o);
  }
}

function signature(i) {
  return i && i.textSignature ? `\n\n-- \n${i.textSignature}` : '';
}

// Reply all: the sender (its Reply-To) and the other To recipients in To, the Cc kept; each
// address once, and never the user's own (the account's and its identities').
function replyAllAddrs(e) {
  const seen = new Set([st.account, ...(st.identities || []).map((i) => i.email)].map((a) => (a || '').toLowerCase()));
  const keep = (list) => (list || []).filter((a) => {
    const k = (a.email || '').toLowerCase();
    if (!k || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const to = keep([...(e.replyTo && e.replyTo.length ? e.replyTo : e.from || []), ...(e.to || [])]);
  return { to, cc: keep(e.cc) };
}

function compose(kind) {
  const e = st.open;
  const replying = kind === 'reply' || kind === 'replyall';
  $('c-form').reset();
  text($('c-error'), '');
  text($('c-status'), '');
  st.replyTo = null;
  st.draftId = null;
  st.dirty = false;
  clearAttachments();
  setRich(false, null);
  const id = kind === 'draft' && e ? pickIdentity(senderOf(e)) : st.identity;
  $('c-from').value = id ? id.id : '';
  const sig = signature(id);
  if (replying && e) {
    if (kind === 'replyall') {
      const all = replyAllAddrs(e);
      $('c-to').value = addr(all.to);
      $('c-cc').value = addr(all.cc);
    } else $('c-to').value = addr(e.replyTo && e.replyTo.length ? e.replyTo : e.from);
    $('c-subject').value = /^re:/i.test(e.subject || '') ? e.subject : `Re: ${e.subject || ''}`;
    $('c-body').value = `${sig}\n\n${t('{name} wrote:', { name: addr(e.from) })}\n${bodyText(e, e.textBody).split('\n').map((l) => `> ${l}`).join('\n')}`;
    st.replyTo = e;
  } else if (kind === 'forward' && e) {
    $('c-subject').value = `Fwd: ${e.subject || ''}`;
    $('c-body').value = `${sig}\n\n${t('---------- Forwarded message ----------')}\n${t('From:')} ${addr(e.from)}\n${t('Subject:')} ${e.subject || ''}\n\n${bodyText(e, e.textBody)}`;
  } else if (kind === 'draft' && e) {
    $('c-to').value = addr(e.to);
    $('c-cc').value = addr(e.cc);
    $('c-bcc').value = addr(e.bcc);
    $('c-subject').value = e.subject || '';
    $('c-body').value = bodyText(e, e.textBody);
    // a draft written in rich text (text and HTML alternatives) is resumed in rich text
    if ((e.htmlBody || []).some((p) => p.type === 'text/html') && (e.textBody || []).every((p) => p.type === 'text/plain')) {
      setRich(true, sanitizeCompose(bodyText(e, e.htmlBody)));
    }
    for (const a of e.attachments || []) addAttachment({ name: a.name, type: a.type, size: a.size, blobId: a.blobId });
    st.draftId = e.id;
  } else {
    $('c-body').value = sig;
  }
  text($('c-title'), { reply: t('Reply'), replyall: t('Reply all'), forward: t('Forward'), draft: t('Draft') }[kind] || t('New message'));
  $('composer').showModal();
  // typed before the address book came: suggested once it is in
  guard(loadAddressBook().then(() => {
    const f = document.activeElement;
    if (f && ['c-to', 'c-cc', 'c-bcc'].includes(f.id) && f.value) suggest(f);
  }));
  (replying && e ? $('c-body') : $('c-to')).focus();
  if (replying && e) $('c-body').setSelectionRange(0, 0);
}

// -- rich text: plain text is the default; "Formatting" turns the text into HTML in an editor
// (a reply's "> " quote becomes a blockquote) and back (the text derived from the HTML) --

function setRich(on, html) {
  $('c-rich').checked = on;
  $('c-toolbar').hidden = !on;
  $('c-body-label').hidden = on;
  $('c-html').hidden = !on;
  if (on) $('c-html').innerHTML = html != null ? html : sanitizeCompose(textToHtml($('c-body').value));
  else if (html === undefined && $('c-html').innerHTML) $('c-body').value = htmlToText(sanitizeCompose($('c-html').innerHTML));
  if (!on) $('c-html').replaceChildren();
}

function richCommand(cmd) {
  $('c-html').focus();
  if (cmd === 'createLink') {
    const url = prompt(t('Link address (https://…)'), 'https://');
    if (!url || !/^(https?:|mailto:)/i.test(url.trim())) return;
    document.execCommand('createLink', false, url.trim());
  } else {
    document.execCommand(cmd);
  }
  composerChanged();
}

// The body parts of the composer: the text, and the cleaned HTML with a text derived from it.
function composedBody() {
  if (!$('c-rich').checked) return { textBody: [{ partId: '1', type: 'text/plain' }], bodyValues: { 1: { value: $('c-body').value } } };
  const html = sanitizeCompose($('c-html').innerHTML);
  return {
    textBody: [{ partId: '1', type: 'text/plain' }],
    htmlBody: [{ partId: '2', type: 'text/html' }],
    bodyValues: { 1: { value: htmlToText(html) }, 2: { value: html } },
  };
}

// -- address autocomplete: the people in the user's recent mail, most frequent first, then the
// server's directory of the user's own domain (its users and aliases: /webmail/directory) --

async function loadDirectory() {
  const r = await fetch('/webmail/directory', { credentials: 'same-origin', headers: { 'X-Wharf-CSRF': st.jmap.csrf } }).catch(() => null);
  if (!r || !r.ok) return []; // the recent mail is enough to go on with
  const j = await r.json().catch(() => ({}));
  return j.addresses || [];
}

async function loadAddressBook() {
  if (st.book) return;
  const directory = loadDirectory();
  const r = await st.jmap.call([
    ['Email/query', { filter: { notKeyword: SETTINGS_KW }, sort: [{ property: 'receivedAt', isAscending: false }], limit: 500 }, 'q'],
    ['Email/get', { '#ids': { resultOf: 'q', name: 'Email/query', path: '/ids' }, properties: ['from', 'to', 'cc', 'bcc'] }, 'g'],
  ]);
  const seen = new Map();
  for (const e of r.g.list) {
    for (const a of [...(e.from || []), ...(e.to || []), ...(e.cc || []), ...(e.bcc || [])]) {
      const k = (a.email || '').toLowerCase();
      if (!k || k === st.account.toLowerCase()) continue;
      const had = seen.get(k);
      if (!had) seen.set(k, { name: a.name || '', email: a.email, n: 1 });
      else { had.n++; if (!had.name && a.name) had.name = a.name; }
    }
  }
  for (const a of await directory) {
    const k = a.toLowerCase();
    if (k !== st.account.toLowerCase() && !seen.has(k)) seen.set(k, { name: '', email: a, n: 0 });
  }
  st.book = [...seen.values()].sort((x, y) => y.n - x.n);
}

function suggest(field) {
  const ul = $('c-suggest');
  const v = field.value;
  const cut = v.lastIndexOf(',') + 1;
  const typed = v.slice(cut).trim().toLowerCase();
  const hits = typed && st.book ? st.book.filter((a) => a.email.toLowerCase().includes(typed) || a.name.toLowerCase().includes(typed)).slice(0, 8) : [];
  ul.replaceChildren();
  ul.hidden = !hits.length;
  field.setAttribute('aria-expanded', String(!!hits.length));
  if (!hits.length) return;
  field.closest('label').after(ul);
  hits.forEach((a, k) => {
    const li = document.createElement('li');
    li.setAttribute('role', 'option');
    li.setAttribute('aria-selected', String(k === 0));
    text(li, a.name ? `${a.name} <${a.email}>` : a.email);
    li.addEventListener('mousedown', (ev) => { ev.preventDefault(); pickSuggestion(field, li.textContent); });
    ul.append(li);
  });
}

function pickSuggestion(field, value) {
  const v = field.value;
  const cut = v.lastIndexOf(',') + 1;
  field.value = `${v.slice(0, cut)}${cut ? ' ' : ''}${value}, `;
  $('c-suggest').hidden = true;
  field.setAttribute('aria-expanded', 'false');
  field.focus();
  st.dirty = true;
}

function suggestKeys(ev) {
  const ul = $('c-suggest');
  if (ul.hidden) return;
  const opts = [...ul.children];
  const at = opts.findIndex((o) => o.getAttribute('aria-selected') === 'true');
  if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
    ev.preventDefault();
    const to = (at + (ev.key === 'ArrowDown' ? 1 : opts.length - 1)) % opts.length;
    opts.forEach((o, k) => o.setAttribute('aria-selected', String(k === to)));
  } else if (ev.key === 'Enter' && at >= 0) {
    ev.preventDefault();
    pickSuggestion(ev.target, opts[at].textContent);
  } else if (ev.key === 'Escape') {
    ev.preventDefault();
    ul.hidden = true;
  }
}

// -- attachments: each uploaded at once (progress bar), sent by its blobId --

function clearAttachments() {
  st.attachments = [];
  $('c-attachments').replaceChildren();
}

function addAttachment(a, file) {
  const li = document.createElement('li');
  const name = document.createElement('span');
  text(name, t('{name} ({n} KB)', { name: a.name || t('attachment'), n: Math.ceil((a.size || 0) / 1024) }));
  const bar = document.createElement('progress');
  bar.max = 1;
  bar.value = a.blobId ? 1 : 0;
  bar.setAttribute('aria-label', t('Upload of {name}', { name: a.name }));
  const rm = document.createElement('button');
  rm.type = 'button';
  text(rm, '✕');
  rm.setAttribute('aria-label', t('Remove {name}', { name: a.name }));
  rm.addEventListener('click', () => { st.attachments = st.attachments.filter((x) => x !== a); li.remove(); st.dirty = true; });
  li.append(name, bar, rm);
  $('c-attachments').append(li);
  st.attachments.push(a);
  if (a.blobId) { a.done = Promise.resolve(); return; }
  if (a.size > st.jmap.maxSizeUpload) {
    a.error = t('{name} is larger than {n} MB', { name: a.name, n: Math.floor(st.jmap.maxSizeUpload / 1048576) });
    li.classList.add('error');
    text(name, a.error);
    a.done = Promise.resolve();
    return;
  }
  a.done = st.jmap.upload(file, a.type, (f) => { bar.value = f; })
    .then((r) => { a.blobId = r.blobId; bar.value = 1; li.classList.add('done'); })
    .catch((err) => { a.error = `${a.name}: ${err.message}`; li.classList.add('error'); text(name, a.error); });
}

function attachFiles(files) {
  for (const f of files) addAttachment({ name: f.name, type: f.type || 'application/octet-stream', size: f.size, blobId: null }, f);
  st.dirty = true;
}

// The Email the composer holds, into mailboxId with keywords (a draft or the sent copy).
function composedEmail(mailboxId, keywords) {
  const id = identity();
  const email = {
    mailboxIds: { [mailboxId]: true },
    keywords,
    from: [{ name: id.name || '', email: id.email }],
    to: parseAddrs($('c-to').value), subject: $('c-subject').value,
    ...composedBody(),
  };
  const cc = parseAddrs($('c-cc').value), bcc = parseAddrs($('c-bcc').value);
  if (cc.length) email.cc = cc;
  if (bcc.length) email.bcc = bcc;
  const files = st.attachments.filter((a) => a.blobId);
  if (files.length) email.attachments = files.map((a) => ({ blobId: a.blobId, type: a.type, name: a.name, disposition: 'attachment' }));
  if (st.replyTo && st.replyTo.messageId) {
    email.inReplyTo = st.replyTo.messageId;
    email.references = [...(st.replyTo.references || []), ...st.replyTo.messageId];
  }
  return email;
}

// Saves the composer into Drafts ($draft), replacing the draft saved before. One at a time.
async function saveDraft() {
  if (st.saving) await st.saving;
  const drafts = st.byRole.drafts;
  if (!drafts || !$('composer').open) return;
  st.saving = (async () => {
    await Promise.all(st.attachments.map((a) => a.done));
    st.dirty = false;
    const args = { create: { d: composedEmail(drafts.id, { $draft: true, $seen: true }) } };
    if (st.draftId) args.destroy = [st.draftId];
    const r = await st.jmap.call([['Email/set', args, 's']]);
    const err = r.s.notCreated && r.s.notCreated.d;
    if (err) { text($('c-error'), t('Draft not saved: {why}', { why: err.description || err.type })); return; }
    st.draftId = r.s.created.d.id;
    text($('c-status'), t('Draft saved at {time}', { time: new Date().toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', timeZone: zone() }) }));
  })();
  try { await st.saving; } finally { st.saving = null; }
}

// Drafts are saved by themselves: 5 s after the last change.
let draftTimer = null;
function composerChanged() {
  st.dirty = true;
  clearTimeout(draftTimer);
  draftTimer = setTimeout(() => { if (st.dirty) guard(saveDraft()); }, 5000);
}

async function closeComposer(keep) {
  clearTimeout(draftTimer);
  if (keep && st.dirty && ($('c-to').value || $('c-subject').value || $('c-body').value.trim() || $('c-html').textContent.trim() || st.attachments.length)) await saveDraft();
  $('composer').close();
  $('c-suggest').hidden = true;
}

async function send(ev) {
  ev.preventDefault();
  if (!parseAddrs($('c-to').value).length) { text($('c-error'), t('Who is it for?')); return; }
  clearTimeout(draftTimer);
  $('c-send').disabled = true;
  try {
    if (st.saving) await st.saving;
    await Promise.all(st.attachments.map((a) => a.done));
    const bad = st.attachments.find((a) => a.error);
    if (bad) { text($('c-error'), t('Not sent: {why}', { why: bad.error })); return; }
    const sent = st.byRole.sent || st.byRole.drafts || st.byRole.inbox;
    const set = { create: { c: composedEmail(sent.id, { $seen: true }) } };
    if (st.draftId) set.destroy = [st.draftId];
    const r = await st.jmap.call([
      ['Email/set', set, 'e'],
      ['EmailSubmission/set', { create: { s: { emailId: '#c', identityId: identity().id } } }, 's'],
    ]);
    const err = (r.e.notCreated && r.e.notCreated.c) || (r.s.notCreated && r.s.notCreated.s);
    if (err) { text($('c-error'), t('Not sent: {why}', { why: err.description || err.type })); return; }
    st.draftId = null;
    st.dirty = false;
    $('composer').close();
    if (st.open && st.open.id && set.destroy && set.destroy.includes(st.open.id)) closeReader();
  } catch (e) {
    if (e instanceof AuthError) { $('composer').close(); showSignIn(t('Your session has ended: sign in again.')); }
    text($('c-error'), String(e.message || e));
  } finally {
    $('c-send').disabled = false;
  }
}

// -- settings: the signature, kept on an identity (the account's own ones are fixed: a made one
// with the same address carries it); out of office, the server's VacationResponse (the mta
// replies, once per sender); remote images, language and time zone in the settings message --

// A date input's day (the browser's time) and the JMAP UTCDate of its start or end.
function dayToUtc(day, end) {
  if (!day) return null;
  const d = new Date(`${day}T${end ? '23:59:59' : '00:00:00'}`);
  return Number.isNaN(d.getTime()) ? null : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
function utcToDay(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}

function fillZones() {
  const sel = $('set-tz');
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (sel.options.length) { text(sel.options[0], t('This browser\'s ({zone})', { zone: here })); return; }
  const first = document.createElement('option');
  first.value = '';
  text(first, t('This browser\'s ({zone})', { zone: here }));
  sel.append(first);
  for (const z of Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : ['UTC']) {
    const o = document.createElement('option');
    o.value = z;
    text(o, z);
    sel.append(o);
  }
}

async function settingsDialog() {
  const r = await st.jmap.call([['VacationResponse/get', { ids: ['singleton'] }, 'v']]);
  const v = (r.v.list || [])[0] || {};
  $('set-vac-on').checked = !!v.isEnabled;
  $('set-vac-subject').value = v.subject || '';
  $('set-vac-text').value = v.textBody || '';
  $('set-vac-from').value = utcToDay(v.fromDate);
  $('set-vac-to').value = utcToDay(v.toDate);
  $('set-images').value = st.settings.images;
  fillZones();
  $('set-tz').value = st.settings.timeZone;
  fillLanguages();
  $('set-lang').value = st.settings.lang;
  const sel = $('set-identity');
  sel.replaceChildren();
  for (const i of st.identities) {
    const o = document.createElement('option');
    o.value = i.id;
    text(o, `${i.name ? `${i.name} <${i.email}>` : i.email}${i.mayDelete ? '' : t(' (account)')}`);
    sel.append(o);
  }
  sel.value = st.identity ? st.identity.id : '';
  const show = () => { const i = st.identities.find((x) => x.id === sel.value); $('set-signature').value = i ? i.textSignature || '' : ''; $('set-name').value = i ? i.name || '' : ''; };
  sel.onchange = show;
  show();
  text($('set-error'), '');
  text($('tok-error'), '');
  $('tok-new').hidden = true;
  $('tok-secret').value = '';
  $('tok-reauth').hidden = true;
  await listTokens();
  $('settings-dialog').showModal();
}

async function saveSettingsDialog(ev) {
  ev.preventDefault();
  const i = st.identities.find((x) => x.id === $('set-identity').value);
  if (!i) return;
  const props = { name: $('set-name').value, textSignature: $('set-signature').value };
  const vacation = {
    isEnabled: $('set-vac-on').checked,
    subject: $('set-vac-subject').value || null,
    textBody: $('set-vac-text').value || null,
    fromDate: dayToUtc($('set-vac-from').value, false),
    toDate: dayToUtc($('set-vac-to').value, true),
  };
  const r = await st.jmap.call([
    ['Identity/set', i.mayDelete ? { update: { [i.id]: props } } : { create: { n: { email: i.email, ...props } } }, 's'],
    ['VacationResponse/set', { update: { singleton: vacation } }, 'v'],
  ]);
  const err = (i.mayDelete ? (r.s.notUpdated || {})[i.id] : (r.s.notCreated || {}).n) || (r.v.notUpdated || {}).singleton;
  if (err) { text($('set-error'), err.description || err.type); return; }
  await loadIdentities();
  if (!i.mayDelete) st.identity = st.identities.find((x) => x.id === r.s.created.n.id) || st.identity;
  const images = $('set-images').value;
  const timeZone = $('set-tz').value;
  const lang = $('set-lang').value;
  const relang = lang !== st.settings.lang;
  if (images !== st.settings.images || timeZone !== st.settings.timeZone || relang) {
    Object.assign(st.settings, { images, timeZone, lang });
    await saveSettings();
    if (relang) {
      $('settings-dialog').close();
      await useLanguage(lang); // everything on screen drawn again, dates too
      return;
    }
    renderRows();
    if (st.open) {
      text($('r-date'), fmtFull(st.open.receivedAt));
      await showBody();
    }
  }
  $('settings-dialog').close();
}

// -- app passwords: the user's own tokens for other clients (/webmail/tokens: the session only,
// a new one only from a recent sign-in; the secret is shown once, the server keeps a hash) --

async function tokensCall(method, path) {
  const r = await fetch(path, { method, credentials: 'same-origin', headers: { 'X-Wharf-CSRF': st.jmap.csrf } });
  if (r.status === 401) throw new AuthError('signed out');
  const j = r.status === 204 ? {} : await r.json().catch(() => ({}));
  return { r, j };
}

async function listTokens() {
  const { r, j } = await tokensCall('GET', '/webmail/tokens');
  const ul = $('tok-list');
  ul.replaceChildren();
  if (!r.ok) { text($('tok-error'), j.error || t('app passwords: {status}', { status: r.status })); return; }
  for (const x of j.tokens || []) {
    const li = document.createElement('li');
    const label = document.createElement('span');
    const v = { id: x.id, date: fmtFull(new Date(x.created * 1000).toISOString()) };
    text(label, x.kind === 'admin' ? t('{id} (admin), made {date}', v) : t('{id}, made {date}', v));
    const b = document.createElement('button');
    b.type = 'button';
    text(b, t('Revoke'));
    b.setAttribute('aria-label', t('Revoke app password {id}', { id: x.id }));
    b.addEventListener('click', () => guard(revokeToken(x.id)));
    li.append(label, ' ', b);
    ul.append(li);
  }
}

async function revokeToken(id) {
  text($('tok-error'), '');
  const { r, j } = await tokensCall('DELETE', `/webmail/tokens/${encodeURIComponent(id)}`);
  if (!r.ok) text($('tok-error'), j.error || t('revoke: {status}', { status: r.status }));
  await listTokens();
}

async function addToken() {
  text($('tok-error'), '');
  $('tok-new').hidden = true;
  const pass = $('tok-pass').value;
  $('tok-pass').value = '';
  if (!$('tok-reauth').hidden && pass) { // a fresh sign-in: a new session cookie and CSRF token
    const r = await fetch('/webmail/session', {
      method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: st.account, password: pass }),
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) { text($('tok-error'), j.error || t('sign-in: {status}', { status: r.status })); return; }
    st.jmap.csrf = j.csrf;
  }
  const { r, j } = await tokensCall('POST', '/webmail/tokens');
  if (r.status === 403 && !pass) { // too long since the sign-in: ask for the password
    $('tok-reauth').hidden = false;
    text($('tok-error'), j.error || t('sign in again'));
    $('tok-pass').focus();
    return;
  }
  if (!r.ok) { text($('tok-error'), j.error || t('app password: {status}', { status: r.status })); return; }
  $('tok-reauth').hidden = true;
  $('tok-secret').value = j.token;
  $('tok-new').hidden = false;
  $('tok-secret').select();
  await listTokens();
}

// ---- wiring ----

function wire() {
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', () => guard(signOut()));
  $('compose').addEventListener('click', () => compose('new'));
  $('reply').addEventListener('click', () => compose('reply'));
  $('reply-all').addEventListener('click', () => compose('replyall'));
  $('forward').addEventListener('click', () => compose('forward'));
  $('c-form').addEventListener('submit', (ev) => guard(send(ev)));
  $('c-cancel').addEventListener('click', () => guard(closeComposer(true)));
  $('composer').addEventListener('cancel', (ev) => { ev.preventDefault(); guard(closeComposer(true)); });
  $('c-draft').addEventListener('click', () => guard(saveDraft()));
  $('c-form').addEventListener('input', composerChanged);
  $('c-rich').addEventListener('change', () => setRich($('c-rich').checked));
  // a paste into the editor goes in cleaned: nothing it brings loads or runs in the app's page
  $('c-html').addEventListener('paste', (ev) => {
    if (!ev.clipboardData) return;
    ev.preventDefault();
    const html = ev.clipboardData.getData('text/html');
    document.execCommand('insertHTML', false, html ? sanitizeCompose(html)
      : textToHtml(ev.clipboardData.getData('text/plain')).replace(/<br>$/, ''));
  });
  for (const b of $('c-toolbar').querySelectorAll('button')) {
    b.addEventListener('mousedown', (ev) => ev.preventDefault()); // the editor keeps its selection
    b.addEventListener('click', () => richCommand(b.dataset.cmd));
  }
  $('c-files').addEventListener('change', () => { attachFiles($('c-files').files); $('c-files').value = ''; });
  $('composer').addEventListener('dragover', (ev) => { if (ev.dataTransfer.types.includes('Files')) ev.preventDefault(); });
  $('composer').addEventListener('drop', (ev) => {
    if (!ev.dataTransfer.files.length) return;
    ev.preventDefault();
    attachFiles(ev.dataTransfer.files);
  });
  for (const f of ['c-to', 'c-cc', 'c-bcc']) {
    $(f).addEventListener('input', () => suggest($(f)));
    $(f).addEventListener('keydown', suggestKeys);
    $(f).addEventListener('blur', () => { $('c-suggest').hidden = true; });
  }
  $('edit-draft').addEventListener('click', () => compose('draft'));
  $('settings').addEventListener('click', () => guard(settingsDialog()));
  $('set-form').addEventListener('submit', (ev) => guard(saveSettingsDialog(ev)));
  $('set-cancel').addEventListener('click', () => $('settings-dialog').close());
  $('tok-add').addEventListener('click', () => guard(addToken()));
  $('settings-dialog').addEventListener('close', () => { $('tok-secret').value = ''; $('tok-new').hidden = true; });
  $('flag').addEventListener('click', () => st.open && guard(setKeyword(st.open, '$flagged', !(st.open.keywords || {}).$flagged)));
  $('unread').addEventListener('click', () => st.open && guard(bulk([openRow()], 'unread')));
  $('select-all').addEventListener('click', selectAll);
  $('sort').addEventListener('change', () => {
    const [property, dir] = $('sort').value.split(':');
    st.sort = { property, isAscending: dir === 'asc' };
    $('list').scrollTop = 0;
    guard(reloadList());
  });
  for (const [b, action] of [['bulk-read', 'read'], ['bulk-unread', 'unread'], ['bulk-flag', 'flag'],
    ['bulk-unflag', 'unflag'], ['bulk-junk', 'junk'], ['bulk-delete', 'delete']]) {
    $(b).addEventListener('click', () => guard(bulk(selectedRows(), action)));
  }
  $('bulk-move').addEventListener('change', () => {
    const to = $('bulk-move').value;
    $('bulk-move').value = '';
    if (to) guard(bulk(selectedRows(), 'move', to));
  });
  $('bulk-copy').addEventListener('change', () => {
    const to = $('bulk-copy').value;
    $('bulk-copy').value = '';
    if (to) guard(bulk(selectedRows(), 'copy', to));
  });
  $('copy-to').addEventListener('change', () => {
    const to = $('copy-to').value;
    $('copy-to').value = '';
    if (to && st.open) guard(bulk([openRow()], 'copy', to));
  });
  $('notice-close').addEventListener('click', () => notice(''));
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
  $('load-images').addEventListener('click', () => { st.allowImages = true; guard(showBody()); });
  $('always-images').addEventListener('click', () => guard(alwaysImages()));
  $('source').addEventListener('click', () => guard(showSource()));
  $('s-close').addEventListener('click', () => $('source-dialog').close());
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
    else if (ev.key === 'a' && !(ev.ctrlKey || ev.metaKey) && st.open) compose('replyall');
    else if (ev.key === 'Delete' && (st.selAll || st.sel.size > 1)) guard(bulk(selectedRows(), 'delete'));
    else if (ev.key === 'Delete' && st.open) guard(deleteOpen());
    else if (ev.key === 'a' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); if (!st.selAll) selectAll(); }
    else if (ev.key === 'Escape') clearSelection();
  });
}

async function boot() {
  wire();
  // the language this browser used last, else the browser's own when the app has it (the
  // sign-in page; the user's settings decide once signed in), fetched beside the session check
  const lang = setLanguage(localStorage.getItem(LANG_KEY) || (navigator.language || 'en').slice(0, 2).toLowerCase());
  // X-Wharf-CSRF marks the app's requests: a 401 then carries no challenge (no browser prompt).
  const r = await fetch('/webmail/session', { credentials: 'same-origin', headers: { 'X-Wharf-CSRF': '-' } }).catch(() => null);
  await lang;
  if (r && r.ok) {
    const j = await r.json();
    if (j.csrf) { await guard(start(j.account, j.csrf)); return; }
  }
  showSignIn('');
}

boot();
