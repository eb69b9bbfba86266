// Two people in two browser contexts: names, channels, code rooms, messages, presence.
const { test, expect } = require('@playwright/test');
const {
  register, composer, say, texts, createChannel, myRoom, screenshot, failOnDialog, expectNoPolicyViolations,
  openNewRoom, joinFromBrowser, rename, openMyMenu, expectAccessible,
} = require('./helpers');

test('two people create a channel and chat both ways', async ({ browser }) => {
  const ann = await register(browser, 'Ann');
  const bob = await register(browser, 'Bob');

  await createChannel(ann.page, 'lunch');
  // The channel list is live: Bob finds it in the channel browser and joins.
  await joinFromBrowser(bob.page, 'lunch');
  await expect(ann.page.locator('.notice', { hasText: 'Bob joined' })).toBeVisible();

  await say(ann.page, 'pizza or noodles?');
  await expect(texts(bob.page).filter({ hasText: 'pizza or noodles?' })).toHaveCount(1);
  await say(bob.page, 'noodles, obviously');
  await expect(texts(ann.page).filter({ hasText: 'noodles, obviously' })).toHaveCount(1);
  await expect(texts(ann.page).filter({ hasText: 'pizza or noodles?' })).toHaveCount(1);
  await expect(composer(ann.page)).toHaveValue('');

  // Each line shows the server's time and the sender's name in their colour.
  const line = ann.page.locator('.message', { hasText: 'noodles, obviously' });
  await expect(line.locator('time')).toHaveText(/^\d\d:\d\d$/);
  await expect(line.locator('.sender')).toHaveText('Bob');
  await expect(line.locator('.sender')).toHaveAttribute('style', /--name: #[0-9a-f]{6}; --name-dark: #[0-9a-f]{6}/);
  // All of it ran under the page's Content-Security-Policy, nothing blocked (the
  // policy's hash admits trunk's bootstrap; coloured names are style attributes).
  const page = await ann.page.request.get('/');
  expect(page.headers()['content-security-policy']).toContain("script-src 'self' 'wasm-unsafe-eval' 'sha256-");
  await expectNoPolicyViolations(ann.page);
  await expectNoPolicyViolations(bob.page);

  // A taken channel name is refused inline, in the dialog.
  const dialog = await openNewRoom(bob.page);
  await dialog.getByLabel('New channel name').fill('LUNCH');
  await dialog.getByLabel('New channel name').press('Enter');
  await expect(dialog.getByRole('alert').filter({ hasText: 'already exists' })).toBeVisible();
  await bob.page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();

  await screenshot(ann.page, 'chat');
  // A guest's visit logs nothing: no 401 for "who am I", no missing icon.
  expect(ann.consoleErrors).toEqual([]);
  expect(bob.consoleErrors).toEqual([]);
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('only pages fall back to the app: a missing file is a 404', async ({ request }) => {
  expect((await request.get('/favicon.svg')).status()).toBe(200);
  for (const path of ['/favicon.ico', '/missing.js', '/old-bundle_bg.wasm']) {
    expect((await request.get(path)).status(), path).toBe(404);
  }
  const guest = await request.get('/api/session');
  expect(guest.status()).toBe(204);
});

test('a taken or invalid name is refused inline, and a name can be changed', async ({ browser }) => {
  const ann = await register(browser, 'Cora');
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto('/');
  const input = page.getByLabel('Pick a display name');
  await input.fill('a  b');
  await expect(page.getByRole('alert').filter({ hasText: 'several spaces' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Join' })).toBeDisabled();
  await input.fill('CORA');
  await input.press('Enter');
  await expect(page.getByRole('alert').filter({ hasText: 'already called' })).toBeVisible();
  await input.fill('Coralie');
  await input.press('Enter');
  await expect(page.getByLabel('your name')).toHaveText('Coralie');

  // Rename from the menu under the name; a taken one is refused.
  await rename(page, 'cora');
  await expect(page.getByRole('alert').filter({ hasText: 'already called' })).toBeVisible();
  await expect(page.getByLabel('your name')).toContainText('Coralie');
  await rename(page, 'Lie');
  await expect(page.getByLabel('your name')).toContainText('Lie');
  // Others see the new name live.
  await expect(ann.page.getByRole('button', { name: 'Lie (online)' })).toBeVisible();
  await Promise.all([ann.context.close(), context.close()]);
});

test('private rooms are joined by their code and can delete themselves', async ({ browser }) => {
  const ann = await register(browser, 'Dana');
  const bob = await register(browser, 'Eli');
  const create = await openNewRoom(ann.page);
  await create.getByRole('checkbox', { name: 'delete when empty' }).nth(1).check();
  await create.getByRole('button', { name: 'Create private room' }).click();
  await expect(create).toBeHidden();
  const code = (await ann.page.getByLabel('Room code to share').textContent()).trim();
  expect(code).toMatch(/^[A-Z]{12}$/);
  await expect(ann.page.getByText('deleted when empty')).toBeVisible();

  const join = await openNewRoom(bob.page);
  await join.getByLabel('Room code').fill('NOPE');
  await join.getByLabel('Room code').press('Enter');
  await expect(join.getByRole('alert').filter({ hasText: '12 letters' })).toBeVisible();
  await join.getByLabel('Room code').fill(code.toLowerCase());
  await join.getByLabel('Room code').press('Enter');
  await expect(join).toBeHidden();
  await expect(bob.page.getByRole('heading', { name: `Room ${code}` })).toBeVisible();
  await say(bob.page, 'found you');
  await expect(texts(ann.page).filter({ hasText: 'found you' })).toHaveCount(1);

  // Both leave: the room is gone, its code no longer works.
  await bob.page.getByRole('button', { name: 'Leave' }).click();
  await expect(myRoom(bob.page, `Room ${code}`)).toHaveCount(0);
  await expect(ann.page.locator('.notice', { hasText: 'Eli left' })).toBeVisible();
  await ann.page.getByRole('button', { name: 'Leave' }).click();
  await expect(myRoom(ann.page, `Room ${code}`)).toHaveCount(0);
  const again = await openNewRoom(bob.page);
  await again.getByLabel('Room code').fill(code);
  await again.getByLabel('Room code').press('Enter');
  await expect(again.getByRole('alert').filter({ hasText: 'No room has the code' })).toBeVisible();
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('clicking a user pops a private room up on both sides', async ({ browser }) => {
  const ann = await register(browser, 'Finn');
  const bob = await register(browser, 'Gus');
  await ann.page.getByRole('button', { name: 'Gus (online)' }).click();
  const annPopup = ann.page.getByRole('region', { name: 'Direct messages with Gus' });
  const bobPopup = bob.page.getByRole('region', { name: 'Direct messages with Finn' });
  await expect(annPopup).toBeVisible();
  await expect(bobPopup).toBeVisible();

  await annPopup.getByRole('textbox', { name: 'Message Gus' }).fill('psst, Gus');
  await annPopup.getByRole('textbox', { name: 'Message Gus' }).press('Enter');
  await expect(texts(bobPopup).filter({ hasText: 'psst, Gus' })).toHaveCount(1);
  await screenshot(bob.page, 'direct-message');

  // Minimized: a new message shows as unread on the title bar; opening clears it.
  await bobPopup.getByRole('button', { name: /Finn/ }).first().click();
  await expect(bobPopup.getByRole('textbox')).toHaveCount(0);
  await annPopup.getByRole('textbox', { name: 'Message Gus' }).fill('still there?');
  await annPopup.getByRole('textbox', { name: 'Message Gus' }).press('Enter');
  await expect(bobPopup.getByLabel('1 unread')).toBeVisible();
  await bobPopup.getByRole('button', { name: /Finn/ }).first().click();
  await expect(texts(bobPopup).filter({ hasText: 'still there?' })).toHaveCount(1);
  await expect(bobPopup.getByLabel('1 unread')).toHaveCount(0);

  // Closed: a new message brings it back.
  await bobPopup.getByRole('button', { name: 'Close' }).click();
  await expect(bobPopup).toHaveCount(0);
  await annPopup.getByRole('textbox', { name: 'Message Gus' }).fill('come back');
  await annPopup.getByRole('textbox', { name: 'Message Gus' }).press('Enter');
  await expect(texts(bobPopup).filter({ hasText: 'come back' })).toHaveCount(1);
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('an unread badge appears for a room not in view and clears when opened', async ({ browser }) => {
  const ann = await register(browser, 'Hana');
  const bob = await register(browser, 'Ivo');
  await createChannel(bob.page, 'elsewhere'); // Bob now looks at #elsewhere
  await say(ann.page, 'one');
  await say(ann.page, 'two');
  const general = myRoom(bob.page, '#general');
  await expect(general.getByLabel('2 unread')).toBeVisible();
  await screenshot(bob.page, 'unread');
  await general.click();
  await expect(texts(bob.page).filter({ hasText: 'two' })).toHaveCount(1);
  await expect(general.getByLabel(/unread/)).toHaveCount(0);
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('user text is shown as text, never run as HTML', async ({ browser }) => {
  const evil = '<img src=x onerror=alert(1)>';
  const mallory = await register(browser, evil);
  const ann = await register(browser, 'Jo');
  await say(mallory.page, evil);
  for (const page of [mallory.page, ann.page]) {
    await expect(texts(page).filter({ hasText: evil })).toHaveCount(1);
    await expect(page.locator('.message .sender', { hasText: evil })).toHaveCount(1);
    await expect(page.locator('.messages img')).toHaveCount(0);
  }
  await expect(ann.page.getByRole('button', { name: `${evil} (online)` })).toBeVisible();
  await Promise.all([mallory.context.close(), ann.context.close()]);
});

test('presence: a user who leaves goes offline after the grace period', async ({ browser }) => {
  const ann = await register(browser, 'Kim');
  const bob = await register(browser, 'Lee');
  await expect(ann.page.getByRole('button', { name: 'Lee (online)' })).toBeVisible();
  await bob.context.close();
  await expect(ann.page.getByRole('button', { name: 'Lee (offline)' })).toBeVisible();
  await ann.context.close();
});

test('the 360 px layout puts rooms and people in a drawer', async ({ browser }) => {
  const phone = await register(browser, 'Pocket', { viewport: { width: 360, height: 740 } });
  const { page } = phone;
  const nav = page.getByRole('navigation', { name: 'Rooms and people' });
  await expect(nav).toBeHidden();
  await say(page, 'typed on a phone');
  await expect(texts(page).filter({ hasText: 'typed on a phone' })).toHaveCount(1);
  await screenshot(page, 'phone');
  await page.getByRole('button', { name: 'Menu' }).click();
  await expect(nav).toBeVisible();
  await screenshot(page, 'phone-drawer');
  await nav.getByRole('button', { name: '#general' }).first().click();
  await expect(nav).toBeHidden();
  // Nothing overflows sideways.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await phone.context.close();
});

test('a guest signs out from the menu under the name: warned, forgotten, the name free at once', async ({ browser }) => {
  const ann = await register(browser, 'Mia');
  const watcher = await register(browser, 'Ned');
  await say(ann.page, 'my secret history');
  const keysBefore = await ann.page.evaluate(() => Object.keys(localStorage));
  expect(keysBefore.some((k) => k.endsWith('/credentials'))).toBeTruthy();
  await openMyMenu(ann.page);
  await ann.page.getByRole('menuitem', { name: 'Sign out' }).click();
  // A guest is told what signing out costs, and can step back.
  const warning = ann.page.getByRole('alertdialog', { name: 'Sign out?' });
  await expect(warning).toContainText('forgets your name and your history in this browser');
  await expect(warning.getByRole('button', { name: 'Sign out and forget' })).toBeFocused();
  await screenshot(ann.page, 'sign-out');
  await expectAccessible(ann.page, 'the sign-out warning');
  await warning.getByRole('button', { name: 'Cancel' }).click();
  await expect(warning).toHaveCount(0);
  await expect(ann.page.getByLabel('your name')).toHaveText('Mia');

  await openMyMenu(ann.page);
  await ann.page.getByRole('menuitem', { name: 'Sign out' }).click();
  await ann.page.getByRole('button', { name: 'Sign out and forget' }).click();
  await expect(ann.page.getByLabel('Pick a display name')).toBeVisible();
  const keysAfter = await ann.page.evaluate(() => Object.keys(localStorage));
  expect(keysAfter).toEqual([]);
  // The name is free at once — no "someone online is already called Mia" (that was
  // me) — and whoever takes it is someone new: People lists one Mia, online.
  await ann.page.getByLabel('Pick a display name').fill('Mia');
  await ann.page.getByLabel('Pick a display name').press('Enter');
  await expect(ann.page.getByLabel('your name')).toHaveText('Mia');
  const people = watcher.page.getByRole('navigation').locator('.person-name', { hasText: /^Mia$/ });
  await expect(people).toHaveCount(1);
  await expect(watcher.page.getByRole('button', { name: 'Mia (online)' })).toHaveCount(1);
  await Promise.all([ann.context.close(), watcher.context.close()]);
});

test('blocking someone from their menu: no popup, no messages, they are not told', async ({ browser }) => {
  const ann = await register(browser, 'Nell');
  const pest = await register(browser, 'Otto');
  await ann.page.getByRole('button', { name: 'More for Otto' }).click();
  await ann.page.getByRole('menuitem', { name: 'Block Otto' }).click();
  await expect(ann.page.getByRole('button', { name: 'Otto (online), blocked' })).toBeDisabled();

  // Otto writes to Nell directly and in #general: all looks normal to him…
  await pest.page.getByRole('button', { name: 'Nell (online)' }).click();
  const pestPopup = pest.page.getByRole('region', { name: 'Direct messages with Nell' });
  await pestPopup.getByRole('textbox', { name: 'Message Nell' }).fill('hey, it is me');
  await pestPopup.getByRole('textbox', { name: 'Message Nell' }).press('Enter');
  await expect(texts(pestPopup).filter({ hasText: 'hey, it is me' })).toHaveCount(1);
  await say(pest.page, 'spam in general');
  await expect(texts(pest.page.getByRole('main')).filter({ hasText: 'spam in general' })).toHaveCount(1);
  // …but Nell sees none of it: no popup, no message, nothing unread.
  await say(ann.page, 'after the spam');
  await expect(texts(ann.page).filter({ hasText: 'after the spam' })).toHaveCount(1);
  await expect(texts(ann.page).filter({ hasText: 'spam in general' })).toHaveCount(0);
  await expect(ann.page.getByRole('region', { name: 'Direct messages with Otto' })).toHaveCount(0);
  await expect(ann.page.locator('.notice', { hasText: 'Otto' })).toHaveCount(0);

  // Unblocking (from the Blocked list) brings back the conversation and his messages.
  await ann.page.getByRole('button', { name: 'Unblock Otto' }).click();
  const annPopup = ann.page.getByRole('region', { name: 'Direct messages with Otto' });
  await expect(texts(annPopup).filter({ hasText: 'hey, it is me' })).toHaveCount(1);
  await expect(texts(ann.page.getByRole('main')).filter({ hasText: 'spam in general' })).toHaveCount(1);
  await expect(ann.page.getByRole('button', { name: 'Otto (online)', exact: true })).toBeEnabled();
  await Promise.all([ann.context.close(), pest.context.close()]);
});

test('a rename shows at once in the direct-message list, popup title and past messages', async ({ browser }) => {
  const ann = await register(browser, 'Pia');
  const bob = await register(browser, 'Quin');
  await bob.page.getByRole('button', { name: 'Pia (online)' }).click();
  const bobPopup = bob.page.getByRole('region', { name: 'Direct messages with Pia' });
  await bobPopup.getByRole('textbox', { name: 'Message Pia' }).fill('before the rename');
  await bobPopup.getByRole('textbox', { name: 'Message Pia' }).press('Enter');
  const annPopup = ann.page.getByRole('region', { name: 'Direct messages with Quin' });
  await expect(texts(annPopup).filter({ hasText: 'before the rename' })).toHaveCount(1);

  await rename(bob.page, 'Quincy');
  const renamed = ann.page.getByRole('region', { name: 'Direct messages with Quincy' });
  await expect(renamed).toBeVisible();
  await expect(myRoom(ann.page, 'Quincy')).toBeVisible();
  await expect(renamed.locator('.message .sender')).toHaveText('Quincy');
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('the composer takes several lines, and web addresses become safe links', async ({ browser }) => {
  const ann = await register(browser, 'Rae');
  const box = composer(ann.page);
  await box.fill('first line');
  await box.press('Shift+Enter');
  await box.pressSequentially('second line');
  await box.press('Enter');
  const sent = texts(ann.page).filter({ hasText: 'second line' });
  await expect(sent).toHaveCount(1);
  expect(await sent.innerText()).toBe('first line\nsecond line');
  await expect(box).toHaveValue('');

  await say(ann.page, 'docs at https://example.org/guide. and javascript:alert(1)');
  const line = ann.page.locator('.message', { hasText: 'docs at' });
  const link = line.getByRole('link', { name: 'https://example.org/guide' });
  await expect(link).toHaveAttribute('href', 'https://example.org/guide');
  await expect(link).toHaveAttribute('target', '_blank');
  await expect(link).toHaveAttribute('rel', 'noopener noreferrer nofollow');
  await expect(line.getByRole('link')).toHaveCount(1);
  await ann.context.close();
});

/** The on-screen box of a locator. */
async function box(locator) {
  const b = await locator.boundingBox();
  expect(b).not.toBeNull();
  return b;
}

function overlaps(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

test('desktop: a popup docks beside the composer, never over it; the composer has focus', async ({ browser }) => {
  const ann = await register(browser, 'Sol');
  const bob = await register(browser, 'Tam');
  await expect(ann.page.getByText('Click a person to talk privately.')).toBeVisible();
  await createChannel(ann.page, 'focus');
  await expect(composer(ann.page)).toBeFocused();
  await ann.page.getByRole('button', { name: 'Tam (online)' }).click();
  const popup = ann.page.getByRole('region', { name: 'Direct messages with Tam' });
  await expect(popup).toBeVisible();
  await expect(ann.page.getByText('Click a person to talk privately.')).toHaveCount(0);
  expect(overlaps(await box(popup), await box(composer(ann.page)))).toBe(false);
  // The main composer still takes a message.
  await say(ann.page, 'typed beside the popup');
  await expect(texts(ann.page.getByRole('main')).filter({ hasText: 'typed beside the popup' })).toHaveCount(1);
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('phone: a direct message fills the screen with a back arrow; the drawer has a backdrop, Escape and an unread count', async ({ browser }) => {
  const phone = await register(browser, 'Uma', { viewport: { width: 360, height: 740 } });
  const bob = await register(browser, 'Vic');
  const { page } = phone;
  await bob.page.getByRole('button', { name: 'Uma (online)' }).click();
  await bob.page.getByRole('region', { name: 'Direct messages with Uma' }).getByRole('textbox').fill('on your phone?');
  await bob.page.getByRole('region', { name: 'Direct messages with Uma' }).getByRole('textbox').press('Enter');
  const popup = page.getByRole('region', { name: 'Direct messages with Vic' });
  await expect(texts(popup).filter({ hasText: 'on your phone?' })).toHaveCount(1);
  const full = await box(popup);
  expect(full.width).toBe(360);
  expect(full.height).toBeGreaterThan(600);
  await popup.getByRole('button', { name: 'Back' }).click();
  await expect(popup.getByRole('textbox')).toHaveCount(0);
  await expect(composer(page)).toBeVisible();

  // A message while folded: ☰ says so.
  await bob.page.getByRole('region', { name: 'Direct messages with Uma' }).getByRole('textbox').fill('hello again');
  await bob.page.getByRole('region', { name: 'Direct messages with Uma' }).getByRole('textbox').press('Enter');
  await expect(page.getByRole('button', { name: 'Menu, 1 unread' })).toBeVisible();

  const nav = page.getByRole('navigation', { name: 'Rooms and people' });
  await page.getByRole('button', { name: /^Menu/ }).click();
  await expect(nav).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(nav).toBeHidden();
  await page.getByRole('button', { name: /^Menu/ }).click();
  await page.mouse.click(350, 400); // beside the drawer, on the dimmed page
  await expect(nav).toBeHidden();
  // Choosing the conversation from the drawer closes it and opens the conversation.
  await page.getByRole('button', { name: /^Menu/ }).click();
  await nav.locator('.room-link', { hasText: 'Vic' }).click();
  await expect(nav).toBeHidden();
  await expect(texts(popup).filter({ hasText: 'hello again' })).toHaveCount(1);
  await expect(page.getByRole('button', { name: 'Menu', exact: true })).toBeVisible();
  await Promise.all([phone.context.close(), bob.context.close()]);
});

test('a conversation reads easily: days, messages grouped by sender, notices collapsed', async ({ browser }) => {
  const ann = await register(browser, 'Abe Lin');
  const bob = await register(browser, 'Bea');
  const cy = await register(browser, 'Cato');
  await createChannel(ann.page, 'reading');
  for (const person of [bob, cy]) {
    await joinFromBrowser(person.page, 'reading');
  }
  const main = ann.page.getByRole('main');
  await expect(main.locator('.notice')).toHaveText(/Abe Lin and 2 others joined/);
  await expect(main.locator('.day')).toHaveText('Today');

  await say(ann.page, 'first thought');
  await expect(texts(main).filter({ hasText: 'first thought' })).toHaveCount(1);
  await say(ann.page, 'second thought');
  await expect(texts(main).filter({ hasText: 'second thought' })).toHaveCount(1);
  await say(bob.page, 'an answer');
  await expect(texts(main).filter({ hasText: 'an answer' })).toHaveCount(1);
  // Two groups: Abe's two lines under one avatar and name, then Bea's.
  const groups = main.locator('.message.first');
  await expect(groups).toHaveCount(2);
  await expect(groups.nth(0).locator('.avatar')).toHaveText('AL');
  await expect(groups.nth(0).locator('.sender')).toHaveText('Abe Lin');
  const second = main.locator('.message', { hasText: 'second thought' });
  await expect(second.locator('.sender')).toHaveClass(/sr-only/); // for screen readers only
  await expect(second.locator('.avatar')).toHaveCount(0);
  await expect(groups.nth(1).locator('.sender')).toHaveText('Bea');
  await Promise.all([ann.context.close(), bob.context.close(), cy.context.close()]);
});

test('a small Markdown: emphasis, strong, code, quotes, code blocks, links — and markup stays text', async ({ browser }) => {
  const ann = await register(browser, 'Tess');
  const bob = await register(browser, 'Ugo');
  const payload = '<img src=x onerror=alert(1)>';
  await composer(ann.page).fill(
    `**plan** and *maybe* \`npm ci\`\n> what Ugo said\n\`\`\`\n${payload}\n\`\`\`\n[the docs](https://example.org/docs) [bad](javascript:alert(1)) ${payload}`,
  );
  await composer(ann.page).press('Enter');
  const line = bob.page.getByRole('main').locator('.message', { hasText: 'what Ugo said' });
  await expect(line.locator('strong')).toHaveText('plan');
  await expect(line.locator('em')).toHaveText('maybe');
  await expect(line.locator('.para code')).toHaveText('npm ci');
  await expect(line.locator('blockquote')).toHaveText('what Ugo said');
  await expect(line.locator('pre.code-block code')).toHaveText(payload);
  const link = line.getByRole('link', { name: 'the docs' });
  await expect(link).toHaveAttribute('href', 'https://example.org/docs');
  await expect(link).toHaveAttribute('rel', 'noopener noreferrer nofollow');
  // Only the one safe link; the javascript: one and the payload stay text, nothing runs.
  await expect(line.getByRole('link')).toHaveCount(1);
  await expect(line).toContainText('[bad](javascript:alert(1))');
  await expect(bob.page.locator('.messages img')).toHaveCount(0);
  await expectNoPolicyViolations(bob.page);
  await Promise.all([ann.context.close(), bob.context.close()]);
});
