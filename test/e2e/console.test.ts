import { mkdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/paths.ts';
import { receipt, type TestBaton, waitFor, withTestBaton } from '../support/local-baton.ts';
import { WebhookReceiver } from '../support/webhooks.ts';

// Issue 15 part 4 in a real browser: Debian's Chromium, headless, driven by playwright-core,
// against one local-mode instance. Screenshots go to test-results/console/ (printed below).

const SCREENSHOTS = resolve(REPO_ROOT, 'test-results', 'console');
const SIMULATOR = 'simulator.amazonses.com';
/** A subject and an HTML body that would run script if anything printed them as markup. */
const HOSTILE_SUBJECT = `<img src=x onerror="window.consolePwned=1">Hostile <b>subject</b>`;
const HOSTILE_HTML = `<p>Hello from the outbox</p><script>parent.consolePwned=1</script><img src=x onerror="parent.consolePwned=1">`;
const SUPPRESSED = 'console-e2e@example.org';

let baton: TestBaton;
let browser: Browser;
let page: Page;
let receiver: WebhookReceiver;
/** The message the success button sent, and the hostile one sent through the API. */
let successId = '';
let hostileId = '';
/** Content-Security-Policy violations the console's own pages reported. */
const cspViolations: string[] = [];

withTestBaton(async (started) => {
  baton = started;
  // A webhook endpoint of the development key's tenant, so the sends below leave attempts.
  receiver = await WebhookReceiver.start();
  const created = await baton.request('/v1/webhooks', {
    json: { url: receiver.url(), events: ['message.delivered'], description: 'console e2e' },
  });
  expect(created.status).toBe(201);
  receiver.secrets = [((await created.json()) as { secret: string }).secret];
});

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  console.log(`console screenshots: ${SCREENSHOTS}`);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  page = await browser.newPage();
  page.on('console', (m) => {
    if (m.text().includes('Content Security Policy')) cspViolations.push(m.text());
  });
});

afterAll(async () => {
  await browser?.close();
  await receiver?.close();
});

const shot = (name: string, p: Page = page) =>
  p.screenshot({ path: resolve(SCREENSHOTS, `${name}.png`), fullPage: true });

/** Marks the current document; still marked means the page updated itself without a reload. */
const markDocument = () => page.evaluate(() => Object.assign(globalThis, { consoleMark: true }));
const stillSameDocument = () => page.evaluate(() => 'consoleMark' in globalThis);
/** Whether any of the hostile payloads ran in the console's page. */
const scriptRan = () => page.evaluate(() => 'consolePwned' in globalThis);

