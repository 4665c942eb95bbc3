// shared.test.mjs - the folders others share and the public folders in the
// webmail's folder tree (doc/webmail.md, "Shared and public folders"), in
// Debian's chromium driven by playwright-core under node:test.
// tests/integration/test_webmail.py (test_shared_folders_in_chromium) makes
// alice's shared "Team", "Crew" and "Trash" and the public "News" and
// "Board" over IMAP and the wharf command, then runs this file as bob, who
// reads, copies and moves between the accounts, makes a folder in Team and
// deletes in Crew and Board; the environment names them all
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
    assert.deepEqual(await shared.getByRole('button').allTextContents(), ['▸Trash', '▸Crew1', '▸Team1']);
    const sections = await tree.locator(':scope > li.shared > .section').allTextContents();
    assert.deepEqual(sections, [`Shared by ${env.WEBMAIL_ALICE}`, 'Public folders']);
    assert.equal(await tree.locator(':scope > li:not(.shared)').first().textContent(), '↓Inbox1'); // Site plan
  });

  await t.test('a shared folder opens, its message reads, read-only actions are off', async () => {
    await shared.getByRole('button', { name: /^Team/ }).click();
    const r = page.locator('#list-rows .row', { hasText: 'Crane schedule' });
    await r.waitFor();
    await r.click();
    await page.locator('#r-text', { hasText: 'The crane comes on Tuesday.' }).waitFor();
    assert.equal(await page.locator('#r-subject').textContent(), 'Crane schedule');
    // "lrik": no delete, no flag, no marking read, no junk, no rename or delete of the folder
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

  const inbox = tree.locator(':scope > li:not(.shared) > button', { hasText: 'Inbox' });
  const notice = page.locator('#notice');

  await t.test('a message of the shared folder is copied out by drag and drop', async () => {
    await shared.getByRole('button', { name: /^Team/ }).click();
    const r = page.locator('#list-rows .row', { hasText: 'Crane schedule' });
    await r.dragTo(inbox); // no "t", "e" in Team: a copy (Email/copy), the original stays
    await notice.getByText('1 message copied to Inbox.').waitFor();
    await page.getByRole('button', { name: 'Inbox, 2 unread' }).waitFor();
    assert.equal(await page.locator('#list-rows .row', { hasText: 'Crane schedule' }).count(), 1);
    await shared.getByRole('button', { name: /^Team, 2 unread/ }).waitFor();
  });

  await t.test('a subfolder is made in the shared folder, which may not be deleted', async () => {
    // "k": New folder makes one inside Team; no "x": Rename and Delete off, and the reason said
    assert.equal(await page.locator('#f-new').isDisabled(), false);
    assert.equal(await page.locator('#f-delete').isDisabled(), true);
    assert.equal(await page.locator('#f-rename').isDisabled(), true);
    const why = page.locator('#f-why');
    assert.equal(await why.textContent(),
      `“Team” is ${env.WEBMAIL_ALICE}'s folder: you may not rename it, delete it (${env.WEBMAIL_ALICE} decides).`);
    assert.equal(await page.locator('#f-delete').getAttribute('aria-describedby'), 'f-why');
    assert.equal(await why.isVisible(), true);
    await page.locator('#f-new').click();
    const dialog = page.locator('#folder-dialog');
    const inside = dialog.getByRole('combobox', { name: 'Inside' });
    // only the folders of alice's that take subfolders: never her top level
    assert.deepEqual(await inside.locator('option').allTextContents(), ['Team']);
    await dialog.getByRole('textbox', { name: 'Name' }).fill('Plans');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    // it starts with Team's rights (the store copies the parent's ACL): in bob's tree under
    // Team at once, opened, with Team's rights ("k": New folder on; Rename, Delete off)
    const plans = shared.getByRole('group').getByRole('button', { name: 'Plans' });
    await plans.waitFor();
    assert.equal(await plans.getAttribute('aria-current'), 'true');
    assert.equal(await page.locator('#reader').isHidden(), true); // Team's message left with Team
    assert.equal(await page.locator('#f-new').isDisabled(), false);
    assert.equal(await page.locator('#f-delete').isDisabled(), true);
    assert.equal(await why.textContent(),
      `“Plans” is ${env.WEBMAIL_ALICE}'s folder: you may not rename it, delete it (${env.WEBMAIL_ALICE} decides).`);
    assert.equal(await notice.getByText(/once it is shared/).count(), 0); // nothing to explain
    await page.screenshot({ path: `${env.WEBMAIL_SHOTS}/shared-actions.png` });
  });

  await t.test('an own message moves into the shared folder by drag and drop', async () => {
    await inbox.click();
    const r = page.locator('#list-rows .row', { hasText: 'Site plan' });
    await r.dragTo(shared.getByRole('button', { name: /^Team/ })); // "i" there: copied, then removed here
    await notice.getByText(`1 message moved to Team (${env.WEBMAIL_ALICE}).`).waitFor();
    await r.waitFor({ state: 'detached' });
    await shared.getByRole('button', { name: /^Team, 3 unread/ }).waitFor();
    assert.equal(await page.locator('#list-rows .row', { hasText: 'Crane schedule' }).count(), 1);
  });

  await t.test('delete in a shared folder: to its account\'s Trash, else asked', async () => {
    // Crew ("t", "e") and alice's Trash ("i"): the message goes to her Trash
    await shared.getByRole('button', { name: /^Crew/ }).click();
    const r = page.locator('#list-rows .row', { hasText: 'Crew rota' });
    await r.click();
    await page.locator('#r-subject', { hasText: 'Crew rota' }).waitFor();
    await page.locator('#delete').click();
    await r.waitFor({ state: 'detached' });
    await shared.getByRole('button', { name: /^Trash, 1 unread/ }).waitFor();
    // the public Board: no Trash there, so the user is asked; No keeps it, Yes destroys it
    await pub.getByRole('button', { name: /^Board/ }).click();
    const b = page.locator('#list-rows .row', { hasText: 'Board minutes' });
    await b.click();
    await page.locator('#r-subject', { hasText: 'Board minutes' }).waitFor();
    const asked = [];
    page.once('dialog', (d) => { asked.push(d.message()); d.dismiss(); });
    await page.locator('#delete').click();
    await pub.getByRole('button', { name: /^Board/ }).click(); // a round trip after the refusal
    assert.deepEqual(asked, ['No Trash in the public folders that you may put messages in: delete 1 message(s) for good?']);
    await b.click(); // still there in the folder's list, asked for afresh
    await page.locator('#r-subject', { hasText: 'Board minutes' }).waitFor();
    page.once('dialog', (d) => d.accept());
    await page.locator('#delete').click();
    await b.waitFor({ state: 'detached' });
  });

  await t.test('the public folder opens for everyone', async () => {
    await pub.getByRole('button', { name: /^News/ }).click();
    await page.locator('#list-rows .row', { hasText: 'Site news' }).click();
    await page.locator('#r-text', { hasText: 'The canteen opens.' }).waitFor();
  });

  await t.test('a share taken back leaves the tree at the next request', async () => {
    for (const box of ['Team', 'Team/Plans', 'Crew', 'Trash']) execFileSync(WHARF[0], [...WHARF.slice(1), 'acl', 'del', env.WEBMAIL_ALICE, box, env.WEBMAIL_BOB]);
    await page.locator('#folder-list > li:not(.shared) button', { hasText: 'Inbox' }).click();
    await shared.waitFor({ state: 'detached' });
    await pub.getByRole('button', { name: /^News/ }).waitFor(); // the other share stays
  });

  assert.deepEqual(errors, []);
  await ctx.close();
});
