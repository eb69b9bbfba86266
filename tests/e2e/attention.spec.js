// What calls for attention: @mentions offered while typing and highlighted for the
// person mentioned, counted apart; a notification for a hidden tab; read on one page,
// cleared on another page of the same person; the page title's count; typing shown
// and gone; a muted room's plain count hidden.
const { test, expect } = require('@playwright/test');
const {
  register, composer, say, texts, createChannel, joinFromBrowser, myRoom, screenshot, expectAccessible,
} = require('./helpers');

/** Makes the page report itself hidden (as a tab in the background would). */
async function hide(page) {
  await page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
  });
}

/** Records every notification the page raises, in `window.__notes`. */
async function recordNotifications(page) {
  await page.evaluate(() => {
    window.__notes = [];
    window.__raised = [];
    const Real = window.Notification;
    window.Notification = class extends Real {
      constructor(title, options) {
        super(title, options);
        window.__notes.push({ title, body: options && options.body });
        window.__raised.push(this);
      }
    };
  });
}

test('a mention is offered, highlighted, counted apart and notified in a hidden tab', async ({ browser }) => {
  const ann = await register(browser, 'Mona');
  const bob = await register(browser, 'Nils', { permissions: ['notifications'] });
  await createChannel(ann.page, 'attn');
  await joinFromBrowser(bob.page, 'attn');

  // Typing shows under the room for the others, and goes when the box is cleared.
  await composer(ann.page).fill('thinking');
  await expect(bob.page.locator('.typing')).toHaveText('Mona is typing…');
  await composer(ann.page).fill('');
  await expect(bob.page.locator('.typing')).toHaveText('');

  // "@Ni" offers Nils; Enter takes the name.
  await composer(ann.page).pressSequentially('lunch @Ni');
  const picker = ann.page.getByRole('listbox', { name: 'People to mention' });
  await expect(picker.getByRole('option', { name: '@Nils' })).toBeVisible();
  await expect(composer(ann.page)).toHaveAttribute('aria-activedescendant', /mentions-\d+-0/);
  await composer(ann.page).press('Enter');
  await expect(composer(ann.page)).toHaveValue('lunch @Nils ');
  await expect(picker).toBeHidden();
  await composer(ann.page).press('Enter');

  // Highlighted for Nils (the message and the name), plainly for Mona.
  const forBob = bob.page.locator('.message.mentions-me');
  await expect(forBob.locator('.mention.for-me')).toHaveText('@Nils');
  await expect(ann.page.locator('.message.mentions-me')).toHaveCount(0);
  await expect(ann.page.locator('.mention', { hasText: '@Nils' })).toBeVisible();
  await expect(ann.page.locator('.mention.for-me')).toHaveCount(0);
  await composer(ann.page).fill('and');
  await expect(bob.page.locator('.typing')).toHaveText('Mona is typing…');
  await screenshot(bob.page, 'mentions');
  await expectAccessible(bob.page, 'a mention');

  // Hidden, Nils gets a notification for a mention, but not for a plain message.
  await myRoom(bob.page, '#general').click();
  await recordNotifications(bob.page);
  await hide(bob.page);
  await say(ann.page, 'plain news');
  await say(ann.page, '@Nils are you there?');
  await expect.poll(() => bob.page.evaluate(() => window.__notes)).toEqual([
    { title: 'Mona in #attn', body: '@Nils are you there?' },
  ]);
  // Hidden, nothing counts as read: the title says so.
  await expect(bob.page).toHaveTitle('(2) natter');
  // Clicking the notification shows the room it is about.
  await bob.page.evaluate(() => window.__raised[0].onclick());
  await expect(bob.page.getByRole('heading', { name: '#attn' })).toBeVisible();
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('read on one page clears the counts on another page of the same person; mute hides the plain count', async ({ browser }) => {
  const ann = await register(browser, 'Olga');
  const bob = await register(browser, 'Piet');
  await createChannel(ann.page, 'counts');
  await joinFromBrowser(bob.page, 'counts');
  // Piet looks at #general, then a second page of his opens (his phone, say).
  await myRoom(bob.page, '#general').click();
  const phone = await bob.context.newPage();
  await phone.goto('/');
  await expect(phone.getByLabel('your name')).toHaveText('Piet');

  await say(ann.page, 'one');
  await say(ann.page, '@Piet two');
  for (const page of [bob.page, phone]) {
    const link = myRoom(page, '#counts');
    await expect(link.locator('.badge.mention')).toHaveText('@1');
    await expect(link.locator('.badge:not(.mention)')).toHaveText('2');
    await expect(page).toHaveTitle('(2) natter');
  }

  // The first mention offers notifications (never on page load); "Not now" is final.
  const offer = bob.page.getByRole('region', { name: 'Notifications' });
  await expect(offer).toContainText('Get a notification when someone mentions you');
  await offer.getByRole('button', { name: 'Not now' }).click();
  await expect(offer).toBeHidden();

  // Read on the laptop: the phone's counts go too, and a line marks where it stopped.
  await myRoom(bob.page, '#counts').click();
  await expect(bob.page.locator('.message.first-unread .text')).toHaveText('one');
  await expect(myRoom(phone, '#counts').locator('.badge')).toHaveCount(0);
  await expect(phone).toHaveTitle('natter');

  // Muted: a plain message shows no count; a mention still does.
  await myRoom(phone, '#general').click();
  await myRoom(bob.page, '#general').click();
  await myRoom(bob.page, '#counts').click();
  await bob.page.getByRole('button', { name: 'Mute' }).click();
  await expect(bob.page.getByRole('button', { name: 'Unmute' })).toHaveAttribute('aria-pressed', 'true');
  await myRoom(bob.page, '#general').click();
  await say(ann.page, 'three');
  await expect(myRoom(bob.page, '#counts').locator('.muted-mark')).toBeVisible();
  await say(ann.page, '@Piet four');
  const muted = myRoom(bob.page, '#counts');
  await expect(muted.locator('.badge.mention')).toHaveText('@1');
  await expect(muted.locator('.badge:not(.mention)')).toHaveCount(0);
  await expect(bob.page).toHaveTitle('(1) natter');
  await expect(offer).toBeHidden();
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('a typist who goes quiet stops showing after a few seconds', async ({ browser }) => {
  const ann = await register(browser, 'Quin');
  const bob = await register(browser, 'Rosa');
  await createChannel(ann.page, 'hush');
  await joinFromBrowser(bob.page, 'hush');
  await composer(ann.page).fill('hmm');
  await expect(bob.page.locator('.typing')).toHaveText('Quin is typing…');
  // No more keystrokes: the signal expires (6 s) without a "stopped".
  await expect(bob.page.locator('.typing')).toHaveText('', { timeout: 9000 });
  // Sending clears it at once.
  await composer(ann.page).fill('');
  await ann.page.waitForTimeout(3100);
  await composer(ann.page).fill('done');
  await expect(bob.page.locator('.typing')).toHaveText('Quin is typing…');
  await composer(ann.page).press('Enter');
  await expect(texts(bob.page).filter({ hasText: 'done' })).toHaveCount(1);
  await expect(bob.page.locator('.typing')).toHaveText('');
  await Promise.all([ann.context.close(), bob.context.close()]);
});
