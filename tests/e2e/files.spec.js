// Pictures and files in messages: pick, paste or drop; progress; thumbnails whose space
// is reserved; the lightbox; file cards; refusals shown inline; in a popup on a phone.
const { test, expect } = require('@playwright/test');
const { register, composer, texts, screenshot, expectAccessible } = require('./helpers');

/** A `width` × `height` PNG drawn by the page's canvas (a gradient with a square). */
async function drawnPng(page, width, height) {
  const dataUrl = await page.evaluate(([w, h]) => {
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const g = canvas.getContext('2d');
    const fill = g.createLinearGradient(0, 0, w, h);
    fill.addColorStop(0, '#2f5fc0');
    fill.addColorStop(1, '#f0a030');
    g.fillStyle = fill;
    g.fillRect(0, 0, w, h);
    g.fillStyle = '#ffffff';
    g.fillRect(w / 4, h / 4, w / 2, h / 2);
    return canvas.toDataURL('image/png');
  }, [width, height]);
  return Buffer.from(dataUrl.split(',')[1], 'base64');
}

/** The hidden file picker behind the paperclip button, in `scope`. */
function picker(scope) {
  return scope.locator('input[type=file]');
}

test('a picture and a file go up with progress, arrive as a thumbnail and a card, and open full size', async ({ browser }) => {
  const ann = await register(browser, 'Ines');
  const bob = await register(browser, 'Jon');
  const png = await drawnPng(ann.page, 1200, 900);
  await picker(ann.page.getByRole('main')).setInputFiles([
    { name: 'sunset.png', mimeType: 'image/png', buffer: png },
    { name: 'minutes.txt', mimeType: 'text/plain', buffer: Buffer.from('1. pictures are ok!\n') },
  ]);
  const files = ann.page.getByRole('list', { name: 'Files to send' });
  await expect(files.locator('.upload')).toHaveCount(2);
  await expect(files.locator('.upload-status', { hasText: 'ready' })).toHaveCount(2);
  await composer(ann.page).fill('from the beach');
  await composer(ann.page).press('Enter');
  await expect(files).toHaveCount(0);

  const main = bob.page.getByRole('main');
  const line = main.locator('.message', { hasText: 'from the beach' });
  await expect(line).toBeVisible();
  // The thumbnail's box is reserved from the picture's size before it loads.
  const thumb = line.getByRole('button', { name: 'Open picture sunset.png' }).locator('img');
  await expect(thumb).toHaveAttribute('width', '320');
  await expect(thumb).toHaveAttribute('height', '240');
  await expect(thumb).toHaveAttribute('src', /\/api\/files\/[a-z2-7]{26}\/thumb$/);
  await expect.poll(() => thumb.evaluate((img) => img.complete && img.naturalWidth)).toBe(800);
  // Any other file is a card with its size and a download link.
  const card = line.getByRole('link', { name: /minutes\.txt/ });
  await expect(card).toContainText('20 bytes');
  await expect(card).toHaveAttribute('download', 'minutes.txt');
  await screenshot(bob.page, 'pictures');

  // Full size in a lightbox; Escape closes it.
  await line.getByRole('button', { name: 'Open picture sunset.png' }).click();
  const lightbox = bob.page.getByRole('dialog', { name: 'Picture' });
  await expect(lightbox).toBeVisible();
  const full = lightbox.locator('img');
  await expect.poll(() => full.evaluate((img) => img.complete && img.naturalWidth)).toBe(1200);
  await expectAccessible(bob.page, 'the lightbox');
  await bob.page.keyboard.press('Escape');
  await expect(lightbox).toBeHidden();

  // The file itself is served with the server's type, sandboxed, as a download.
  const href = await card.getAttribute('href');
  const served = await bob.page.request.get(href);
  expect(served.headers()['content-type']).toBe('text/plain; charset=utf-8');
  expect(served.headers()['content-disposition']).toMatch(/^attachment;/);
  expect(served.headers()['content-security-policy']).toBe("sandbox; default-src 'none'");
  expect(await served.text()).toBe('1. pictures are ok!\n');
  expect(ann.consoleErrors).toEqual([]);
  expect(bob.consoleErrors).toEqual([]);
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('a pasted screenshot and a dropped file are uploaded; a broken picture is refused inline', async ({ browser }) => {
  const kai = await register(browser, 'Kai');
  const main = kai.page.getByRole('main');
  const png = (await drawnPng(kai.page, 64, 48)).toString('base64');
  // Paste a picture into the message box, as a screenshot tool leaves it.
  await composer(kai.page).focus();
  await kai.page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
    document.activeElement.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, png);
  // Drop a file anywhere on the room.
  await main.evaluate((room) => {
    const data = new DataTransfer();
    data.items.add(new File(['hello from a drop'], 'dropped.txt', { type: 'text/plain' }));
    const target = room.querySelector('.messages');
    target.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
    target.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
  });
  const files = kai.page.getByRole('list', { name: 'Files to send' });
  await expect(files.locator('.upload-status', { hasText: 'ready' })).toHaveCount(2);
  await expect(files).toContainText('image.png');
  await expect(files).toContainText('dropped.txt');

  // Bytes that say PNG but are not one: refused, said next to the file, removable.
  await picker(main).setInputFiles({ name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('\x89PNG\r\n\x1a\nnot really', 'binary') });
  const broken = files.locator('.upload.failed');
  await expect(broken).toContainText('cannot be read');
  // A refused file holds nothing up (Send is hidden on a desktop, but not disabled).
  await expect(main.locator('button.send')).toBeEnabled();
  // Sending now would lose it without a word: the composer says so instead.
  await composer(kai.page).press('Enter');
  await expect(main.getByRole('alert').filter({ hasText: 'Remove the files that could not be uploaded' })).toBeVisible();
  await expect(files.locator('.upload')).toHaveCount(3);
  await broken.getByRole('button', { name: 'Remove broken.png' }).click();
  await expect(broken).toHaveCount(0);

  // Sent with no text at all: the files are the message.
  await composer(kai.page).press('Enter');
  const sent = main.locator('.message:not(.pending)').filter({ has: kai.page.getByRole('link', { name: /dropped\.txt/ }) });
  await expect(sent.getByRole('button', { name: 'Open picture image.png' })).toBeVisible();
  await kai.context.close();
});

test('phone: a picture sent in a direct conversation shows there, within the screen', async ({ browser }) => {
  const phone = await register(browser, 'Lou', { viewport: { width: 360, height: 740 } });
  const desk = await register(browser, 'Max');
  await desk.page.getByRole('button', { name: 'Lou (online)' }).click();
  const deskPopup = desk.page.getByRole('region', { name: 'Direct messages with Lou' });
  await picker(deskPopup).setInputFiles({ name: 'map.png', mimeType: 'image/png', buffer: await drawnPng(desk.page, 1000, 1400) });
  await expect(deskPopup.locator('.upload-status', { hasText: 'ready' })).toHaveCount(1);
  await deskPopup.getByRole('textbox').press('Enter');
  const popup = phone.page.getByRole('region', { name: 'Direct messages with Max' });
  const picture = popup.getByRole('button', { name: 'Open picture map.png' });
  await expect(picture).toBeVisible();
  const box = await picture.boundingBox();
  expect(box.x + box.width).toBeLessThanOrEqual(360);
  await screenshot(phone.page, 'phone-picture');
  await picture.click();
  await expect(phone.page.getByRole('dialog', { name: 'Picture' })).toBeVisible();
  await Promise.all([phone.context.close(), desk.context.close()]);
});
