// Accounts through the browser: sign up, confirm by email, sign in and out, keep the
// name on another device, recover a forgotten password. The emails are read from the
// mail sink's directory (see playwright.config.js).
const { test, expect } = require('@playwright/test');
const fs = require('fs');
const path = require('path');
const { register, failOnDialog, screenshot, openMyMenu, expectAccessible } = require('./helpers');

const PASSWORD = 'a long passphrase';

/** Waits for the `n`th email to `to` and returns the link of `kind` (verify|reset). */
async function emailedLink(to, kind, n = 1) {
  const dir = process.env.NATTER_E2E_MAILDIR;
  const marker = new RegExp(`(http://\\S+/#${kind}=[0-9a-f]+)`);
  for (let waited = 0; waited < 15_000; waited += 100) {
    const mails = (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
      .map((name) => path.join(dir, name))
      .sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs)
      .map((file) => fs.readFileSync(file, 'utf8').replace(/=\r?\n/g, '').replace(/=3D/g, '='))
      .filter((mail) => new RegExp(`^To: .*${to.replace('.', '\\.')}`, 'mi').test(mail))
      .filter((mail) => marker.test(mail));
    if (mails.length >= n) return mails[n - 1].match(marker)[1];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no email #${n} with a ${kind} link to ${to} in ${dir}`);
}

async function openWelcome(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  failOnDialog(page);
  await page.goto('/');
  return { context, page };
}

async function signIn(page, email, password) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

test('an account is made, confirmed by email, signed in and out, and keeps its name', async ({ browser }) => {
  const { context, page } = await openWelcome(browser);
  await page.getByRole('button', { name: 'create an account' }).click();
  // Inline checks as one types, with the rules from `protocol`.
  await page.getByLabel('Email').fill('wren@');
  await expect(page.locator('#signup-email-error')).toHaveText(/email address like/);
  await page.getByLabel('Password').fill('short');
  await expect(page.locator('#signup-password-error')).toHaveText('Use at least 8 characters (3 more).');
  await expect(page.getByRole('button', { name: 'Create account' })).toBeDisabled();
  await page.getByLabel('Email').fill('wren@example.org');
  await page.getByLabel('Display name').fill('Wren');
  await page.getByLabel('Password').fill(PASSWORD);
  await expect(page.locator('#signup-password-error')).toBeEmpty();
  await screenshot(page, 'sign-up');
  await expectAccessible(page, 'the sign-up form');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.locator('.notice')).toHaveText(/Check your email/);

  // The link from the email confirms the address.
  const link = await emailedLink('wren@example.org', 'verify');
  const confirm = await context.newPage();
  await confirm.goto(link);
  await expect(confirm.locator('.notice')).toHaveText(/email is confirmed/);
  await expect(confirm).not.toHaveURL(/verify=/);
  await signIn(confirm, 'Wren@Example.org', PASSWORD);
  await expect(confirm.getByLabel('your name')).toHaveText('Wren');
  await expect(confirm.getByRole('status')).toHaveText('online');
  // A reload stays signed in: the cookie, not anything a script can read.
  await confirm.reload();
  await expect(confirm.getByLabel('your name')).toHaveText('Wren');
  await expect(confirm.getByRole('status')).toHaveText('online');
  expect(await confirm.evaluate(() => document.cookie)).not.toContain('natter_session');

  // A second tab is signed in by the same cookie.
  const tab = await context.newPage();
  await tab.goto('/');
  await expect(tab.getByLabel('your name')).toHaveText('Wren');

  // Signing out ends the session; the page is back at the welcome screen, and the
  // other tab, whose socket the server closed (4001), says so.
  // An account signs out from the menu under its name, without the guest's warning
  // (signing in again brings everything back).
  await openMyMenu(confirm);
  await confirm.getByRole('menuitem', { name: 'Sign out' }).click();
  await expect(confirm.getByLabel('Pick a display name')).toBeVisible();
  await expect(tab.getByRole('alert').filter({ hasText: 'You were signed out.' })).toBeVisible();
  await expect(tab.getByLabel('Pick a display name')).toBeVisible();
  await confirm.reload();
  await expect(confirm.getByLabel('Pick a display name')).toBeVisible();

  // While Wren is away, a guest cannot take the name.
  const guest = await openWelcome(browser);
  await guest.page.getByLabel('Pick a display name').fill('wren');
  await guest.page.getByLabel('Pick a display name').press('Enter');
  await expect(guest.page.getByRole('alert').filter({ hasText: 'registered account' })).toBeVisible();

  // Another device signs in and has the name.
  const other = await openWelcome(browser);
  await other.page.getByRole('button', { name: 'Sign in' }).click();
  await signIn(other.page, 'wren@example.org', 'wrong password');
  await expect(other.page.getByRole('alert').filter({ hasText: 'do not match' })).toBeVisible();
  await signIn(other.page, 'wren@example.org', PASSWORD);
  await expect(other.page.getByLabel('your name')).toHaveText('Wren');
  // The guest, online, sees Wren.
  await guest.page.getByLabel('Pick a display name').fill('Yuki');
  await guest.page.getByLabel('Pick a display name').press('Enter');
  await expect(guest.page.getByRole('navigation').getByText('Wren')).toBeVisible();
  await context.close();
  await guest.context.close();
  await other.context.close();
});

test('a forgotten password is replaced through the emailed link', async ({ browser }) => {
  const { context, page } = await openWelcome(browser);
  await page.getByRole('button', { name: 'create an account' }).click();
  await page.getByLabel('Email').fill('xavi@example.org');
  await page.getByLabel('Display name').fill('Xavi');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.locator('.notice')).toHaveText(/Check your email/);
  const verify = await context.newPage();
  await verify.goto(await emailedLink('xavi@example.org', 'verify'));
  await expect(verify.locator('.notice')).toHaveText(/email is confirmed/);

  await verify.getByRole('button', { name: 'Forgot your password?' }).click();
  await verify.getByLabel('Email').fill('xavi@example.org');
  await verify.getByRole('button', { name: 'Email me a link' }).click();
  await expect(verify.locator('.notice')).toHaveText(/If that address has an account/);

  const reset = await context.newPage();
  await reset.goto(await emailedLink('xavi@example.org', 'reset'));
  await reset.getByLabel('New password', { exact: true }).fill('2short');
  await expect(reset.locator('#reset-password-error')).toHaveText(/at least 8/);
  await reset.getByLabel('New password', { exact: true }).fill('my new passphrase');
  await reset.getByRole('button', { name: 'Set password' }).click();
  await expect(reset.locator('.notice')).toHaveText(/password is changed/);
  await signIn(reset, 'xavi@example.org', PASSWORD);
  await expect(reset.getByRole('alert').filter({ hasText: 'do not match' })).toBeVisible();
  await signIn(reset, 'xavi@example.org', 'my new passphrase');
  await expect(reset.getByLabel('your name')).toHaveText('Xavi');
  await expect(reset.getByRole('status')).toHaveText('online');
  await context.close();
});

test('a guest is still one name and Enter away', async ({ browser }) => {
  const { context } = await register(browser, 'Zed');
  await context.close();
});
