// Drives eftd's back-office pages in headless Chromium (the Debian package, not a downloaded
// browser): log in, search an order, open its detail, download a CSV, render the charts and
// the settlement report; with NOTIFICATION_ID (an expired outcome notification, USER a supervisor)
// also press its "Retry now" button.
// Usage: node backoffice.mjs PORT USER ORDER_NO [NOTIFICATION_ID]  (password on stdin).
// Exit 0 when every check passed; the first failed check is printed and exits 1.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const [port, user, order, notification] = process.argv.slice(2);
const password = readFileSync(0, 'utf8').split('\n')[0];
const base = `https://localhost:${port}`;

function check(ok, what) {
  if (!ok) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args });
try {
  // The certificate is self-signed (its fingerprint is in eftd's log).
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  const page = await context.newPage();
  const cspViolations = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });

  await page.goto(`${base}/transactions`);
  check(page.url().endsWith('/login'), 'not logged in: redirected to the login form');
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(/\/transactions$/), page.click('button[type=submit]')]);
  check((await page.textContent('#whoami')).includes(user), 'logged in');

  await page.fill('input[name=order]', order);
  await Promise.all([page.waitForURL(/order=/), page.click('#search-button')]);
  check((await page.textContent('#count')).startsWith('1 '), 'the search finds the order');

  await Promise.all([page.waitForURL(/\/transactions\/[0-9A-F]{32}$/), page.click('a.detail')]);
  check((await page.locator('#events tbody tr').count()) > 0, 'the detail shows the event log');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('p.export a:text("CSV")')]);
  const csv = readFileSync(await download.path(), 'utf8');
  check(csv.includes(order), 'the CSV download holds the order');

  await page.goto(`${base}/charts`);
  const box = await page.locator('#chart-hourly').boundingBox();
  check(box !== null && box.width > 100 && box.height > 100, 'the hourly chart is drawn');
  check((await page.locator('#chart-hourly rect.bar').count()) >= 1, 'the hourly chart has a bar');
  check((await page.locator('#chart-schemes').count()) === 1, 'the scheme chart is there');

  await page.goto(`${base}/settlement`);
  check((await page.locator('table#settlement').count()) === 1, 'the settlement report renders');

  if (notification) {
    await page.goto(`${base}/notifications`);
    const row = page.locator(`#notifications-expired tr#notification-${notification}`);
    check((await row.count()) === 1, 'the expired notification is listed');
    await Promise.all([page.waitForURL(/\/notifications\/retry$/), row.locator('button:text("Retry now")').click()]);
    check((await page.textContent('#message')).includes(`${notification} is pending`), 'Retry now re-queued it');
  }

  check(cspViolations.length === 0, `no Content-Security-Policy violations (${cspViolations.join('; ')})`);
} finally {
  await browser.close();
}