/** A raw HTTP request, so the Host header can be anything (fetch sets its own). */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body = '',
): Promise<{ status: number; text: string }> {
  const { port } = new URL(baton.url);
  return new Promise((done, fail) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString('utf8');
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

describe('the local console in Chromium', () => {
  it('sends a test message with the success button and follows it to delivered over server-sent events', async () => {
    // Prepare
    await page.goto(baton.consoleUrl);
    await shot('01-landing-empty');

    // Act
    await page.click(`button[value="success"]`);
    await page.waitForURL(/sent=msg_/);
    successId = new URL(page.url()).searchParams.get('sent') ?? '';
    await markDocument();

    // Assess
    await page.locator(`tr[data-id="${successId}"] [data-status="delivered"]`).waitFor({ timeout: 15_000 });
    const row = page.locator(`tr[data-id="${successId}"]`);
    expect(await row.locator('a').textContent()).toBe('Console test: success');
    expect(await row.locator('.recipient').textContent()).toBe(`success@${SIMULATOR}`);
    expect(await stillSameDocument()).toBe(true);
    await shot('02-landing-delivered');
  });

  it('shows a message sent through the API appear without a reload, its hostile subject as text', async () => {
    // Prepare
    await markDocument();

    // Act
    const res = await baton.request('/v1/messages', {
      json: receipt(`success+hostile@${SIMULATOR}`, {
        subject: HOSTILE_SUBJECT,
        html: HOSTILE_HTML,
        attachments: [
          {
            filename: 'notes.html',
            contentType: 'text/html',
            content: Buffer.from('<script>parent.consolePwned=1</script>').toString('base64'),
          },
        ],
      }),
    });
    expect(res.status).toBe(202);
    hostileId = ((await res.json()) as { id: string }).id;

    // Assess
    const link = page.locator(`tr[data-id="${hostileId}"] a`);
    await link.waitFor({ timeout: 15_000 });
    expect(await link.textContent()).toBe(HOSTILE_SUBJECT);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await stillSameDocument()).toBe(true);
    expect(await scriptRan()).toBe(false);
    expect(cspViolations).toEqual([]);
  });

  it('opens a message: its timeline reaches delivered and its HTML shows in a sandbox that runs no script', async () => {
    // Act
    await page.click(`tr[data-id="${hostileId}"] a`);
    await page.locator('li[data-event="delivered"]').waitFor({ timeout: 15_000 });
    const frame = page.locator('iframe.rendered');
    await frame.waitFor({ timeout: 15_000 });

    // Assess
    expect(await page.locator('#message [data-status]').first().getAttribute('data-status')).toBe(
      'delivered',
    );
    expect(await page.locator('h1').textContent()).toBe(HOSTILE_SUBJECT);
    expect(await frame.getAttribute('sandbox')).toBe('');
    const inside = page.frameLocator('iframe.rendered');
    expect(await inside.locator('p').first().textContent()).toBe('Hello from the outbox');
    expect(await scriptRan()).toBe(false);
    const served = await fetch(`${baton.consoleUrl}/messages/${hostileId}/html`);
    expect(served.headers.get('content-security-policy')).toMatch(/^sandbox; default-src 'none'/);
    expect(await served.text()).not.toMatch(/<script|onerror/i);
    expect(await page.locator('table.headers th', { hasText: 'DKIM-Signature' }).count()).toBe(1);
    const link = page.locator('ul.attachments a');
    expect(await link.textContent()).toBe('notes.html');
    const download = await fetch(new URL((await link.getAttribute('href')) ?? '', baton.url));
    expect(download.headers.get('content-type')).toBe('application/octet-stream');
    expect(download.headers.get('content-disposition')).toMatch(/^attachment; filename="notes\.html"/);
    expect(await download.text()).toBe('<script>parent.consolePwned=1</script>');
    const raw = await fetch(`${baton.consoleUrl}/messages/${hostileId}/raw`);
    expect(raw.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await raw.text()).toMatch(/^DKIM-Signature: /);
    await shot('03-message');
  });

  it('adds a suppression and lifts it through the forms, through the API', async () => {
    // Prepare
    await page.goto(`${baton.consoleUrl}/suppressions`);

    // Act
    await page.fill('input[name="address"]', SUPPRESSED);
    await page.fill('input[name="detail"]', 'added in the browser');
    await page.click('form.add button');
    const row = page.locator(`tr[data-address="${SUPPRESSED}"]`);
    await row.waitFor();
    await shot('04-suppressions');
    const added = await baton.request(`/v1/suppressions/${SUPPRESSED}`);
    await row.locator('button').click();
    await page.waitForLoadState();

    // Assess
    expect(added.status).toBe(200);
    expect(await added.json()).toMatchObject({
      reason: 'manual',
      detail: 'added in the browser',
      scope: 'tenant',
    });
    expect(await page.locator(`tr[data-address="${SUPPRESSED}"]`).count()).toBe(0);
    expect((await baton.request(`/v1/suppressions/${SUPPRESSED}`)).status).toBe(404);
  });

  it('refuses a form post without its token (403) and a foreign Host (421)', async () => {
    // Prepare
    const { port } = new URL(baton.url);
    const cookies = await page.context().cookies(baton.url);
    const session = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const form = { 'content-type': 'application/x-www-form-urlencoded' };

    // Act
    const noToken = await rawRequest(
      'POST',
      '/console/suppressions',
      { ...form, cookie: session },
      `address=${encodeURIComponent(SUPPRESSED)}`,
    );
    const wrongToken = await rawRequest(
      'POST',
      '/console/send-test',
      { ...form, cookie: session },
      'mailbox=success&csrf=forged',
    );
    const rebound = await rawRequest('GET', '/console', { host: `attacker.example:${port}` });
    const loopback = await rawRequest('GET', '/console', { host: `localhost:${port}` });

    // Assess
    expect([noToken.status, wrongToken.status]).toEqual([403, 403]);
    expect(rebound.status).toBe(421);
    expect(rebound.text).not.toContain('<table');
    expect(loopback.status).toBe(200);
    expect((await baton.request(`/v1/suppressions/${SUPPRESSED}`)).status).toBe(404);
  });

  it('lists the messages and the daily chart in the HTML it sends, for a browser without JavaScript', async () => {
    // Prepare
    const context = await browser.newContext({ javaScriptEnabled: false });
    const plain = await context.newPage();

    // Act
    await plain.goto(baton.consoleUrl);

    // Assess
    expect(await plain.locator(`tr[data-id="${successId}"] [data-status]`).getAttribute('data-status')).toBe(
      'delivered',
    );
    expect(await plain.locator(`tr[data-id="${hostileId}"] a`).textContent()).toBe(HOSTILE_SUBJECT);
    const today = new Date().toISOString().slice(0, 10);
    const delivered = plain.locator('svg[role="img"] rect.bar.delivered').last();
    expect(await delivered.locator('title').textContent()).toBe(`${today}: 2 delivered`);
    expect(Number(await delivered.getAttribute('height'))).toBeGreaterThan(0);
    await shot('05-landing-without-javascript', plain);
    await context.close();
  });

  it('lists the webhook endpoint and its delivery attempts', async () => {
    // Prepare
    await waitFor('both deliveries to reach the receiver', async () =>
      receiver.verified().length >= 2 ? true : undefined,
    );

    // Act
    await page.goto(`${baton.consoleUrl}/webhooks`);

    // Assess
    const endpoint = page.locator('section.endpoint');
    expect(await endpoint.locator('h2').textContent()).toBe(receiver.url());
    expect(await endpoint.locator('table.attempts tbody tr').count()).toBe(2);
    expect(await endpoint.locator('table.attempts').textContent()).toContain('success');
    await shot('06-webhooks');
  });
});
