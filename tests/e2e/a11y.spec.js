// Accessibility and the sidebar's dialogs: axe-core (WCAG 2.1 A and AA) on every screen
// a person meets, on a desktop, a 360 px phone and in dark mode; the keyboard path
// (skip link, a focusable message list); what a screen reader is told; the "+" dialog
// and the channel browser with member counts.
const { test, expect } = require('@playwright/test');
const {
  register, composer, say, texts, createChannel, screenshot, failOnDialog, openNewRoom, openBrowser,
  expectAccessible, openMyMenu,
} = require('./helpers');

const PHONE = { viewport: { width: 360, height: 740 } };

test('the welcome screens pass axe-core, light and dark', async ({ browser }) => {
  for (const colorScheme of ['light', 'dark']) {
    const context = await browser.newContext({ colorScheme });
    const page = await context.newPage();
    failOnDialog(page);
    await page.goto('/');
    await expect(page.getByLabel('Pick a display name')).toBeVisible();
    await expectAccessible(page, `the welcome screen (${colorScheme})`);
    await page.getByRole('button', { name: 'create an account' }).click();
    await expect(page.getByRole('heading', { name: 'Create an account' })).toBeVisible();
    await expectAccessible(page, `the sign-up form (${colorScheme})`);
    await context.close();
  }
});

test('desktop: chat, popup, menus and both dialogs pass axe-core, light and dark', async ({ browser }) => {
  for (const colorScheme of ['light', 'dark']) {
    const ada = await register(browser, `Ada-${colorScheme}`, { colorScheme });
    const bram = await register(browser, `Bram-${colorScheme}`, { colorScheme });
    await say(bram.page, `a line to read in ${colorScheme}`);
    await expect(texts(ada.page).filter({ hasText: `a line to read in ${colorScheme}` })).toHaveCount(1);
    await expectAccessible(ada.page, `the chat (${colorScheme})`);

    await ada.page.getByRole('button', { name: `Bram-${colorScheme} (online)` }).click();
    const popup = ada.page.getByRole('region', { name: `Direct messages with Bram-${colorScheme}` });
    await popup.getByRole('textbox').fill('hello there');
    await popup.getByRole('textbox').press('Enter');
    await expect(texts(popup).filter({ hasText: 'hello there' })).toHaveCount(1);
    await expectAccessible(ada.page, `the chat with a popup (${colorScheme})`);

    await ada.page.getByRole('button', { name: `More for Bram-${colorScheme}` }).click();
    await expectAccessible(ada.page, `a person's menu (${colorScheme})`);
    await ada.page.keyboard.press('Escape');
    await openMyMenu(ada.page);
    await expectAccessible(ada.page, `the menu under my name (${colorScheme})`);
    await ada.page.keyboard.press('Escape');

    const dialog = await openNewRoom(ada.page);
    await expectAccessible(ada.page, `the new-room dialog (${colorScheme})`);
    if (colorScheme === 'light') await screenshot(ada.page, 'new-room');
    await ada.page.keyboard.press('Escape');
    await expect(dialog).toBeHidden();
    await openBrowser(ada.page);
    await expectAccessible(ada.page, `the channel browser (${colorScheme})`);
    if (colorScheme === 'dark') await screenshot(ada.page, 'chat-dark');
    await ada.page.keyboard.press('Escape');
    await Promise.all([ada.context.close(), bram.context.close()]);
  }
});

test('phone: the chat, the drawer, a full-screen conversation and a dialog pass axe-core', async ({ browser }) => {
  const phone = await register(browser, 'Cleo', PHONE);
  const other = await register(browser, 'Dov');
  const { page } = phone;
  await expectAccessible(page, 'the chat on a phone');
  await page.getByRole('button', { name: /^Menu/ }).click();
  await expect(page.getByRole('navigation', { name: 'Rooms and people' })).toBeVisible();
  await expectAccessible(page, 'the open drawer');
  // A dialog opened from the drawer stays usable on a phone.
  const dialog = await openNewRoom(page);
  const size = await dialog.boundingBox();
  expect(size.width).toBeLessThanOrEqual(360);
  await expectAccessible(page, 'the new-room dialog on a phone');
  await page.keyboard.press('Escape');

  await other.page.getByRole('button', { name: 'Cleo (online)' }).click();
  const otherPopup = other.page.getByRole('region', { name: 'Direct messages with Cleo' });
  await otherPopup.getByRole('textbox').fill('reading on a phone?');
  await otherPopup.getByRole('textbox').press('Enter');
  const popup = page.getByRole('region', { name: 'Direct messages with Dov' });
  await expect(texts(popup).filter({ hasText: 'reading on a phone?' })).toHaveCount(1);
  await expectAccessible(page, 'a full-screen conversation');
  await Promise.all([phone.context.close(), other.context.close()]);
});

