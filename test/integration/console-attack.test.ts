import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type ClientRequest, createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MessageRecord } from '../../lambdas/domain/message.ts';
import { createConsole, type LocalConsole } from '../../local/console/server.ts';
import { closeServer, listenOnLoopback } from '../../local/emulators/listen.ts';
import { createGateway } from '../../local/runtime/http-gateway.ts';

// Attacks on the local console through the real gateway: a fake API and message table behind it,
// so each probe is a plain HTTP request (or a raw socket where a client would not send it).

const TENANT = 'dev';
const OURS = 'msg_01OURS';
const THEIRS = 'msg_01THEIRS';

const record = (id: string, tenant: string, subject: string): MessageRecord =>
  ({
    id,
    tenant,
    stream: 'transactional',
    phase: 'sent',
    from: 'app@example.com',
    subject,
    createdAt: '2026-12-07T02:00:00.000Z',
    updatedAt: '2026-12-07T02:00:00.000Z',
    expiresAt: 0,
    recipients: [
      { address: 'ana@example.org', status: 'delivered', reason: null, updatedAt: '2026-12-07T02:00:01Z' },
    ],
    events: [{ type: 'accepted', at: '2026-12-07T02:00:00.000Z' }],
    seen: [],
    version: 1,
  }) as unknown as MessageRecord;

const RECORDS = [record(OURS, TENANT, 'ours'), record(THEIRS, 'other', 'theirs-secret')];
/** When set, every scan finds this many messages of the key, each changed since the last scan. */
let churn = 0;
let scans = 0;
function churning(): MessageRecord[] {
  scans++;
  return Array.from({ length: churn }, (_, i) => ({
    ...record(`msg_${'X'.repeat(40)}${i}`, TENANT, 'x'),
    version: scans,
  }));
}

let dir: string;
let api: Server;
let gateway: Server;
let con: LocalConsole;
let port: number;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'console-attack-'));
  for (const r of RECORDS) {
    const raw = await new MailComposer({
      from: 'app@example.com',
      to: 'ana@example.org',
      subject: r.subject,
      html: '<p>hi</p>',
      attachments: [
        {
          filename: 'a"b\r\nX-Injected: 1.html',
          content: Buffer.from('<script>alert(1)</script>'),
          contentType: 'text/html',
        },
        { filename: "it's (1).txt", content: Buffer.from('x'), contentType: 'text/plain' },
        { filename: 'report\u202Efdp.exe', content: Buffer.from('MZ'), contentType: 'application/pdf' },
      ],
    })
      .compile()
      .build();
    writeFileSync(join(dir, `${r.id}.eml`), raw);
  }
  api = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url?.startsWith('/v1/stats'))
      res.end(
        JSON.stringify({
          from: '2026-12-01',
          to: '2026-12-07',
          days: [],
          totals: {
            accepted: 0,
            delivered: 0,
            bounced: 0,
            complained: 0,
            bounceRate: 0,
            complaintRate: 0,
          },
        }),
      );
    else res.end('{"items":[]}');
  });
  const apiPort = (await listenOnLoopback(api, { port: 0, service: 'fake api', envVar: 'X' })).port;
  con = createConsole({
    apiKey: 'k',
    tenant: TENANT,
    apiUrl: () => `http://127.0.0.1:${apiPort}`,
    messages: {
      scanTenant: async (tenant: string) => ({
        records: [...RECORDS.filter((r) => r.tenant === tenant), ...churning()],
        next: undefined,
      }),
      get: async (id: string) => RECORDS.find((r) => r.id === id),
    },
    outboxDir: dir,
    fromDomain: 'example.com',
    pollMs: 20,
  });
  gateway = createGateway([], undefined, con.handle);
  port = (await listenOnLoopback(gateway, { port: 0, service: 'gateway', envVar: 'X' })).port;
});

afterEach(async () => {
  churn = 0;
  con.close();
  await closeServer(gateway);
  await closeServer(api);
  rmSync(dir, { recursive: true, force: true });
});

