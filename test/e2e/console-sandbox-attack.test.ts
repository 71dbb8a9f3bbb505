import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageRecord } from '../../lambdas/domain/message.ts';
import { createConsole, type LocalConsole } from '../../local/console/server.ts';
import { closeServer, listenOnLoopback } from '../../local/emulators/listen.ts';
import { createGateway } from '../../local/runtime/http-gateway.ts';

// A message's HTML is hostile in every way a mail client meets (no sanitizer in front: raw SMTP
// and raw sends carry what they carry). In Chromium, neither in the console's frame nor opened on
// its own may it run script, load anything remote, or move the top page. The console runs behind
// the real gateway with a fake API and table, so no local mode is needed.

const ID = 'msg_01SANDBOXATTACK';
let canaryHits: string[] = [];
let canary: Server;
let canaryUrl = '';
let api: Server;
let gateway: Server;
let con: LocalConsole;
let consoleUrl = '';
let dir = '';
let browser: Browser;

const record = {
  id: ID,
  tenant: 'dev',
  stream: 'transactional',
  phase: 'sent',
  from: 'app@example.com',
  subject: 'hostile html',
  createdAt: '2026-12-07T02:00:00.000Z',
  updatedAt: '2026-12-07T02:00:00.000Z',
  expiresAt: 0,
  recipients: [
    { address: 'ana@example.org', status: 'delivered', reason: null, updatedAt: '2026-12-07T02:00:01Z' },
  ],
  events: [{ type: 'accepted', at: '2026-12-07T02:00:00.000Z' }],
  seen: [],
  version: 1,
} as unknown as MessageRecord;

function hostileHtml(c: string): string {
  return `<html><head>
<meta http-equiv="refresh" content="0;url=${c}/meta-refresh">
<base href="${c}/base/">
<link rel="stylesheet" href="${c}/css">
<link rel="prefetch" href="${c}/prefetch">
<link rel="preload" as="image" href="${c}/preload">
<style>@import url("${c}/import"); body { background: url("${c}/bg"); }</style>
</head><body>
<p id="x">hostile</p>
<script>top.location = "${c}/script"; parent.pwned = 1;</script>
<img src="${c}/img" srcset="${c}/srcset 2x">
<img src="relative-img">
<svg><image href="${c}/svg-image"></image></svg>
<video poster="${c}/poster"></video>
<object data="${c}/object"></object>
<embed src="${c}/embed">
<iframe src="${c}/iframe"></iframe>
<iframe srcdoc="<script>top.location='${c}/srcdoc'</script><meta http-equiv=refresh content='0;url=${c}/srcdoc-refresh'>"></iframe>
<form id="f" action="${c}/form" target="_top" method="post"><input name="a" value="1"><button id="submit">go</button></form>
<a id="top" href="${c}/top-link" target="_top">top</a>
<a id="blank" href="${c}/blank-link" target="_blank">blank</a>
</body></html>`;
}

beforeAll(async () => {
  canary = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    // Another site's page with a link to the console (not counted: the browser was sent there).
    if (req.url === '/links-to-console')
      return res.end(`<a id="l" href="${consoleUrl}/suppressions">console</a>`);
    canaryHits.push(req.url ?? '');
    res.end('<p>canary</p>');
  });
  canaryUrl = `http://127.0.0.1:${(await listenOnLoopback(canary, { port: 0, service: 'canary', envVar: 'X' })).port}`;
  dir = mkdtempSync(join(tmpdir(), 'console-sandbox-'));
  const raw = await new MailComposer({
    from: 'app@example.com',
    to: 'ana@example.org',
    subject: 'hostile html',
    html: hostileHtml(canaryUrl),
  })
    .compile()
    .build();
  writeFileSync(join(dir, `${ID}.eml`), raw);
  api = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"title":"none"}');
  });
  const apiPort = (await listenOnLoopback(api, { port: 0, service: 'fake api', envVar: 'X' })).port;
  con = createConsole({
    apiKey: 'k',
    tenant: 'dev',
    apiUrl: () => `http://127.0.0.1:${apiPort}`,
    messages: {
      scanTenant: async () => ({ records: [record], next: undefined }),
      get: async (id: string) => (id === ID ? record : undefined),
    },
    outboxDir: dir,
    fromDomain: 'example.com',
  });
  gateway = createGateway([], undefined, con.handle);
  consoleUrl = `http://127.0.0.1:${(await listenOnLoopback(gateway, { port: 0, service: 'gateway', envVar: 'X' })).port}/console`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // other-site.test is another site that resolves to the canary's loopback.
    args: ['--no-sandbox', '--host-resolver-rules=MAP other-site.test 127.0.0.1'],
  });
});

