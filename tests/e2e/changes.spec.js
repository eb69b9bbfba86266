// Messages people fix and answer: edit (↑), delete (confirmed), react and un-react,
// reply and jump to the original — each seen by the others at once.
const { test, expect } = require('@playwright/test');
const {
  register, composer, say, texts, createChannel, joinFromBrowser, expectAccessible, screenshot,
} = require('./helpers');

/** The line of the message saying `text` (not a pending one, not a reply quoting it). */
function line(page, text) {
  return page.locator('.message:not(.pending)').filter({ has: page.locator('.text', { hasText: text }) }).last();
}

test('a typo is fixed with ↑ and a message deleted after a confirmation, for everyone', async ({ browser }) => {
  const ann = await register(browser, 'Ines');
  const bob = await register(browser, 'Jon');
  await createChannel(ann.page, 'fixes');
  await joinFromBrowser(bob.page, 'fixes');

  await say(ann.page, 'see you at 5 pm');
  await say(ann.page, 'helo everyone');
  await expect(texts(bob.page).filter({ hasText: 'helo everyone' })).toHaveCount(1);

  // ↑ in the empty box edits my last message in place; Enter saves.
  await composer(ann.page).press('ArrowUp');
  const editor = ann.page.getByRole('textbox', { name: 'Edit message' });
  await expect(editor).toHaveValue('helo everyone');
  await editor.fill('hello everyone');
  await editor.press('Enter');
  for (const page of [ann.page, bob.page]) {
    await expect(line(page, 'hello everyone').locator('.edited')).toHaveText('(edited)');
    await expect(texts(page).filter({ hasText: 'helo everyone' })).toHaveCount(0);
  }
  await expect(composer(ann.page)).toBeFocused();

  // Escape leaves a message as it was.
  await composer(ann.page).press('ArrowUp');
  await ann.page.getByRole('textbox', { name: 'Edit message' }).fill('never mind');
  await ann.page.getByRole('textbox', { name: 'Edit message' }).press('Escape');
  await expect(texts(ann.page).filter({ hasText: 'never mind' })).toHaveCount(0);

  // Others' messages offer no Edit or Delete.
  await line(bob.page, 'see you at 5 pm').hover();
  await expect(line(bob.page, 'see you at 5 pm').getByRole('button', { name: 'Delete' })).toHaveCount(0);

  // Delete asks first; Cancel keeps it, Delete removes it for everyone.
  const doomed = line(ann.page, 'see you at 5 pm');
  await doomed.hover();
  await doomed.getByRole('button', { name: 'Delete' }).click();
  const confirm = ann.page.getByRole('alertdialog', { name: 'Delete this message?' });
  await expect(confirm.getByRole('button', { name: 'Delete' })).toBeFocused();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(confirm).toBeHidden();
  await doomed.hover();
  await doomed.getByRole('button', { name: 'Delete', exact: true }).click();
  await ann.page.getByRole('alertdialog', { name: 'Delete this message?' })
    .getByRole('button', { name: 'Delete' }).click();
  for (const page of [ann.page, bob.page]) {
    await expect(texts(page).filter({ hasText: 'see you at 5 pm' })).toHaveCount(0);
    await expect(page.locator('.text.deleted', { hasText: 'Message deleted' })).toHaveCount(1);
  }
  // After a reload the edit and the deletion are what the server says, not a cache.
  await bob.page.reload();
  await expect(line(bob.page, 'hello everyone').locator('.edited')).toBeVisible();
  await expect(bob.page.locator('.text.deleted')).toHaveCount(1);
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('reactions are added and taken back, and a reply jumps to its original', async ({ browser }) => {
  const ann = await register(browser, 'Kit');
  const bob = await register(browser, 'Lars');
  await createChannel(ann.page, 'answers');
  await joinFromBrowser(bob.page, 'answers');

  await say(bob.page, 'shall we ship on Friday?');
  await expect(texts(ann.page).filter({ hasText: 'ship on Friday' })).toHaveCount(1);

  // React from the picker; the count and who show for both.
  const question = line(ann.page, 'ship on Friday');
  await question.hover();
  await question.getByRole('button', { name: 'React', exact: true }).click();
  await ann.page.getByRole('button', { name: 'React with 👍' }).click();
  const annThumb = question.locator('.reaction', { hasText: '👍' });
  await expect(annThumb).toHaveAttribute('aria-pressed', 'true');
  await expect(annThumb.locator('.count')).toHaveText('1');
  const bobThumb = line(bob.page, 'ship on Friday').locator('.reaction', { hasText: '👍' });
  await expect(bobThumb).toHaveAttribute('aria-pressed', 'false');
  await expect(bobThumb).toHaveAttribute('title', 'Kit');
  // Bob adds his by clicking it; then Ann takes hers back.
  await bobThumb.click();
  await expect(annThumb.locator('.count')).toHaveText('2');
  await expect(annThumb).toHaveAttribute('title', 'Kit and Lars');
  await annThumb.click();
  await expect(bobThumb.locator('.count')).toHaveText('1');
  await expect(annThumb).toHaveAttribute('aria-pressed', 'false');
  await expect(bobThumb).toHaveAttribute('aria-pressed', 'true');

  // Reply: the box says what it answers, the message quotes it.
  await question.hover();
  await question.getByRole('button', { name: 'Reply', exact: true }).click();
  await expect(ann.page.locator('.replying')).toContainText('Replying to Lars');
  await expect(composer(ann.page)).toBeFocused();
  await say(ann.page, 'Friday works');
  await expect(ann.page.locator('.replying')).toHaveCount(0);
  const reply = line(bob.page, 'Friday works');
  await expect(reply.locator('.reply-quote')).toContainText('shall we ship on Friday?');
  await expectAccessible(ann.page, 'reactions, a reply and its quote');
  await screenshot(ann.page, 'reactions');

  // Enough talk that a newcomer's first page no longer holds the question…
  for (let i = 0; i < 105; i += 1) {
    await say(bob.page, `filler ${i}`);
  }
  await expect(texts(bob.page).filter({ hasText: 'filler 104' })).toHaveCount(1);
  const reader = await register(browser, 'Mo');
  await joinFromBrowser(reader.page, 'answers');
  await expect(texts(reader.page).filter({ hasText: 'filler 104' })).toHaveCount(1);
  await expect(texts(reader.page).filter({ hasText: 'ship on Friday' })).toHaveCount(0);
  // …so Bob's reply quote brings it: older history pages in, and there it is.
  await say(bob.page, 'about the question');
  const late = line(bob.page, 'about the question');
  await line(bob.page, 'ship on Friday').hover();
  await line(bob.page, 'ship on Friday').getByRole('button', { name: 'Reply', exact: true }).click();
  await say(bob.page, 'see the question above');
  const quote = line(reader.page, 'see the question above').locator('.reply-quote');
  await expect(quote).toContainText('Lars');
  await quote.click();
  await expect(line(reader.page, 'shall we ship on Friday?')).toBeInViewport();
  await expect(late).toBeVisible();

  // The original deleted, the reply stays and says so.
  const original = line(bob.page, 'shall we ship on Friday?');
  await original.hover();
  await original.getByRole('button', { name: 'Delete' }).click();
  await bob.page.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
  await expect(quote).toContainText('Original message deleted');
  await Promise.all([ann.context.close(), bob.context.close(), reader.context.close()]);
});

test('on a phone a long press shows a message\'s tools', async ({ browser }) => {
  const phone = await register(browser, 'Noa', { viewport: { width: 360, height: 740 }, hasTouch: true });
  await say(phone.page, 'typed with thumbs');
  const message = line(phone.page, 'typed with thumbs');
  await message.dispatchEvent('pointerdown', { pointerType: 'touch' });
  await expect(message.locator('.message-tools')).toBeVisible();
  await message.dispatchEvent('pointerup', { pointerType: 'touch' });
  await message.getByRole('button', { name: 'Edit' }).click();
  await phone.page.getByRole('textbox', { name: 'Edit message' }).fill('typed with care');
  await phone.page.getByRole('button', { name: 'Save' }).click();
  await expect(line(phone.page, 'typed with care').locator('.edited')).toBeVisible();
  await phone.context.close();
});
