/**
 * Signing of webhook deliveries by the Standard Webhooks specification
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md), so a
 * receiver can verify with any of its libraries or by hand. Pure: the caller passes the exact bytes it
 * will send, because a signature over a re-serialised body would not match what the receiver reads.
 */
import { createHmac, randomBytes } from 'node:crypto';

const prefix = 'whsec_';
// The specification asks for keys of 24 to 64 bytes; ours are 32, older or imported ones may differ.
const minKeyBytes = 24;
const maxKeyBytes = 64;
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A stored secret that cannot be a Standard Webhooks secret: signing with it would fool no verifier. */
export class MalformedWebhookSecretError extends Error {
  override readonly name: string = 'MalformedWebhookSecretError';
}

/**
 * The headers a delivery carries, named as the specification spells them. A type, not an interface, so
 * it can be passed where a `Record<string, string>` of headers is expected (fetch, the verifier).
 */
export type WebhookHeaders = {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
};

export interface SignWebhookInput {
  /** The event id: the same on every retry and replay, so receivers can deduplicate. */
  readonly id: string;
  /** When this attempt is sent; receivers refuse timestamps far from their clock (replay protection). */
  readonly timestamp: Date;
  /** The exact body sent; signed as its UTF-8 bytes. */
  readonly body: string;
  /** The endpoint's active secrets: one, or the old and the new during a rotation's 24 h overlap. */
  readonly secrets: readonly string[];
}

/** A new endpoint secret: `whsec_` and the base64 of 32 random bytes. */
export function newWebhookSecret(random: (size: number) => Buffer = randomBytes): string {
  return `${prefix}${random(32).toString('base64')}`;
}

/** The three headers of a signed delivery; one `v1,` signature per active secret, space-separated. */
export function signWebhook(input: SignWebhookInput): WebhookHeaders {
  const { id, timestamp, body, secrets } = input;
  if (Number.isNaN(timestamp.getTime())) throw new RangeError('the webhook timestamp is not a valid date');
  if (secrets.length === 0) throw new MalformedWebhookSecretError('no active webhook secret to sign with');
  const seconds = String(Math.floor(timestamp.getTime() / 1000));
  const content = `${id}.${seconds}.${body}`;
  const signatures = secrets.map(
    (secret) => `v1,${createHmac('sha256', keyOf(secret)).update(content, 'utf8').digest('base64')}`,
  );
  return { 'webhook-id': id, 'webhook-timestamp': seconds, 'webhook-signature': signatures.join(' ') };
}

// Node's base64 decoder skips characters it does not know, so a corrupted secret would silently sign
// with another key; check the spelling first.
function keyOf(secret: string): Buffer {
  if (!secret.startsWith(prefix))
    throw new MalformedWebhookSecretError(`the webhook secret is malformed: no ${prefix} prefix`);
  const encoded = secret.slice(prefix.length);
  if (encoded === '')
    throw new MalformedWebhookSecretError('the webhook secret is malformed: the key is empty');
  if (!base64.test(encoded))
    throw new MalformedWebhookSecretError('the webhook secret is malformed: the key is not base64');
  const key = Buffer.from(encoded, 'base64');
  if (key.length < minKeyBytes || key.length > maxKeyBytes) {
    throw new MalformedWebhookSecretError(
      `the webhook secret is malformed: the key has ${key.length} bytes, not ${minKeyBytes} to ${maxKeyBytes}`,
    );
  }
  return key;
}
