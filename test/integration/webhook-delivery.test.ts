import type { LookupAddress } from 'node:dns';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebhookHttpPoster } from '../../lambdas/adapters/webhook-http.ts';
import { type DeliveryDeps, deliverJob } from '../../lambdas/domain/webhooks/deliver.ts';
import type { WebhookDeliveryJob, WebhookEndpoint } from '../../lambdas/domain/webhooks/endpoint.ts';
import { newWebhookSecret, signWebhook } from '../../lambdas/domain/webhooks/signing.ts';
import { developmentCertificate } from '../../local/smtp.ts';
import { InMemoryEndpointStateStore } from '../support/webhook-delivery.ts';
import {
  InMemoryWebhookQueue,
  InMemoryWebhookStore,
  RecordingWebhookPublisher,
  WebhookReceiver,
} from '../support/webhooks.ts';

const ID = 'wh_BBBBBBBBBBBBBBBBBBBBBBBB';
const SECRET = newWebhookSecret();
const body = JSON.stringify({
  type: 'message.delivered',
  timestamp: new Date().toISOString(),
  data: { messageId: 'm', sequence: 1 },
});

let receiver: WebhookReceiver;
let store: InMemoryWebhookStore;
let queue: InMemoryWebhookQueue;
let publisher: RecordingWebhookPublisher;
let offsetMs: number;

beforeEach(async () => {
  receiver = await WebhookReceiver.start();
  receiver.secrets = [SECRET];
  store = new InMemoryWebhookStore();
  queue = new InMemoryWebhookQueue();
  publisher = new RecordingWebhookPublisher();
  offsetMs = 0;
});

afterEach(async () => {
  await receiver.close();
});

const endpoint = (url: string): WebhookEndpoint => ({
  id: ID,
  tenant: 'acme',
  url,
  events: ['message.delivered'],
  description: '',
  enabled: true,
  disabledReason: null,
  secrets: [{ secret: SECRET, createdAt: new Date().toISOString() }],
  createdAt: new Date().toISOString(),
  updatedAt: new Date().toISOString(),
  version: 1,
});

const job = (): WebhookDeliveryJob => ({
  v: 1,
  tenant: 'acme',
  endpointId: ID,
  eventId: 'evt_11111111111111111111111111111111',
  type: 'message.delivered',
  body,
  attempt: 0,
  firstQueuedAt: Date.now(),
  notBefore: Date.now(),
  occurredAt: Date.now(),
});

const deps = (poster: WebhookHttpPoster): DeliveryDeps => ({
  endpoints: store,
  state: new InMemoryEndpointStateStore(),
  poster,
  log: store,
  queue,
  publisher,
  clock: () => new Date(Date.now() + offsetMs),
  random: () => 0.5,
  leaseId: () => crypto.randomUUID(),
});

const request = (url: string) => ({
  url,
  body,
  headers: signWebhook({ id: 'evt_1', timestamp: new Date(), body, secrets: [SECRET] }),
});

const resolvesTo =
  (...addresses: LookupAddress[]) =>
  async (): Promise<LookupAddress[]> =>
    addresses;

