/**
 * A minimal receiver of Baton's webhooks (docs/webhooks.md): it verifies each delivery with the
 * `standardwebhooks` package, drops a repeated `webhook-id`, and prints the event.
 *
 *   WEBHOOK_SECRET=whsec_... node examples/webhook-receiver.mjs     # listens on 127.0.0.1:4000
 *
 * PORT changes the port. Register `http://127.0.0.1:4000/webhooks` with local mode (only local mode
 * accepts a loopback http:// URL; deployed, the URL must be https:// on a public address).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';

/**
 * The verified payload of one delivery. `rawBody` must be the exact bytes received (as a string):
 * a body parsed and serialised again is not what Baton signed. Throws when the signature does not
 * match or the timestamp is more than five minutes from this machine's clock.
 */
export function verifyDelivery(secret, rawBody, headers) {
  return new Webhook(secret).verify(rawBody, {
    'webhook-id': String(headers['webhook-id'] ?? ''),
    'webhook-timestamp': String(headers['webhook-timestamp'] ?? ''),
    'webhook-signature': String(headers['webhook-signature'] ?? ''),
  });
}

/**
 * The same check without the package (docs/webhooks.md, "Signatures", by hand): HMAC-SHA256 over
 * `id.timestamp.body`, keyed with the base64 after `whsec_`, against each `v1,` signature.
 */
export function verifyByHand(secret, rawBody, headers) {
  const id = String(headers['webhook-id'] ?? '');
  const timestamp = String(headers['webhook-timestamp'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 5 * 60) {
    throw new Error('webhook-timestamp is missing or more than 5 minutes from now');
  }
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${rawBody}`).digest();
  const signatures = String(headers['webhook-signature'] ?? '').split(' ');
  const valid = signatures.some((signature) => {
    const [version, value = ''] = signature.split(',');
    const given = Buffer.from(value, 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!valid) throw new Error('no valid v1 signature');
  return JSON.parse(rawBody);
}

/**
 * What to answer one delivery: 400 when it does not verify (Baton retries, and the deliveries log
 * shows the answer), 200 otherwise. `seen` holds the ids already handled: a retry or replay carries
 * the same `webhook-id`, and is acknowledged without being handled twice. A real receiver keeps
 * them in its database (for a few days: Baton retries for about three).
 */
export function handleDelivery({ secret, seen, rawBody, headers }) {
  let event;
  try {
    event = verifyDelivery(secret, rawBody, headers);
  } catch (error) {
    return { status: 400, error: error instanceof Error ? error.message : String(error) };
  }
  const id = String(headers['webhook-id']);
  if (seen.has(id)) return { status: 200, id, duplicate: true };
  seen.add(id);
  return { status: 200, id, duplicate: false, event };
}

/** A one-line summary of an event: its type, message, recipient and timeline sequence. */
export function describeEvent(id, event) {
  const { messageId, recipient, sequence, address, endpointId } = event.data;
  const what = [messageId, recipient ?? address ?? endpointId, sequence === undefined ? '' : `#${sequence}`];
  return `${event.timestamp} ${event.type} ${what.filter(Boolean).join(' ')} (${id})`;
}

function main() {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret?.startsWith('whsec_')) {
    process.stderr.write('Set WEBHOOK_SECRET to the secret POST /v1/webhooks answered (whsec_...).\n');
    process.exit(2);
  }
  const port = Number(process.env.PORT ?? 4000);
  const seen = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const result = handleDelivery({ secret, seen, rawBody, headers: req.headers });
      if (result.status !== 200) process.stdout.write(`refused: ${result.error}\n`);
      else if (result.duplicate) process.stdout.write(`duplicate ${result.id}, already handled\n`);
      else process.stdout.write(`${describeEvent(result.id, result.event)}\n`);
      res.writeHead(result.status).end();
    });
  });
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening on http://127.0.0.1:${server.address().port}/webhooks\n`);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