/** A request exactly as written, and the status line of the answer (or the error). */
function raw(text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (c) => {
      data += c.toString('latin1');
      socket.end();
    });
    socket.on('error', (e) => resolve(`error ${e.message}`));
    socket.on('close', () => resolve(data));
    socket.write(text);
    setTimeout(() => socket.end(), 500);
  });
}

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`http://127.0.0.1:${port}${path}`, { headers });

describe('console attack: malformed requests', () => {
  it('outlives a request line larger than Node reads', async () => {
    // Act
    const answer = await raw(
      `GET /console?${'a'.repeat(100_000)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
    );
    const after = await get('/console');

    // Assess
    // Node answers 431 and drops the connection, often before the client has written it all.
    expect(answer.split('\r\n')[0]).toMatch(/^(HTTP\/1\.1 431|error read ECONNRESET)/);
    expect(after.status).toBe(200);
  });

  it('answers a request target the URL parser refuses, and keeps serving', async () => {
    // Act
    const answers = [];
    for (const target of ['//[', '//%', '//a:b@[::1/console', '//x:-1/console'])
      answers.push((await raw(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)).split('\r\n')[0]);
    const after = await get('/console/no-such-page');

    // Assess
    for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 400/);
    expect(after.status).toBe(404);
  });

  it('answers bad percent-encoding, unknown routes and odd ids with 404, not 500', async () => {
    // Act
    const statuses: Array<[string, number]> = [];
    for (const path of [
      '/console/%',
      '/console/messages/%ZZ',
      '/console/messages/msg_%00',
      '/console/messages/..%2f..%2fpackage.json',
      '/console/static/..%2f..%2fpackage.json',
      '/console/static/%2e%2e/%2e%2e/package.json',
      '/console/static/..\\..\\package.json',
      '/console/static/console.js%00.css',
      `/console/messages/${OURS}/attachments/99`,
      `/console/messages/${OURS}/attachments/-1`,
      `/console/?${'a=%ZZ&'.repeat(1000)}`,
    ])
      statuses.push([path, (await get(path)).status]);

    // Assess
    for (const [path, status] of statuses)
      expect([path, status]).toEqual([path, path.startsWith('/console/?') ? 200 : 404]);
  });
});

describe('console attack: Host', () => {
  it('answers only 127.0.0.1:<port> and localhost:<port>, on every console path', async () => {
    // Act
    const answers: Array<[string, string, string]> = [];
    for (const path of [
      '/console',
      '/console/events',
      '/console/static/console.js',
      `/console/messages/${OURS}/html`,
    ])
      for (const host of [
        `Host: evil.example:${port}`,
        `Host: 127.0.0.1:${port}.evil.example`,
        `Host: localhost.:${port}`,
        `Host: [::1]:${port}`,
        `Host: 127.0.0.1`,
        `Host: 127.0.0.1:${port}\r\nHost: evil.example`,
        '',
      ]) {
        const version = host === '' ? '1.0' : '1.1';
        const status =
          (await raw(`GET ${path} HTTP/${version}\r\n${host}${host ? '\r\n' : ''}\r\n`)).split('\r\n')[0] ??
          '';
        answers.push([path, host, status.replace(/^HTTP\/1\.[01] (\d+).*$/, '$1')]);
      }

    // Assess
    for (const [path, host, status] of answers)
      expect([path, host, status]).toEqual([path, host, expect.stringMatching(/^(421|400)$/)]);
  });
});

describe('console attack: requests from another site', () => {
  it('refuses another site’s subresource requests, so it cannot hold the event streams or probe ids', async () => {
    // Prepare
    const from = (site: string, mode: string, dest: string) => ({
      'sec-fetch-site': site,
      'sec-fetch-mode': mode,
      'sec-fetch-dest': dest,
    });

    // fetch sets its own Sec-Fetch-Mode: node:http sends these as given, and the answer's status
    // is all that is read before the connection is dropped.
    const status = (path: string, headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ port, host: '127.0.0.1', path, headers, agent: false }, (res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        req.on('error', reject);
        req.end();
      });

    // Act
    const streams: number[] = [];
    for (let i = 0; i < 40; i++)
      streams.push(await status('/console/events', from('cross-site', 'cors', 'empty')));
    const probes = [
      await status(`/console/messages/${OURS}/attachments/0`, from('cross-site', 'no-cors', 'image')),
      await status(`/console/messages/${OURS}`, from('same-site', 'no-cors', 'script')),
      await status(`/console/messages/${OURS}/html`, from('cross-site', 'navigate', 'iframe')),
    ];
    const link = await status('/console', from('cross-site', 'navigate', 'document'));
    const own = await status('/console/events', from('same-origin', 'cors', 'empty'));

    // Assess
    expect(new Set(streams)).toEqual(new Set([403]));
    expect(probes).toEqual([403, 403, 403]);
    expect([link, own]).toEqual([200, 200]);
  });
});

describe('console attack: another tenant', () => {
  it('shows no page, HTML, raw source or attachment of a message another key sent', async () => {
    // Act
    const statuses = [];
    for (const suffix of ['', '/html', '/raw', '/attachments/0'])
      statuses.push((await get(`/console/messages/${THEIRS}${suffix}`)).status);
    const landing = await (await get('/console')).text();

    // Assess
    expect(statuses).toEqual([404, 404, 404, 404]);
    expect(landing).toContain(OURS);
    expect(landing).not.toContain(THEIRS);
    expect(landing).not.toContain('theirs-secret');
  });
});

describe('console attack: attachments', () => {
  it('serves a crafted filename as a download with no injected header', async () => {
    // Act
    const first = await get(`/console/messages/${OURS}/attachments/0`);
    const second = await get(`/console/messages/${OURS}/attachments/1`);
    const third = await get(`/console/messages/${OURS}/attachments/2`);

    // Assess
    expect(first.headers.get('content-type')).toBe('application/octet-stream');
    expect(first.headers.get('x-injected')).toBeNull();
    const disposition = first.headers.get('content-disposition') ?? '';
    expect(disposition).toMatch(
      /^attachment; filename="[\w.-]+"; filename\*=UTF-8''[A-Za-z0-9%!#$&+\-.^_`|~]+$/,
    );
    // RFC 8187 attr-chars only: a quote or parenthesis would end or confuse the parameter.
    expect(second.headers.get('content-disposition')).toMatch(
      /^attachment; filename="[\w.-]+"; filename\*=UTF-8''[A-Za-z0-9%!#$&+\-.^_`|~]+$/,
    );
    // A right-to-left override would make the saved name read `reportexe.pdf`.
    expect(third.headers.get('content-disposition')).toBe(
      `attachment; filename="report_fdp.exe"; filename*=UTF-8''report_fdp.exe`,
    );
  });
});

