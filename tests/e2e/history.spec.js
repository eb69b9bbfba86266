// History: the browser cache, reloads, reconnects and scrolling back.
const { test, expect } = require('@playwright/test');
const { register, composer, say, texts, createChannel, myRoom, failOnDialog, joinFromBrowser } = require('./helpers');

test('a reload keeps the last room and shows cached history before the socket is back', async ({ browser }) => {
  const ann = await register(browser, 'Nora');
  await createChannel(ann.page, 'memories');
  await say(ann.page, 'remember me');
  await expect(texts(ann.page).filter({ hasText: 'remember me' })).toHaveCount(1);

  // Reload with the WebSocket held back: everything shown comes from localStorage.
  await ann.page.routeWebSocket('**/ws', () => {});
  await ann.page.reload();
  await expect(ann.page.getByRole('heading', { name: '#memories' })).toBeVisible();
  await expect(texts(ann.page).filter({ hasText: 'remember me' })).toHaveCount(1);
  await expect(ann.page.getByRole('status')).not.toHaveText('online');

  // Browser "restarted" (a new page, same storage), socket back: same room, no
  // duplicates, and live again.
  await ann.page.close();
  const page = await ann.context.newPage();
  failOnDialog(page);
  await page.goto('/');
  await expect(page.getByRole('status')).toHaveText('online');
  await expect(page.getByRole('heading', { name: '#memories' })).toBeVisible();
  await expect(texts(page).filter({ hasText: 'remember me' })).toHaveCount(1);
  await say(page, 'and I am back');
  await expect(texts(page).filter({ hasText: 'and I am back' })).toHaveCount(1);
  await ann.context.close();
});

test('a dropped connection reconnects, resends what was pending and misses nothing', async ({ browser }) => {
  const ann = await register(browser, 'Otto');
  const bob = await register(browser, 'Pia');
  let annSocket;
  await ann.page.routeWebSocket('**/ws', (ws) => {
    annSocket = ws;
    ws.connectToServer();
  });
  await ann.page.reload();
  await expect(ann.page.getByRole('status')).toHaveText('online');
  await say(ann.page, 'before the drop');
  await expect(texts(bob.page).filter({ hasText: 'before the drop' })).toHaveCount(1);

  await annSocket.close({ code: 1001, reason: 'test drop' });
  await expect(ann.page.getByRole('status')).not.toHaveText('online');
  // Bob talks while Ann is away; Ann types while she is away.
  await say(bob.page, 'while you were out');
  await say(ann.page, 'typed offline');
  await expect(ann.page.getByRole('status')).toHaveText('online', { timeout: 15_000 });
  await expect(texts(ann.page).filter({ hasText: 'while you were out' })).toHaveCount(1);
  await expect(texts(bob.page).filter({ hasText: 'typed offline' })).toHaveCount(1);
  await expect(texts(ann.page).filter({ hasText: 'typed offline' })).toHaveCount(1);
  await expect(texts(ann.page).filter({ hasText: 'before the drop' })).toHaveCount(1);
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('scrolling up loads older messages 100 at a time', async ({ browser }) => {
  const ann = await register(browser, 'Quin');
  await createChannel(ann.page, 'archive');
  // Post 150 messages straight over a second socket as the same person.
  await ann.page.evaluate(async () => {
    const creds = JSON.parse(localStorage.getItem(Object.keys(localStorage).find((k) => k.endsWith('/credentials'))));
    const ws = new WebSocket(`ws://${location.host}/ws`);
    await new Promise((resolve) => (ws.onopen = resolve));
    const acks = new Promise((resolve) => {
      let count = 0;
      let room;
      ws.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (msg.type === 'ready') {
          room = msg.rooms.find((r) => r.name === 'archive').id;
          for (let i = 1; i <= 150; i++) {
            ws.send(JSON.stringify({ type: 'send', room, client_id: `bulk-${i}`, text: `bulk ${i}` }));
          }
        }
        if (msg.type === 'ack' && ++count === 150) resolve();
      };
    });
    ws.send(JSON.stringify({ type: 'hello', version: 3, name: 'Quin', credentials: creds }));
    await acks;
    ws.close();
  });
  await expect(texts(ann.page).filter({ hasText: 'bulk 150' })).toHaveCount(1);

  // A newcomer sees the latest 100 and scrolls back for the rest.
  const bob = await register(browser, 'Rae');
  await joinFromBrowser(bob.page, 'archive');
  await expect(texts(bob.page).filter({ hasText: /^bulk 150$/ })).toHaveCount(1);
  await expect(texts(bob.page).filter({ hasText: /^bulk 1$/ })).toHaveCount(0);
  const list = bob.page.getByRole('list', { name: 'Messages' });
  // Stuck to the bottom on load.
  expect(await list.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight)).toBeLessThan(50);
  await list.evaluate((el) => (el.scrollTop = 0));
  await expect(texts(bob.page).filter({ hasText: /^bulk 1$/ })).toHaveCount(1);
  await expect(bob.page.getByText('This is the beginning of the room.')).toBeVisible();

  // Reading back: a new message shows the marker instead of yanking the view down.
  await say(ann.page, 'news at the bottom');
  await expect(bob.page.getByRole('button', { name: 'New messages ↓' })).toBeVisible();
  await bob.page.getByRole('button', { name: 'New messages ↓' }).click();
  await expect(texts(bob.page).filter({ hasText: 'news at the bottom' })).toBeInViewport();
  await Promise.all([ann.context.close(), bob.context.close()]);
});

test('a corrupt cache entry is dropped, not a crash', async ({ browser }) => {
  const ann = await register(browser, 'Sam');
  await say(ann.page, 'cached line');
  await ann.page.evaluate(() => {
    for (const key of Object.keys(localStorage)) {
      if (key.includes('/room/')) localStorage.setItem(key, '{not json');
    }
  });
  await ann.page.reload();
  await expect(ann.page.getByRole('status')).toHaveText('online');
  await expect(texts(ann.page).filter({ hasText: 'cached line' })).toHaveCount(1);
  await ann.context.close();
});