describe('webhook delivery against a real receiver', () => {
  it('retries a 500 with the same webhook-id, and the retry verifies', async () => {
    // Prepare
    receiver.answer = (_, n) => (n === 0 ? { status: 500, body: 'down for a deploy' } : { status: 200 });
    await store.create(endpoint(receiver.url()));
    const local = deps(new WebhookHttpPoster({ allowLoopback: true }));

    // Act
    const first = await deliverJob(job(), local);
    const [retry] = queue.jobs;
    offsetMs = 10_000;
    const second = retry && (await deliverJob(retry, local));

    // Assess
    expect(first).toMatchObject({ done: true, attempt: { outcome: 'retry' } });
    expect(second).toMatchObject({ done: true, attempt: { outcome: 'success' } });
    expect(receiver.received.map((r) => [r.status, r.verified, r.headers['webhook-id']])).toEqual([
      [500, true, 'evt_11111111111111111111111111111111'],
      [200, true, 'evt_11111111111111111111111111111111'],
    ]);
    expect(receiver.received[0]?.headers['user-agent']).toBe('Baton-Webhooks/1');
    expect(receiver.received[0]?.headers['content-type']).toBe('application/json');
    expect(store.attemptLog.map((a) => [a.attempt, a.statusCode, a.response])).toEqual([
      [1, 500, 'down for a deploy'],
      [2, 200, ''],
    ]);
  });

  it('disables the endpoint that answers 410', async () => {
    // Prepare
    receiver.answer = () => ({ status: 410 });
    await store.create(endpoint(receiver.url()));

    // Act
    const decision = await deliverJob(job(), deps(new WebhookHttpPoster({ allowLoopback: true })));

    // Assess
    expect(decision).toMatchObject({ done: true, attempt: { outcome: 'disabled', endpointDisabled: true } });
    expect(await store.get('acme', ID)).toMatchObject({ enabled: false, disabledReason: 'gone' });
    expect(publisher.events[0]?.payload.type).toBe('webhook.endpoint.disabled');
  });

  it('gives up on a receiver that hangs after the timeout', async () => {
    // Prepare
    receiver.answer = () => 'hang';
    const poster = new WebhookHttpPoster({ allowLoopback: true, timeoutMs: 300 });

    // Act
    const result = await poster.post(request(receiver.url()));

    // Assess
    expect(result).toMatchObject({ error: 'timeout' });
    expect(result.latencyMs).toBeGreaterThanOrEqual(290);
    expect(result.latencyMs).toBeLessThan(2000);
  });

  it('does not follow a redirect', async () => {
    // Prepare
    receiver.answer = () => ({ status: 302, headers: { location: receiver.url('/elsewhere') } });
    const poster = new WebhookHttpPoster({ allowLoopback: true });

    // Act
    const result = await poster.post(request(receiver.url()));
    await new Promise((r) => setTimeout(r, 100));

    // Assess
    expect(result).toMatchObject({ status: 302 });
    expect(receiver.received.map((r) => r.path)).toEqual(['/hooks']);
  });

  it('reads at most 4 KiB of a huge answer', async () => {
    // Prepare
    receiver.answer = () => ({ status: 200, body: 'x'.repeat(2_000_000) });
    const poster = new WebhookHttpPoster({ allowLoopback: true });

    // Act
    const result = await poster.post(request(receiver.url()));

    // Assess
    expect(result).toMatchObject({ status: 200, snippet: 'x'.repeat(4096) });
  });

  it('passes the Retry-After header on', async () => {
    // Prepare
    receiver.answer = () => ({ status: 429, headers: { 'retry-after': '120' } });
    const poster = new WebhookHttpPoster({ allowLoopback: true });

    // Act
    const result = await poster.post(request(receiver.url()));

    // Assess
    expect(result).toMatchObject({ status: 429, retryAfter: '120' });
  });

  it('connects to the address it checked, keeping the URL’s host in the Host header', async () => {
    // Prepare
    const port = new URL(receiver.url()).port;
    const poster = new WebhookHttpPoster({
      allowLoopback: true,
      lookup: resolvesTo({ address: '127.0.0.1', family: 4 }),
    });

    // Act
    const result = await poster.post(request(`http://localhost:${port}/hooks`));

    // Assess
    expect(result).toMatchObject({ status: 200 });
    expect(receiver.received[0]?.headers.host).toBe(`localhost:${port}`);
    expect(receiver.received[0]?.verified).toBe(true);
  });

  it('uses the resolved address it checked, not a second resolution of the name', async () => {
    // Prepare: the receiver listens on 127.0.0.1 only, nothing on 127.0.0.2.
    const port = new URL(receiver.url()).port;
    const poster = new WebhookHttpPoster({
      allowLoopback: true,
      lookup: resolvesTo({ address: '127.0.0.2', family: 4 }),
    });

    // Act
    const result = await poster.post(request(`http://localhost:${port}/hooks`));

    // Assess
    expect(result).toMatchObject({ error: 'network', detail: 'ECONNREFUSED' });
    expect(receiver.received).toHaveLength(0);
  });

  it.each([
    ['127.0.0.1', 4],
    ['10.0.0.1', 4],
    ['169.254.169.254', 4],
    ['::ffff:127.0.0.1', 6],
  ] as const)('refuses a name that resolves to %s at connect time', async (address, family) => {
    // Prepare
    const port = new URL(receiver.url()).port;
    const poster = new WebhookHttpPoster({ lookup: resolvesTo({ address, family }) });

    // Act
    const result = await poster.post(request(`http://hooks.example.test:${port}/hooks`));

    // Assess
    expect(result).toMatchObject({ error: 'refused-address' });
    expect('detail' in result && result.detail).toContain(address);
    expect(receiver.received).toHaveLength(0);
  });

  it('refuses a loopback address behind any other name, even in local mode', async () => {
    // Prepare
    const port = new URL(receiver.url()).port;
    const poster = new WebhookHttpPoster({
      allowLoopback: true,
      lookup: resolvesTo({ address: '127.0.0.1', family: 4 }),
    });

    // Act
    const result = await poster.post(request(`http://rebound.example.test:${port}/hooks`));

    // Assess
    expect(result).toMatchObject({ error: 'refused-address' });
    expect(receiver.received).toHaveLength(0);
  });

  it('refuses a loopback URL outside local mode', async () => {
    // Prepare
    const poster = new WebhookHttpPoster();

    // Act
    const result = await poster.post(request(receiver.url()));

    // Assess
    expect(result).toMatchObject({ error: 'refused-address' });
    expect(receiver.received).toHaveLength(0);
  });

  it('refuses a name when any of its addresses is not public', async () => {
    // Prepare
    const port = new URL(receiver.url()).port;
    const poster = new WebhookHttpPoster({
      lookup: resolvesTo({ address: '93.184.216.34', family: 4 }, { address: '10.1.2.3', family: 4 }),
    });

    // Act
    const result = await poster.post(request(`http://mixed.example.test:${port}/hooks`));

    // Assess
    expect(result).toMatchObject({ error: 'refused-address' });
  });

  it('refuses a URL that carries credentials', async () => {
    // Prepare
    const poster = new WebhookHttpPoster({ allowLoopback: true });
    const url = receiver.url().replace('http://', 'http://user:secret@');

    // Act
    const result = await poster.post(request(url));

    // Assess
    expect(result).toMatchObject({ error: 'refused-address', detail: 'the URL carries credentials' });
    expect(receiver.received).toHaveLength(0);
  });

  it('reports a connection that nothing answers as a network failure', async () => {
    // Prepare
    const port = new URL(receiver.url()).port;
    await receiver.close();
    receiver = await WebhookReceiver.start();
    const poster = new WebhookHttpPoster({ allowLoopback: true });

    // Act
    const result = await poster.post(request(`http://127.0.0.1:${port}/hooks`));

    // Assess
    expect(result).toMatchObject({ error: 'network' });
  });
});