test('keyboard: a skip link leads to the message box, and the message list scrolls with keys', async ({ browser }) => {
  const edda = await register(browser, 'Edda', { viewport: { width: 1280, height: 600 } });
  const { page } = edda;
  for (let i = 1; i <= 40; i += 1) {
    await say(page, `line ${i}`);
  }
  await expect(texts(page).filter({ hasText: /^line 40$/ })).toHaveCount(1);
  // The skip link is the page's first stop for Tab, shows when focused, and moves the
  // focus to the message box.
  const firstStop = await page.evaluate(() =>
    document.querySelector('a[href], button:not(:disabled), input, textarea, [tabindex="0"]').textContent);
  expect(firstStop).toBe('Skip to the message box');
  const skip = page.getByRole('link', { name: 'Skip to the message box' });
  await expect(skip).not.toBeInViewport();
  await skip.focus();
  await expect(skip).toBeInViewport();
  await page.keyboard.press('Enter');
  await expect(composer(page)).toBeFocused();

  // Shift+Tab from the box: the paperclip button, then the message list, which scrolls
  // with the keys.
  const list = page.getByRole('list', { name: 'Messages in #general' });
  await page.keyboard.press('Shift+Tab');
  await expect(page.getByRole('main').getByRole('button', { name: 'Attach files' })).toBeFocused();
  await page.keyboard.press('Shift+Tab');
  await expect(list).toBeFocused();
  const bottom = await list.evaluate((el) => el.scrollTop);
  await page.keyboard.press('PageUp');
  await expect.poll(() => list.evaluate((el) => el.scrollTop)).toBeLessThan(bottom);
  // Focus is visible: an outline, not the browser's nothing.
  expect(await list.evaluate((el) => getComputedStyle(el).outlineStyle)).toBe('solid');
  await edda.context.close();
});

test('a screen reader hears each new message once, never the history; presence is said in words', async ({ browser }) => {
  const fitz = await register(browser, 'Fitz');
  const gwen = await register(browser, 'Gwen');
  const main = fitz.page.getByRole('main');
  // The list itself is not a live region (it would read out every page of history).
  await expect(main.getByRole('list', { name: /^Messages in/ })).not.toHaveAttribute('aria-live', /.+/);
  // (The typing line is a live region of its own.)
  const announcer = main.locator('.sr-only[aria-live="polite"]');
  await expect(announcer).toHaveText('');
  await say(gwen.page, 'can you hear me?');
  await expect(announcer).toHaveText('Gwen: can you hear me?');
  // My own messages are not read back to me.
  await say(fitz.page, 'loud and clear');
  await expect(texts(main).filter({ hasText: 'loud and clear' })).toHaveCount(1);
  await expect(announcer).toHaveText('Gwen: can you hear me?');
  // Online or offline is in the words, not only the dot's colour and shape.
  await expect(fitz.page.getByRole('button', { name: 'Gwen (online)' })).toBeVisible();
  await Promise.all([fitz.context.close(), gwen.context.close()]);
});

test('"+" creates rooms in a dialog; the channel browser lists every channel with its members', async ({ browser }) => {
  const hal = await register(browser, 'Hal');
  const iris = await register(browser, 'Iris');
  // Your rooms lists what I am in, once; channels I am not in are only in the browser.
  await createChannel(hal.page, 'quiet-corner');
  await createChannel(hal.page, 'busy-hall');
  const irisNav = iris.page.getByRole('navigation', { name: 'Rooms and people' });
  await expect(irisNav.getByRole('button', { name: /^Browse channels \(\d+\)$/ })).toBeVisible();
  await expect(irisNav.getByText('#busy-hall')).toHaveCount(0);
  await expect(irisNav.locator('.room-link', { hasText: '#general' })).toHaveCount(1);

  const browse = await openBrowser(iris.page);
  const row = (dialog, name) => dialog.locator('.directory-row', { hasText: `#${name}` });
  await expect(row(browse, 'busy-hall')).toContainText('1 member');
  await expect(row(browse, 'quiet-corner')).toContainText('1 member');
  await expect(row(browse, 'general').getByRole('button', { name: 'Open #general' })).toBeVisible();
  await browse.getByRole('button', { name: 'Join #busy-hall' }).click();
  await expect(browse).toBeHidden();
  await expect(iris.page.getByRole('heading', { name: '#busy-hall' })).toBeVisible();
  await expect(composer(iris.page)).toBeFocused();
  await expect(irisNav.locator('.room-link', { hasText: '#busy-hall' })).toHaveCount(1);

  // The server counts at most every 5 s for everyone: a browser opened again soon
  // after shows the new count within that.
  let again;
  await expect.poll(async () => {
    if (again) await hal.page.keyboard.press('Escape');
    again = await openBrowser(hal.page);
    return row(again, 'busy-hall').textContent();
  }, { timeout: 15_000, intervals: [1000] }).toContain('2 members');
  // Busiest first; a filter (any case, '#' or not) narrows the list.
  const names = await again.locator('.directory-row .room-name').allTextContents();
  expect(names.indexOf('#busy-hall')).toBeLessThan(names.indexOf('#quiet-corner'));
  await again.getByLabel('Find a channel').fill('#QUIET');
  await expect(again.locator('.directory-row')).toHaveCount(1);
  await again.getByLabel('Find a channel').fill('nothing-like-this');
  await expect(again.getByText('No channel has that in its name.')).toBeVisible();
  // Escape first empties the search field (as every search field does), then closes.
  await hal.page.keyboard.press('Escape');
  await expect(again.getByLabel('Find a channel')).toHaveValue('');
  await hal.page.keyboard.press('Escape');
  await expect(again).toBeHidden();
  // Escape gave the focus back to the button that opened the browser.
  await expect(hal.page.getByRole('button', { name: /^Browse channels/ })).toBeFocused();
  await Promise.all([hal.context.close(), iris.context.close()]);
});
