// Shared steps of natter's browser tests.
const { expect } = require('@playwright/test');
const { AxeBuilder } = require('@axe-core/playwright');
const fs = require('fs');
const path = require('path');

const screenshotDir = path.resolve(__dirname, '..', '..', 'docs', 'screenshots');

/** Opens natter in a fresh browser context (a separate person) and registers `name`. */
async function register(browser, name, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  failOnDialog(page);
  await recordPolicyViolations(page);
  // Everything the page logs as an error, failed requests included (a 401 or 404
  // shows in the console as "Failed to load resource").
  const consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  await page.goto('/');
  await page.getByLabel('Pick a display name').fill(name);
  await page.getByLabel('Pick a display name').press('Enter');
  await expect(page.getByLabel('your name')).toHaveText(name);
  await expect(page.getByRole('status')).toHaveText('online');
  return { context, page, consoleErrors };
}

/** Keeps every Content-Security-Policy violation of the page in `window.__csp`. */
function recordPolicyViolations(page) {
  return page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
}

/** The page ran under the server's policy and nothing it does was blocked. */
async function expectNoPolicyViolations(page) {
  expect(await page.evaluate(() => window.__csp)).toEqual([]);
}

/** Any alert/confirm means user text was run as code: fail loudly. */
function failOnDialog(page) {
  page.on('dialog', async (dialog) => {
    await dialog.dismiss();
    throw new Error(`unexpected dialog: ${dialog.message()}`);
  });
}

/** The main pane's composer. */
function composer(page) {
  return page.getByRole('textbox', { name: 'Write a message' });
}

async function say(page, text) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

/** The text of messages in a region (the page, a popup, ...). */
function texts(scope) {
  return scope.locator('.message:not(.pending) .text');
}

/** Opens the "+" dialog beside Your rooms (create a channel or private room, join by code). */
async function openNewRoom(page) {
  await page.getByRole('button', { name: 'New room' }).click();
  const dialog = page.getByRole('dialog', { name: 'New room' });
  await expect(dialog).toBeVisible();
  return dialog;
}

async function createChannel(page, name) {
  const dialog = await openNewRoom(page);
  await dialog.getByLabel('New channel name').fill(name);
  await dialog.getByLabel('New channel name').press('Enter');
  await expect(page.getByRole('heading', { name: `#${name}` })).toBeVisible();
  await expect(dialog).toBeHidden();
}

/** Opens the channel browser. */
async function openBrowser(page) {
  await page.getByRole('button', { name: /^Browse channels/ }).click();
  const dialog = page.getByRole('dialog', { name: 'Browse channels' });
  await expect(dialog).toBeVisible();
  return dialog;
}

/** Joins an existing channel from the channel browser. */
async function joinFromBrowser(page, name) {
  const dialog = await openBrowser(page);
  await dialog.getByRole('button', { name: `Join #${name}` }).click();
  await expect(page.getByRole('heading', { name: `#${name}` })).toBeVisible();
  await expect(dialog).toBeHidden();
}

/** Opens the menu under my name (change name, sign out). */
async function openMyMenu(page) {
  await page.getByLabel('your name').click();
  await expect(page.getByRole('menu')).toBeVisible();
}

/** Renames me from the menu under my name. */
async function rename(page, name) {
  await openMyMenu(page);
  await page.getByRole('menuitem', { name: 'Change name' }).click();
  await page.getByLabel('New name').fill(name);
  await page.getByLabel('New name').press('Enter');
}

/**
 * Runs axe-core over the page as it is now and fails on any WCAG 2.1 A/AA violation,
 * listing each rule with the elements it found.
 */
async function expectAccessible(page, state) {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'])
    .analyze();
  const found = results.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(found, `axe-core on ${state}`).toEqual([]);
}

/** The sidebar's button for one of my rooms. */
function myRoom(page, title) {
  return page.getByRole('navigation').locator('.room-link', { hasText: title }).first();
}

/** Saves a screenshot for the README when UPDATE_SCREENSHOTS=1. */
async function screenshot(page, name) {
  if (process.env.UPDATE_SCREENSHOTS !== '1') return;
  fs.mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`) });
}

module.exports = {
  register, failOnDialog, expectNoPolicyViolations, composer, say, texts, createChannel, myRoom, screenshot,
  openNewRoom, openBrowser, joinFromBrowser, openMyMenu, rename, expectAccessible,
};