describe('webhook delivery over TLS', () => {
  let dir: string;
  let cert: string;
  let server: ReturnType<typeof createHttpsServer>;
  let port: number;
  const seen: { servername: string | false | null; host: string | undefined }[] = [];

  beforeEach(async () => {
    // Prepare: local mode's self-signed certificate for localhost.
    dir = mkdtempSync(join(tmpdir(), 'baton-webhook-tls-'));
    const files = await developmentCertificate(dir);
    cert = readFileSync(files.certFile, 'utf8');
    server = createHttpsServer({ cert, key: readFileSync(files.keyFile, 'utf8') }, (req, res) => {
      seen.push({ servername: (req.socket as TLSSocket).servername, host: req.headers.host });
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    seen.length = 0;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the URL’s host to TLS (SNI, certificate) and in Host while connecting to the pinned address', async () => {
    // Prepare
    const poster = new WebhookHttpPoster({
      allowLoopback: true,
      ca: cert,
      lookup: resolvesTo({ address: '127.0.0.1', family: 4 }),
    });

    // Act
    const result = await poster.post(request(`https://localhost:${port}/hooks`));

    // Assess
    expect(result).toMatchObject({ status: 200, snippet: 'ok' });
    expect(seen).toEqual([{ servername: 'localhost', host: `localhost:${port}` }]);
  });

  it('refuses a certificate it cannot verify', async () => {
    // Prepare
    const poster = new WebhookHttpPoster({
      allowLoopback: true,
      lookup: resolvesTo({ address: '127.0.0.1', family: 4 }),
    });

    // Act
    const result = await poster.post(request(`https://localhost:${port}/hooks`));

    // Assess
    expect(result).toMatchObject({ error: 'network' });
    expect(seen).toHaveLength(0);
  });
});
