// shared.test.mjs - the folders others share and the public folders in the
// webmail's folder tree (doc/webmail.md, "Shared and public folders"), in
// Debian's chromium driven by playwright-core under node:test.
// tests/integration/test_webmail.py (test_shared_folders_in_chromium) makes
// alice's shared "Team" and the public "News" over IMAP and the wharf
// command, then runs this file as bob; the environment names them all
// (WEBMAIL_TEAM_MBOX: a message for Team, imported while bob looks at it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { useChromium } from './browser.mjs';

const env = process.env;
const WHARF = JSON.parse(env.WEBMAIL_WHARF); // the wharf command of the server: [program, args...]
const browser = useChromium();

test('bob sees, opens and only reads what alice shares', async (t) => {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(env.WEBMAIL_URL, { waitUntil: 'networkidle' });
  await page.getByLabel('Email address').fill(env.WEBMAIL_BOB);
  await page.getByLabel('Password', { exact: true }).fill(env.WEBMAIL_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const tree = page.locator('#folder-list');
  const shared = tree.getByRole('group', { name: `Shared by ${env.WEBMAIL_ALICE}` });
  const pub = tree.getByRole('group', { name: 'Public folders' });

  await t.test('the shares are sections of the folder tree, after the own folders', async () => {
    await shared.getByRole('button', { name: /^Team, 1 unread/ }).waitFor();
    await pub.getByRole('button', { name: /^News/ }).waitFor();
    // only what is shared: not alice's Inbox, not her Private folder
    assert.deepEqual(await shared.getByRole('button').allTextContents(), ['▸Team1']);
    const sections = await tree.locator(':scope > li.shared > .section').allTextContents();
    assert.deepEqual(sections, [`Shared by ${env.WEBMAIL_ALICE}`, 'Public folders']);
    assert.equal(await tree.locator(':scope > li:not(.shared)').first().textContent(), '↓Inbox');
  });

  await t.test('a shared folder opens, its message reads, read-only actions are off', async () => {
    await shared.getByRole('button', { name: /^Team/ }).click();
    const r = page.locator('#list-rows .row', { hasText: 'Crane schedule' });
    await r.waitFor();
    await r.click();
    await page.locator('#r-text', { hasText: 'The crane comes on Tuesday.' }).waitFor();
    assert.equal(await page.locator('#r-subject').textContent(), 'Crane schedule');
    // "lr": no delete, no flag, no marking read, no junk, no folder changes
    assert.equal(await page.locator('#delete').isDisabled(), true);
    assert.equal(await page.locator('#flag').isDisabled(), true);
    assert.equal(await page.locator('#unread').isDisabled(), true);
    assert.equal(await page.locator('#junk').isHidden(), true);
    assert.equal(await page.locator('#f-delete').isDisabled(), true);
    assert.equal(await page.locator('#f-rename').isDisabled(), true);
    await page.keyboard.press('Delete'); // the shortcut is refused too: the row stays
    await page.screenshot({ path: `${env.WEBMAIL_SHOTS}/shared.png` });
    await shared.getByRole('button', { name: /^Team, 1 unread/ }).waitFor(); // still unread
    assert.equal(await page.locator('#list-rows .row', { hasText: 'Crane schedule' }).count(), 1);
  });

  await t.test('a message alice gets in Team shows at once, pushed', async () => {
    // the folder is on screen; nothing is clicked: only the push stream can bring it
    execFileSync(WHARF[0], [...WHARF.slice(1), 'import', 'mbox', env.WEBMAIL_ALICE, env.WEBMAIL_TEAM_MBOX, 'Team']);
    await page.locator('#list-rows .row', { hasText: 'Crane moved' }).waitFor({ timeout: 10000 });
    await shared.getByRole('button', { name: /^Team, 2 unread/ }).waitFor(); // and its count
  });

  await t.test('the public folder opens for everyone', async () => {
    await pub.getByRole('button', { name: /^News/ }).click();
    await page.locator('#list-rows .row', { hasText: 'Site news' }).click();
    await page.locator('#r-text', { hasText: 'The canteen opens.' }).waitFor();
  });

  await t.test('a share taken back leaves the tree at the next request', async () => {
    execFileSync(WHARF[0], [...WHARF.slice(1), 'acl', 'del', env.WEBMAIL_ALICE, 'Team', env.WEBMAIL_BOB]);
    await page.locator('#folder-list > li:not(.shared) button', { hasText: 'Inbox' }).click();
    await shared.waitFor({ state: 'detached' });
    await pub.getByRole('button', { name: /^News/ }).waitFor(); // the other share stays
  });

  assert.deepEqual(errors, []);
  await ctx.close();
});
