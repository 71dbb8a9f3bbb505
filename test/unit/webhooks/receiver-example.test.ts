import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { signWebhook } from '../../../lambdas/domain/webhooks/signing.ts';

// examples/webhook-receiver.mjs is what docs/webhooks.md tells a developer to run: its verification must
// accept what Baton signs (signWebhook) and nothing else.

interface Delivery {
  readonly secret: string;
  readonly seen: Set<string>;
  readonly rawBody: string;
  readonly headers: Record<string, string | undefined>;
}
type Handled =
  | { status: 400; error: string }
  | { status: 200; id: string; duplicate: true }
  | {
      status: 200;
      id: string;
      duplicate: false;
      event: { type: string; timestamp: string; data: Record<string, unknown> };
    };
interface ReceiverExample {
  verifyDelivery(secret: string, rawBody: string, headers: Record<string, string | undefined>): unknown;
  verifyByHand(secret: string, rawBody: string, headers: Record<string, string | undefined>): unknown;
  handleDelivery(delivery: Delivery): Handled;
  describeEvent(
    id: string,
    event: { type: string; timestamp: string; data: Record<string, unknown> },
  ): string;
}

const EXAMPLE = fileURLToPath(new URL('../../../examples/webhook-receiver.mjs', import.meta.url));
// A path held in a variable: the example is plain JavaScript, typed by the interface above.
const example = (await import(EXAMPLE)) as ReceiverExample;
const WEBHOOKS_DOC = readFileSync(new URL('../../../docs/webhooks.md', import.meta.url), 'utf8');

const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const otherSecret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const body = JSON.stringify({
  type: 'message.delivered',
  timestamp: '2026-12-06T10:00:00.000Z',
  data: {
    messageId: 'msg_01JZ8Q4M2XK7D3V5R9T1B6N0CE',
    recipient: 'ana@example.org',
    tags: { order: '42' },
    stream: 'transactional',
    sequence: 2,
  },
});
const signed = (secrets: string[], at = new Date(), payload = body) =>
  signWebhook({ id: 'evt_0123456789abcdef0123456789abcdef', timestamp: at, body: payload, secrets });

describe('the example receiver', () => {
  it("verifies Baton's signature and hands back the event", () => {
    // Prepare
    const headers = signed([secret]);

    // Act
    const handled = example.handleDelivery({ secret, seen: new Set(), rawBody: body, headers });

    // Assess
    expect(handled).toEqual({
      status: 200,
      id: 'evt_0123456789abcdef0123456789abcdef',
      duplicate: false,
      event: JSON.parse(body),
    });
  });

  it('verifies with either secret while two sign, as after a rotation', () => {
    // Prepare
    const headers = signed([otherSecret, secret]);

    // Act
    const withOld = example.verifyDelivery(secret, body, headers);
    const withNew = example.verifyDelivery(otherSecret, body, headers);

    // Assess
    expect(withOld).toEqual(JSON.parse(body));
    expect(withNew).toEqual(JSON.parse(body));
  });

  it('answers 400 to another secret, a changed body and a missing signature', () => {
    // Prepare
    const headers = signed([secret]);
    const changed = body.replace('ana@', 'bob@');

    // Act
    const answers = [
      example.handleDelivery({ secret: otherSecret, seen: new Set(), rawBody: body, headers }),
      example.handleDelivery({ secret, seen: new Set(), rawBody: changed, headers }),
      example.handleDelivery({
        secret,
        seen: new Set(),
        rawBody: body,
        headers: { ...headers, 'webhook-signature': undefined },
      }),
    ];

    // Assess
    expect(answers.map((a) => a.status)).toEqual([400, 400, 400]);
  });

  it('refuses a delivery signed more than five minutes ago (a replayed capture)', () => {
    // Prepare
    const headers = signed([secret], new Date(Date.now() - 6 * 60 * 1000));

    // Act
    const handled = example.handleDelivery({ secret, seen: new Set(), rawBody: body, headers });

    // Assess
    expect(handled).toMatchObject({ status: 400, error: expect.stringMatching(/timestamp/i) });
  });

  it('acknowledges a repeated webhook-id without handing the event over again', () => {
    // Prepare
    const seen = new Set<string>();
    example.handleDelivery({ secret, seen, rawBody: body, headers: signed([secret]) });

    // Act
    const retry = example.handleDelivery({ secret, seen, rawBody: body, headers: signed([secret]) });

    // Assess
    expect(retry).toEqual({ status: 200, id: 'evt_0123456789abcdef0123456789abcdef', duplicate: true });
  });

  it('prints the type, message, recipient and sequence of an event', () => {
    // Act
    const line = example.describeEvent('evt_1', JSON.parse(body));

    // Assess
    expect(line).toBe(
      '2026-12-06T10:00:00.000Z message.delivered msg_01JZ8Q4M2XK7D3V5R9T1B6N0CE ana@example.org #2 (evt_1)',
    );
  });

  it('refuses to start without a whsec_ secret, saying where it comes from', () => {
    // Act
    const run = spawnSync(process.execPath, [EXAMPLE], {
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
      timeout: 10_000,
    });

    // Assess
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/WEBHOOK_SECRET.*POST \/v1\/webhooks/);
  });
});

describe('verifying by hand, as docs/webhooks.md shows it', () => {
  it('is the code of the example, word for word', () => {
    // Act: the function as written in the file (what vitest runs is rewritten, its imports renamed).
    const text = readFileSync(EXAMPLE, 'utf8');
    const source = text.slice(
      text.indexOf('function verifyByHand('),
      text.indexOf('\n}\n', text.indexOf('function verifyByHand(')) + 2,
    );

    // Assess
    expect(source).toMatch(/^function verifyByHand\(secret, rawBody, headers\) \{\n[\s\S]+\n\}$/);
    expect(WEBHOOKS_DOC).toContain(source);
  });

  it('accepts what Baton signs, with one secret or two', () => {
    // Prepare
    const one = signed([secret]);
    const two = signed([otherSecret, secret]);

    // Act
    const verified = [
      example.verifyByHand(secret, body, one),
      example.verifyByHand(secret, body, two),
      example.verifyByHand(otherSecret, body, two),
    ];

    // Assess
    expect(verified).toEqual([JSON.parse(body), JSON.parse(body), JSON.parse(body)]);
  });

  it('refuses another secret, a changed body, a changed id, an old timestamp and a v2 signature', () => {
    // Prepare
    const headers = signed([secret]);
    const cases: [string, string, Record<string, string | undefined>][] = [
      [otherSecret, body, headers],
      [secret, body.replace('ana@', 'bob@'), headers],
      [secret, body, { ...headers, 'webhook-id': 'evt_other' }],
      [secret, body, signed([secret], new Date(Date.now() - 6 * 60 * 1000))],
      [secret, body, { ...headers, 'webhook-signature': headers['webhook-signature'].replace('v1,', 'v2,') }],
      [secret, body, { ...headers, 'webhook-timestamp': undefined }],
    ];

    // Act
    const outcomes = cases.map(([key, raw, h]) => {
      try {
        example.verifyByHand(key, raw, h);
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      }
    });

    // Assess
    expect(outcomes).toEqual([
      'no valid v1 signature',
      'no valid v1 signature',
      'no valid v1 signature',
      'webhook-timestamp is missing or more than 5 minutes from now',
      'no valid v1 signature',
      'webhook-timestamp is missing or more than 5 minutes from now',
    ]);
  });
});
