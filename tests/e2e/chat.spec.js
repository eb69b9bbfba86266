// Two people in two separate browser contexts chat in the default channel.
const { test, expect } = require('@playwright/test');

/** Opens natter in a fresh context and registers `name`. */
async function join(browser, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto('/');
  await page.getByLabel('Pick a display name').fill(name);
  await page.getByLabel('Pick a display name').press('Enter');
  await expect(page.getByLabel('your name')).toHaveText(name);
  await expect(page.getByRole('heading', { name: '#general' })).toBeVisible();
  return { context, page };
}

async function say(page, text) {
  await page.getByRole('textbox', { name: 'Write a message' }).fill(text);
  await page.getByRole('textbox', { name: 'Write a message' }).press('Enter');
}

test('two people chat both ways in #general', async ({ browser }) => {
  const ann = await join(browser, 'Ann');
  const bob = await join(browser, 'Bob');

  await say(ann.page, 'hello from Ann');
  await expect(bob.page.locator('.message .text', { hasText: 'hello from Ann' })).toHaveCount(1);
  await expect(ann.page.locator('.message .text', { hasText: 'hello from Ann' })).toHaveCount(1);

  await say(bob.page, 'hi Ann, Bob here');
  await expect(ann.page.locator('.message .text', { hasText: 'hi Ann, Bob here' })).toHaveCount(1);
  await expect(ann.page.getByRole('textbox', { name: 'Write a message' })).toHaveValue('');

  // A name already online is refused inline.
  const copy = await browser.newContext();
  const page = await copy.newPage();
  await page.goto('/');
  await page.getByLabel('Pick a display name').fill('ann');
  await page.getByLabel('Pick a display name').press('Enter');
  await expect(page.getByRole('alert').first()).toContainText('already called');

  await Promise.all([ann.context.close(), bob.context.close(), copy.close()]);
});
