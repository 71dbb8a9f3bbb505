import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BatonError,
  type BatonTransportOptions,
  batonTransport,
} from '../../../clients/nodemailer-transport/index.js';
import { type FakeBaton, problemBody, startFakeBaton } from '../../support/fake-baton.ts';

const ACCEPTED = {
  id: 'msg_01ABC',
  status: 'queued',
  recipients: [
    { address: 'ana@example.org', status: 'queued' },
    { address: 'gone@example.org', status: 'suppressed', reason: 'hard_bounce' },
    { address: 'carl@example.net', status: 'held' },
  ],
  rewrittenFrom: null,
};

const MAIL = {
  from: 'Shop <orders@example.com>',
  to: 'Ana <ana@example.org>, gone@example.org',
  bcc: 'carl@example.net',
  subject: 'Your receipt',
  text: 'Thanks.',
  headers: { 'X-Order': '42' },
  attachments: [{ filename: 'receipt.txt', content: Buffer.from('total: 3') }],
};

let fake: FakeBaton | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

function transporter(f: FakeBaton, options: Partial<BatonTransportOptions> = {}) {
  return nodemailer.createTransport(
    batonTransport({ url: f.url, apiKey: 'bk_test_secret', retryDelay: 1, ...options }),
  );
}

async function failure(promise: Promise<unknown>): Promise<BatonError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (outcome === undefined) throw new Error('expected the send to fail');
  return outcome as BatonError;
}