describe('console attack: CSRF', () => {
  async function session(): Promise<{ cookie: string; token: string }> {
    const res = await get('/console/suppressions');
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const token = /name="csrf" value="([^"]+)"/.exec(await res.text())?.[1] ?? '';
    return { cookie, token };
  }

  const post = (path: string, body: string, headers: Record<string, string>) =>
    fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body, headers, redirect: 'manual' });

  it('refuses a token after a restart, and a GET or a method override never acts', async () => {
    // Prepare: the same cookie and token, against a second console (local mode started again).
    const a = await session();
    const restarted = createConsole({
      apiKey: 'k',
      tenant: TENANT,
      apiUrl: () => 'http://127.0.0.1:9',
      messages: { scanTenant: async () => ({ records: [], next: undefined }), get: async () => undefined },
      outboxDir: dir,
      fromDomain: 'example.com',
    });
    const second = createGateway([], undefined, restarted.handle);
    const secondPort = (await listenOnLoopback(second, { port: 0, service: 'gateway 2', envVar: 'X' })).port;
    const form = `csrf=${encodeURIComponent(a.token)}&mailbox=success&address=x%40example.org`;

    // Act
    const replay = await fetch(`http://127.0.0.1:${secondPort}/console/send-test`, {
      method: 'POST',
      body: form,
      headers: { cookie: a.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      redirect: 'manual',
    });
    restarted.close();
    await closeServer(second);
    const gets = [];
    for (const path of ['/console/send-test', '/console/suppressions/lift', '/console/suppressions'])
      gets.push((await get(`${path}?${form}`, { cookie: a.cookie })).status);
    const overridden = await fetch(`http://127.0.0.1:${port}/console/send-test?_method=POST`, {
      method: 'PUT',
      body: form,
      headers: { cookie: a.cookie, 'x-http-method-override': 'POST' },
    });

    // Assess
    expect(replay.status).toBe(403);
    // The suppression page only lists (the fake API has none); the others are no pages.
    expect(gets).toEqual([404, 404, 200]);
    expect(overridden.status).toBe(405);
  });

  it('refuses a foreign, empty or opaque Origin, another session’s token and a long token', async () => {
    // Prepare
    const a = await session();
    const b = await session();
    const form = (token: string) => `csrf=${encodeURIComponent(token)}&mailbox=success`;

    // Act
    const statuses = [
      (await post('/console/send-test', form(a.token), { cookie: a.cookie, origin: 'http://evil.example' }))
        .status,
      (await post('/console/send-test', form(a.token), { cookie: a.cookie, origin: '' })).status,
      (await post('/console/send-test', form(a.token), { cookie: a.cookie, origin: 'null' })).status,
      (await post('/console/send-test', form(b.token), { cookie: a.cookie })).status,
      (await post('/console/send-test', form(a.token.repeat(1000)), { cookie: a.cookie })).status,
      (await post('/console/send-test', form(a.token), {})).status,
      (await post('/console/send-test', form(''), { cookie: a.cookie })).status,
    ];

    // Assess
    expect(statuses).toEqual([403, 403, 403, 403, 403, 403, 403]);
  });

  it('sets its cookie HttpOnly, SameSite=Lax, on the console path only', async () => {
    // Act
    const res = await get('/console');

    // Assess
    expect(res.headers.get('set-cookie')).toMatch(
      /^baton_console=[0-9a-f]{32}; Path=\/console; HttpOnly; SameSite=Lax$/,
    );
  });
});

