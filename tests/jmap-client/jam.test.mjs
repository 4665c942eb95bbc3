// An independent JMAP client (npm jmap-jam, pinned in package-lock.json)
// against a real wharfd, under node:test. test_jmap.py starts the server and
// runs this with WHARF_JMAP_URL (the session URL), WHARF_USER, WHARF_PASSWORD.
// jam speaks Bearer only; this test hands it the Basic credentials and turns
// the scheme word back into "Basic" on the way out (the only shim: the
// requests and answers are jam's own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import JamClient from 'jmap-jam';

const { WHARF_JMAP_URL, WHARF_USER, WHARF_PASSWORD } = process.env;
const realFetch = globalThis.fetch;
globalThis.fetch = (url, init = {}) => {
  const headers = new Headers(init.headers);
  const auth = headers.get('Authorization');
  if (auth && auth.startsWith('Bearer '))
    headers.set('Authorization', 'Basic ' + auth.slice(7));
  return realFetch(url, { ...init, headers });
};

const jam = new JamClient({
  sessionUrl: WHARF_JMAP_URL,
  bearerToken: Buffer.from(`${WHARF_USER}:${WHARF_PASSWORD}`).toString('base64'),
});

test('the session names the account and absolute URLs', async () => {
  const session = await jam.session;
  const accountId = await jam.getPrimaryAccount();
  assert.ok(accountId);
  assert.equal(session.username, WHARF_USER);
  assert.match(session.apiUrl, /^https:\/\//);
});

test('mailboxes, and an Email created, queried and read back with references', async () => {
  const accountId = await jam.getPrimaryAccount();
  const [mailboxes] = await jam.api.Mailbox.get({ accountId });
  const drafts = mailboxes.list.find((m) => m.role === 'drafts');
  assert.ok(drafts, 'a drafts mailbox');
  assert.ok(mailboxes.list.find((m) => m.role === 'inbox'));
  const [results] = await jam.requestMany((t) => {
    const set = t.Email.set({
      accountId,
      create: {
        d1: {
          mailboxIds: { [drafts.id]: true },
          keywords: { $draft: true },
          from: [{ name: 'Alice', email: WHARF_USER }],
          to: [{ email: 'bob@example.test' }],
          subject: 'from jmap-jam',
          textBody: [{ partId: 'b', type: 'text/plain' }],
          bodyValues: { b: { value: 'written by an independent client' } },
        },
      },
    });
    const query = t.Email.query({ accountId, filter: { inMailbox: drafts.id } });
    const get = t.Email.get({
      accountId,
      ids: query.$ref('/ids'),
      properties: ['subject', 'from', 'keywords', 'preview'],
    });
    return { set, query, get };
  });
  assert.ok(results.set.created.d1.id);
  assert.deepEqual(results.query.ids, [results.set.created.d1.id]);
  assert.equal(results.get.list[0].subject, 'from jmap-jam');
  assert.equal(results.get.list[0].from[0].email, WHARF_USER);
  assert.equal(results.get.list[0].preview, 'written by an independent client');
});

test('a blob uploaded and downloaded byte for byte', async () => {
  const accountId = await jam.getPrimaryAccount();
  const bytes = new Uint8Array(70000).map((_, i) => (i * 7) & 0xff);
  const up = await jam.uploadBlob(accountId, new Blob([bytes], { type: 'application/octet-stream' }));
  assert.equal(up.size, bytes.length);
  const res = await jam.downloadBlob({
    accountId, blobId: up.blobId, mimeType: 'application/octet-stream', fileName: 'x.bin',
  });
  const back = new Uint8Array(await res.arrayBuffer());
  assert.deepEqual(back, bytes);
});

test('a method error comes back as jam reports it', async () => {
  const accountId = await jam.getPrimaryAccount();
  await assert.rejects(jam.api.Mailbox.get({ accountId, ids: 'nope' }),
    (e) => e.type === 'invalidArguments');
});

test('the vacation response set and read back', async () => {
  const accountId = await jam.getPrimaryAccount();
  const [set] = await jam.api.VacationResponse.set({
    accountId,
    update: { singleton: { isEnabled: true, subject: 'jam is away', textBody: 'back soon' } },
  });
  assert.deepEqual(set.updated, { singleton: null });
  const [got] = await jam.api.VacationResponse.get({ accountId, ids: ['singleton'] });
  assert.equal(got.list[0].isEnabled, true);
  assert.equal(got.list[0].subject, 'jam is away');
  assert.equal(got.list[0].textBody, 'back soon');
  const [off] = await jam.api.VacationResponse.set({
    accountId,
    update: { singleton: { isEnabled: false } },
  });
  assert.deepEqual(off.updated, { singleton: null });
});

test('a reply joins its parent thread; the same subject without references does not', async () => {
  const accountId = await jam.getPrimaryAccount();
  const [mailboxes] = await jam.api.Mailbox.get({ accountId });
  const inbox = mailboxes.list.find((m) => m.role === 'inbox');
  const email = (subject, extra) => ({
    mailboxIds: { [inbox.id]: true },
    from: [{ email: 'bob@example.test' }],
    subject,
    textBody: [{ partId: 'b', type: 'text/plain' }],
    bodyValues: { b: { value: subject } },
    ...extra,
  });
  const [set] = await jam.api.Email.set({
    accountId,
    create: { p: email('jam thread', { messageId: ['jam-thread@example.test'] }) },
  });
  const [more] = await jam.api.Email.set({
    accountId,
    create: {
      r: email('Re: jam thread', {
        inReplyTo: ['jam-thread@example.test'], references: ['jam-thread@example.test'],
      }),
      s: email('jam thread', {}),
    },
  });
  const parent = set.created.p, reply = more.created.r, same = more.created.s;
  assert.equal(reply.threadId, parent.threadId);
  assert.notEqual(same.threadId, parent.threadId);
  const [threads] = await jam.api.Thread.get({ accountId, ids: [parent.threadId] });
  assert.deepEqual(new Set(threads.list[0].emailIds), new Set([parent.id, reply.id]));
});