describe('batonTransport', () => {
  it('posts the MIME nodemailer built, with its envelope, the key and the Message-ID as Idempotency-Key', async () => {
    // Prepare
    fake = await startFakeBaton({ status: 202, body: ACCEPTED });

    // Act
    const info = await transporter(fake).sendMail({ ...MAIL, messageId: '<order-42@example.com>' });

    // Assess
    const [request] = fake.requests;
    expect(request?.method).toBe('POST');
    expect(request?.path).toBe('/v1/messages');
    expect(request?.headers.authorization).toBe('Bearer bk_test_secret');
    expect(request?.headers['idempotency-key']).toBe('<order-42@example.com>');
    expect(request?.headers['content-type']).toBe('application/json');
    const body = JSON.parse(request?.body ?? '{}') as { raw: string; envelope: unknown };
    expect(body.envelope).toEqual({
      from: 'orders@example.com',
      to: ['ana@example.org', 'gone@example.org', 'carl@example.net'],
    });
    const raw = Buffer.from(body.raw, 'base64');
    expect(raw.toString('latin1')).not.toMatch(/^bcc:/im);
    const parsed = await simpleParser(raw);
    expect(parsed.messageId).toBe('<order-42@example.com>');
    expect(parsed.headers.get('x-order')).toBe('42');
    expect(parsed.attachments.map((a) => [a.filename, a.content.toString()])).toEqual([
      ['receipt.txt', 'total: 3'],
    ]);
    expect(info).toEqual({
      messageId: 'msg_01ABC',
      envelope: {
        from: 'orders@example.com',
        to: ['ana@example.org', 'gone@example.org', 'carl@example.net'],
      },
      accepted: ['ana@example.org'],
      rejected: ['gone@example.org'],
      pending: ['carl@example.net'],
      response: '202 queued msg_01ABC',
      baton: ACCEPTED,
    });
  });

  it('uses the Message-ID nodemailer generates as the key when the app sets none', async () => {
    // Prepare
    fake = await startFakeBaton({ status: 202, body: ACCEPTED });

    // Act
    await transporter(fake).sendMail(MAIL);

    // Assess
    const [request] = fake.requests;
    const parsed = await simpleParser(Buffer.from(JSON.parse(request?.body ?? '{}').raw, 'base64'));
    expect(request?.headers['idempotency-key']).toMatch(/^<[^>]+@[^>]+>$/);
    expect(request?.headers['idempotency-key']).toBe(parsed.messageId);
  });

  it('keys a message the app hands over raw by its own Message-ID, or by its bytes without one, so sending it again sends it once', async () => {
    // Prepare
    fake = await startFakeBaton({ status: 202, body: ACCEPTED });
    const t = transporter(fake);
    const envelope = { from: 'orders@example.com', to: ['ana@example.org'] };
    const withId =
      'From: orders@example.com\r\nTo: ana@example.org\r\nMessage-ID:\r\n <fixed@example.com>\r\nSubject: x\r\n\r\nHi.\r\n';
    const withoutId = 'From: orders@example.com\r\nTo: ana@example.org\r\nSubject: x\r\n\r\nHi.\r\n';

    // Act
    for (const raw of [withId, withId, withoutId, withoutId]) await t.sendMail({ raw, envelope });

    // Assess
    const keys = fake.requests.map((r) => r.headers['idempotency-key']);
    expect(keys.slice(0, 2)).toEqual(['<fixed@example.com>', '<fixed@example.com>']);
    expect(keys[2]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(keys[3]).toBe(keys[2]);
  });

  it('retries a 503 and a 500 with the same Idempotency-Key and body, then returns the 202', async () => {
    // Prepare
    fake = await startFakeBaton(
      { status: 503, body: problemBody(503, 'unavailable', 'busy') },
      { status: 500, body: problemBody(500, 'internal', 'failed') },
      { status: 202, body: ACCEPTED },
    );

    // Act
    const info = await transporter(fake).sendMail(MAIL);

    // Assess
    expect(info.messageId).toBe('msg_01ABC');
    expect(fake.requests).toHaveLength(3);
    const keys = new Set(fake.requests.map((r) => r.headers['idempotency-key']));
    const bodies = new Set(fake.requests.map((r) => r.body));
    expect(keys.size).toBe(1);
    expect(bodies.size).toBe(1);
  });

  it('waits for the Retry-After of a 429 before trying again', async () => {
    // Prepare
    fake = await startFakeBaton(
      { status: 429, body: problemBody(429, 'rate_limited', 'slow down'), headers: { 'retry-after': '1' } },
      { status: 202, body: ACCEPTED },
    );

    // Act
    await transporter(fake).sendMail(MAIL);

    // Assess
    const [first, second] = fake.requests;
    expect(fake.requests).toHaveLength(2);
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('does not wait for a Retry-After longer than maxRetryDelay (a used-up daily quota) and says how long', async () => {
    // Prepare
    fake = await startFakeBaton({
      status: 429,
      body: problemBody(429, 'rate_limited', 'This API key’s daily quota of 10 messages is used up.'),
      headers: { 'retry-after': '3600' },
    });

    // Act
    const error = await failure(transporter(fake).sendMail(MAIL));

    // Assess
    expect(fake.requests).toHaveLength(1);
    expect(error.code).toBe('rate_limited');
    expect(error.responseCode).toBe(429);
    expect(error.retryAfter).toBe(3600);
  });

  it('turns a problem into an error with its code, status, detail and field errors, and does not retry it', async () => {
    // Prepare
    const errors = [{ path: 'headers.Subject', message: 'must be at most 997 characters' }];
    fake = await startFakeBaton({
      status: 422,
      body: problemBody(
        422,
        'invalid_message',
        'The message is not valid; see errors for each failing field.',
        errors,
      ),
    });

    // Act
    const error = await failure(transporter(fake).sendMail(MAIL));

    // Assess
    expect(fake.requests).toHaveLength(1);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('BatonError');
    expect(error.message).toBe('The message is not valid; see errors for each failing field.');
    expect(error.code).toBe('invalid_message');
    expect(error.responseCode).toBe(422);
    expect(error.detail).toBe('The message is not valid; see errors for each failing field.');
    expect(error.errors).toEqual(errors);
    expect(error.response).toBe(
      '422 invalid_message: The message is not valid; see errors for each failing field.',
    );
  });

  it('names the gateway’s own 413 (no problem body) too_large, as Baton’s is named, and does not retry it', async () => {
    // Prepare: API Gateway refuses a body over its limit before Baton sees it
    fake = await startFakeBaton({ status: 413, body: { message: 'Request Entity Too Large' } });

    // Act
    const error = await failure(transporter(fake).sendMail(MAIL));

    // Assess
    expect(error.code).toBe('too_large');
    expect(error.responseCode).toBe(413);
    expect(fake.requests).toHaveLength(1);
  });

  it('gives up after `retries` more attempts and returns the last problem', async () => {
    // Prepare
    fake = await startFakeBaton({ status: 503, body: problemBody(503, 'unavailable', 'busy') });

    // Act
    const error = await failure(transporter(fake, { retries: 2 }).sendMail(MAIL));

    // Assess
    expect(fake.requests).toHaveLength(3);
    expect(error.code).toBe('unavailable');
    expect(error.responseCode).toBe(503);
  });

  it('retries a connection Baton drops, and a request that outlasts the timeout', async () => {
    // Prepare
    fake = await startFakeBaton(
      'hang-up',
      { status: 202, body: ACCEPTED, delayMs: 500 },
      {
        status: 202,
        body: ACCEPTED,
      },
    );

    // Act
    const info = await transporter(fake, { timeout: 200 }).sendMail(MAIL);

    // Assess
    expect(info.messageId).toBe('msg_01ABC');
    expect(fake.requests).toHaveLength(3);
    expect(new Set(fake.requests.map((r) => r.headers['idempotency-key'])).size).toBe(1);
  });

  it('stops retrying as soon as the app’s abort signal fires, during a wait or as an answer arrives', async () => {
    // Prepare: a 503 asking for 5 s, aborted 200 ms into the wait
    fake = await startFakeBaton({
      status: 503,
      body: problemBody(503, 'unavailable', 'Try again.'),
      headers: { 'retry-after': '5' },
    });
    const waiting = new AbortController();
    setTimeout(() => waiting.abort(), 200);
    // and a fetch whose 503 arrives just as the app aborts (before the wait begins)
    const racing = new AbortController();
    const fetch = async () => {
      queueMicrotask(() => racing.abort());
      return new Response('{}', { status: 503, headers: { 'retry-after': '5' } });
    };

    // Act
    const started = performance.now();
    const first = await failure(transporter(fake).sendMail({ ...MAIL, signal: waiting.signal } as never));
    const second = await failure(
      transporter(fake, { fetch }).sendMail({ ...MAIL, signal: racing.signal } as never),
    );
    const took = performance.now() - started;

    // Assess
    expect((first as Error).name).toBe('AbortError');
    expect((second as Error).name).toBe('AbortError');
    expect(fake.requests).toHaveLength(1);
    expect(took).toBeLessThan(2_000);
  });

  it('says ETIMEDOUT when every attempt outlasts the timeout', async () => {
    // Prepare
    fake = await startFakeBaton({ status: 202, body: ACCEPTED, delayMs: 400 });

    // Act
    const error = await failure(transporter(fake, { timeout: 100, retries: 1 }).sendMail(MAIL));

    // Assess
    expect(error.code).toBe('ETIMEDOUT');
    expect(error.message).toBe('Baton did not answer within 100 ms');
    expect(fake.requests).toHaveLength(2);
  });

  it('says ECONNECTION when Baton cannot be reached', async () => {
    // Prepare
    fake = await startFakeBaton({ status: 202, body: ACCEPTED });
    const url = fake.url;
    await fake.close();
    fake = undefined;

    // Act
    const error = await failure(
      nodemailer
        .createTransport(batonTransport({ url, apiKey: 'k', retries: 1, retryDelay: 1 }))
        .sendMail(MAIL),
    );

    // Assess
    expect(error.code).toBe('ECONNECTION');
    expect(error.message).toMatch(/^Baton could not be reached at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED$/);
  });

  it('verifies the URL and key with GET /v1/reputation, as a promise and with a callback', async () => {
    // Prepare
    fake = await startFakeBaton({ status: 200, body: { standing: 'good' } });
    const t = transporter(fake);

    // Act
    const promised = await t.verify();
    const called = await new Promise((resolve, reject) =>
      t.verify((error, ok) => (error ? reject(error) : resolve(ok))),
    );

    // Assess
    expect(promised).toBe(true);
    expect(called).toBe(true);
    expect(fake.requests.map((r) => [r.method, r.path, r.headers.authorization])).toEqual([
      ['GET', '/v1/reputation', 'Bearer bk_test_secret'],
      ['GET', '/v1/reputation', 'Bearer bk_test_secret'],
    ]);
  });

  it('fails verify with code unauthorized for a key Baton refuses', async () => {
    // Prepare
    fake = await startFakeBaton({ status: 401, body: problemBody(401, 'unauthorized', 'Unknown API key.') });

    // Act
    const error = await failure(transporter(fake).verify());

    // Assess
    expect(error.code).toBe('unauthorized');
    expect(error.responseCode).toBe(401);
    expect(error.message).toBe('Unknown API key.');
    expect(fake.requests).toHaveLength(1);
  });

  it('refuses an unknown option, a missing key and a URL that is not http(s)', () => {
    // Act, Assess
    expect(() => batonTransport({ url: 'http://x', apiKey: 'k', retry: 5 } as BatonTransportOptions)).toThrow(
      'batonTransport: unknown option retry',
    );
    expect(() => batonTransport({ url: 'http://x', apiKey: '' })).toThrow(
      'batonTransport: apiKey is required',
    );
    expect(() => batonTransport({ url: '127.0.0.1:3000', apiKey: 'k' })).toThrow(
      /url must be Baton’s base URL/,
    );
    expect(() => batonTransport({ url: 'http://x', apiKey: 'k', timeout: '30s' } as never)).toThrow(
      'batonTransport: timeout must be a number of ms above 0',
    );
    expect(() => batonTransport({ url: 'http://x', apiKey: 'k', retries: -1 })).toThrow(
      'batonTransport: retries must be a whole number of 0 or more',
    );
    expect(() => batonTransport({ url: 'http://x', apiKey: 'k', retryDelay: Number.NaN })).toThrow(
      'batonTransport: retryDelay must be a number of ms of 0 or more',
    );
    expect(() => batonTransport({ url: 'http://x', apiKey: 'k', fetch: 'x' } as never)).toThrow(
      'batonTransport: fetch must be a function',
    );
  });
  it('fails verify, and a send, with code EPROTOCOL when a 2xx answer is not Baton’s (another server at the URL)', async () => {
    // Prepare: a web server that is not Baton, answering every path 200 with a page
    fake = await startFakeBaton({ status: 200, body: '<html>Welcome</html>' });
    const t = transporter(fake);

    // Act
    const verified = await failure(t.verify());
    const sent = await failure(t.sendMail(MAIL));

    // Assess
    expect(verified.code).toBe('EPROTOCOL');
    expect(verified.message).toMatch(/not Baton’s API/);
    expect(sent.code).toBe('EPROTOCOL');
    expect(sent.responseCode).toBe(200);
    // Not retried: a server that is not Baton sent nothing.
    expect(fake.requests).toHaveLength(2);
  });

  it('builds the API URL from a base URL with a path prefix, and refuses one with a query or fragment', async () => {
    // Prepare
    fake = await startFakeBaton({ status: 202, body: ACCEPTED });

    // Act
    await transporter(fake, { url: `${fake.url}/stage/` }).sendMail(MAIL);

    // Assess
    expect(fake.requests.map((r) => r.path)).toEqual(['/stage/v1/messages']);
    expect(() => batonTransport({ url: `${fake?.url}/stage/?x=1`, apiKey: 'k' })).toThrow(
      /url must be Baton’s base URL/,
    );
    expect(() => batonTransport({ url: `${fake?.url}/#top`, apiKey: 'k' })).toThrow(
      /url must be Baton’s base URL/,
    );
    // fetch refuses a URL with credentials: every attempt would fail as if Baton could not be reached
    expect(() => batonTransport({ url: 'http://user:secret@127.0.0.1:3000', apiKey: 'k' })).toThrow(
      /url must be Baton’s base URL/,
    );
  });
});