describe('console attack: the event stream', () => {
  it('lists only the development key’s messages', async () => {
    // Act
    const res = await get('/console/events');
    const reader = res.body?.getReader();
    let text = '';
    while (!text.includes('event: change')) text += new TextDecoder().decode((await reader?.read())?.value);
    await reader?.cancel();

    // Assess
    expect(text).toContain(OURS);
    expect(text).not.toContain(THEIRS);
  });

  it('refuses streams beyond a bound, so many connections cannot exhaust the process', async () => {
    // Act
    const statuses: number[] = [];
    const requests: ClientRequest[] = [];
    const open = () =>
      new Promise<number>((resolve) => {
        const req = request({ port, host: '127.0.0.1', path: '/console/events', agent: false }, (res) =>
          resolve(res.statusCode ?? 0),
        );
        req.on('error', () => resolve(-1));
        req.end();
        requests.push(req);
      });
    for (let i = 0; i < 80; i++) statuses.push(await open());
    // Clients that leave free their places.
    for (const req of requests.splice(0)) req.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await open();
    for (const req of requests) req.destroy();

    // Assess
    expect(statuses.filter((s) => s === 200).length).toBeLessThan(80);
    expect(statuses.at(-1)).toBe(503);
    expect(again).toBe(200);
  });

  it('drops a client that never reads, so its backlog does not grow without end', async () => {
    // Prepare: each poll announces 2000 changed messages (about 100 kB a frame).
    churn = 2000;
    const socket = connect(port, '127.0.0.1');
    socket.write(`GET /console/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    socket.pause();
    const closed = new Promise<boolean>((resolve) => {
      socket.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 8000);
    });

    // Act: the client reads nothing; then, once it is dropped, drains what the kernel held.
    await new Promise((r) => setTimeout(r, 3000));
    socket.resume();

    // Assess
    expect(await closed).toBe(true);
  }, 15_000);

  it('ends its streams when the console closes', async () => {
    // Prepare
    const ended = new Promise<void>((resolve) => {
      request({ port, host: '127.0.0.1', path: '/console/events', agent: false }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).end();
    });
    await new Promise((r) => setTimeout(r, 50));

    // Act
    con.close();

    // Assess
    await ended;
  });
});
