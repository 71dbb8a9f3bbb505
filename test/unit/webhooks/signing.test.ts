import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  MalformedWebhookSecretError,
  newWebhookSecret,
  signWebhook,
} from '../../../lambdas/domain/webhooks/signing.ts';

// Fixed bytes so the vectors below do not depend on the machine's randomness.
const fixedBytes = (size: number): Buffer => Buffer.from(Array.from({ length: size }, (_, i) => i));
const oldSecret = `whsec_${fixedBytes(32).toString('base64')}`;
const newSecret = `whsec_${Buffer.alloc(32, 0xab).toString('base64')}`;
const body = '{"type":"message.delivered","data":{"messageId":"m-1"}}';

// The verifier refuses timestamps more than five minutes from its clock, so live checks sign "now".
const now = (): Date => new Date(Math.floor(Date.now() / 1000) * 1000);

// Computed here with node:crypto alone, independent of the module under test.
const expectedSignature = (secret: string, id: string, seconds: number, payload: string): string =>
  `v1,${createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
    .update(`${id}.${seconds}.${payload}`, 'utf8')
    .digest('base64')}`;

describe('newWebhookSecret', () => {
  it('is whsec_ followed by the base64 of 32 random bytes', () => {
    // Prepare
    const random = (size: number): Buffer => fixedBytes(size);

    // Act
    const secret = newWebhookSecret(random);

    // Assess
    expect(secret).toBe(oldSecret);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
  });

  it('draws fresh bytes by default, and the secret signs', () => {
    // Prepare
    const first = newWebhookSecret();
    const second = newWebhookSecret();
    const timestamp = now();

    // Act
    const headers = signWebhook({ id: 'evt_1', timestamp, body, secrets: [first] });

    // Assess
    expect(first).not.toBe(second);
    expect(first).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(new Webhook(first).verify(body, headers)).toEqual(JSON.parse(body));
  });
});

describe('signWebhook', () => {
  it('produces the headers of the Standard Webhooks specification for a fixed vector', () => {
    // Prepare
    const timestamp = new Date('2026-12-06T12:00:00.750Z');
    const seconds = Date.parse('2026-12-06T12:00:00Z') / 1000;

    // Act
    const headers = signWebhook({ id: 'evt_2Kx', timestamp, body, secrets: [oldSecret] });

    // Assess
    expect(headers).toEqual({
      'webhook-id': 'evt_2Kx',
      'webhook-timestamp': String(seconds),
      'webhook-signature': expectedSignature(oldSecret, 'evt_2Kx', seconds, body),
    });
    expect(headers['webhook-signature']).toBe('v1,JOoMcBE19G89a6GsIPQ9DU4707pfLPyC/hk8m3qIpe4=');
  });

  it('signs with both secrets of a rotation, space-separated, and each verifies alone', () => {
    // Prepare
    const timestamp = now();
    const seconds = timestamp.getTime() / 1000;

    // Act
    const headers = signWebhook({ id: 'evt_rot', timestamp, body, secrets: [oldSecret, newSecret] });

    // Assess
    expect(headers['webhook-signature']).toBe(
      `${expectedSignature(oldSecret, 'evt_rot', seconds, body)} ${expectedSignature(newSecret, 'evt_rot', seconds, body)}`,
    );
    expect(new Webhook(oldSecret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(newSecret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('signs the UTF-8 bytes of a unicode body', () => {
    // Prepare
    const unicode = '{"subject":"Grüße, 東京 📬","note":"e\\u0301 and é"}';
    const timestamp = now();
    const seconds = timestamp.getTime() / 1000;

    // Act
    const headers = signWebhook({ id: 'evt_ü', timestamp, body: unicode, secrets: [newSecret] });

    // Assess
    expect(headers['webhook-signature']).toBe(expectedSignature(newSecret, 'evt_ü', seconds, unicode));
    expect(new Webhook(newSecret).verify(unicode, headers)).toEqual(JSON.parse(unicode));
    expect(new Webhook(newSecret).verify(Buffer.from(unicode, 'utf8'), headers)).toEqual(JSON.parse(unicode));
  });

  const tampered = [
    {
      name: 'the body',
      change: (h: Record<string, string>) => ({ headers: h, payload: body.replace('m-1', 'm-2') }),
    },
    {
      name: 'the timestamp',
      change: (h: Record<string, string>) => ({
        headers: { ...h, 'webhook-timestamp': String(Number(h['webhook-timestamp']) - 1) },
        payload: body,
      }),
    },
    {
      name: 'the id',
      change: (h: Record<string, string>) => ({
        headers: { ...h, 'webhook-id': 'evt_other' },
        payload: body,
      }),
    },
    {
      name: 'the secret',
      change: (h: Record<string, string>) => ({
        headers: h,
        payload: body,
        secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}`,
      }),
    },
  ];
  it.each(tampered)('fails verification when $name is changed', ({ change }) => {
    // Prepare
    const headers = signWebhook({ id: 'evt_t', timestamp: now(), body, secrets: [oldSecret, newSecret] });
    const altered: { headers: Record<string, string>; payload: string; secret?: string } = change(headers);

    // Act
    const verify = () => new Webhook(altered.secret ?? oldSecret).verify(altered.payload, altered.headers);

    // Assess
    expect(verify).toThrow('No matching signature found');
  });

  const malformed = [
    { name: 'no whsec_ prefix', secret: fixedBytes(32).toString('base64') },
    { name: 'an empty key', secret: 'whsec_' },
    { name: 'characters outside base64', secret: 'whsec_not*base64!' },
    { name: 'a key shorter than 24 bytes', secret: `whsec_${fixedBytes(16).toString('base64')}` },
    { name: 'a key longer than 64 bytes', secret: `whsec_${fixedBytes(65).toString('base64')}` },
  ];
  it.each(malformed)('refuses a secret with $name', ({ secret }) => {
    // Act
    const sign = () => signWebhook({ id: 'evt_x', timestamp: now(), body, secrets: [secret] });

    // Assess
    expect(sign).toThrow(MalformedWebhookSecretError);
    expect(sign).toThrow(/^the webhook secret is malformed: /);
  });

  it('refuses to sign with no secret at all', () => {
    // Act
    const sign = () => signWebhook({ id: 'evt_x', timestamp: now(), body, secrets: [] });

    // Assess
    expect(sign).toThrow('no active webhook secret to sign with');
  });

  it('refuses an invalid timestamp', () => {
    // Act
    const sign = () =>
      signWebhook({ id: 'evt_x', timestamp: new Date(Number.NaN), body, secrets: [oldSecret] });

    // Assess
    expect(sign).toThrow('the webhook timestamp is not a valid date');
  });
});