afterAll(async () => {
  await browser?.close();
  con?.close();
  if (gateway) await closeServer(gateway);
  if (api) await closeServer(api);
  if (canary) await closeServer(canary);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('console attack: a hostile message HTML in Chromium', () => {
  it('in the console’s frame: no script, no remote load, no navigation of the console', async () => {
    // Prepare
    canaryHits = [];
    const page = await browser.newPage();
    const pageUrl = `${consoleUrl}/messages/${ID}`;
    await page.goto(pageUrl);
    const frame = page.frameLocator('iframe.rendered');
    await frame.locator('#x').waitFor();

    // Act: wait for anything automatic, then try every link and the form.
    await page.waitForTimeout(1500);
    for (const id of ['#top', '#blank', '#submit'])
      await frame
        .locator(id)
        .click({ timeout: 2000 })
        .catch(() => undefined);
    await page.waitForTimeout(1000);

    // Assess
    expect(page.url()).toBe(pageUrl);
    expect(await page.evaluate(() => 'pwned' in globalThis)).toBe(false);
    expect(browser.contexts()[0]?.pages().length).toBe(1);
    expect(canaryHits).toEqual([]);
    await page.close();
  }, 30_000);

  // A link the user clicks in the document opened on its own navigates its own tab, as any link:
  // that is the user's doing, not the message's, so only the form (a sandboxed one) is tried.
  it('opened on its own: no script, no remote load, no navigation by itself, no form', async () => {
    // Prepare
    canaryHits = [];
    const page = await browser.newPage();
    const htmlUrl = `${consoleUrl}/messages/${ID}/html`;

    // Act
    await page.goto(htmlUrl);
    await page.waitForTimeout(1500);
    for (const id of ['#submit'])
      await page
        .locator(id)
        .click({ timeout: 2000 })
        .catch(() => undefined);
    await page.waitForTimeout(1000);

    // Assess
    expect(page.url()).toBe(htmlUrl);
    expect(canaryHits).toEqual([]);
    await page.close();
  }, 30_000);

  it('keeps the console’s session when another site links to it, so open console pages keep working', async () => {
    // Prepare: a console page open in one tab.
    const context = await browser.newContext();
    const consoleTab = await context.newPage();
    await consoleTab.goto(`${consoleUrl}/suppressions`);
    const before = (await context.cookies()).map((c) => c.value);

    // Act: another site's page, in another tab, links to the console.
    const otherTab = await context.newPage();
    await otherTab.goto(`${canaryUrl.replace('127.0.0.1', 'other-site.test')}/links-to-console`);
    await Promise.all([otherTab.waitForURL(`${consoleUrl}/suppressions`), otherTab.click('#l')]);
    const after = (await context.cookies()).map((c) => c.value);
    await consoleTab.fill('input[name=address]', 'kept@example.org');
    const [posted] = await Promise.all([
      consoleTab.waitForResponse((r) => r.request().method() === 'POST'),
      consoleTab.click('form.add button'),
    ]);

    // Assess: the first tab's form still carries a valid token (the fake API then refuses: 404).
    expect(after).toEqual(before);
    expect(posted.status()).not.toBe(403);
    await context.close();
  }, 30_000);
});
