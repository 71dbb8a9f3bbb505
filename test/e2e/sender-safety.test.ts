import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seedApiKey } from '../support/e2e-keys.ts';
import {
  messageReaches,
  receipt,
  sesSendsOf,
  type TestBaton,
  waitFor,
  withTestBaton,
} from '../support/local-baton.ts';
import { decodeWords, headerValue } from '../support/mime.ts';

// Issue 11 parts 9, 10 and 11 over HTTP against local mode: what a client writes in a display
// name, a List-Unsubscribe URL or an HTML link reaches the delivered message (the outbox .eml)
// only in a form that shows no other sender, no second URI and no other scheme.

let baton: TestBaton;

withTestBaton((started) => {
  baton = started;
});

async function post(json: unknown, auth?: string) {
  const res = await baton.request('/v1/messages', { json, ...(auth !== undefined ? { auth } : {}) });
  return { res, body: (await res.json()) as Record<string, unknown> };
}

/** The delivered message (outbox .eml), waited for; its body's quoted-printable soft breaks and `=3D` undone. */
async function deliveredMessage(id: string, viaStatus = true): Promise<string> {
  const file = join(baton.outboxDir, `${id}.eml`);
  if (viaStatus) await messageReaches(baton, id, 'delivered');
  // The stand-in records a send once its outbox copy is written (the file exists, empty, before).
  else await waitFor(`SES to take ${id}`, async () => (sesSendsOf(baton, id).length > 0 ? true : undefined));
  const raw = readFileSync(file).toString('latin1');
  const end = raw.indexOf('\r\n\r\n');
  return raw.slice(0, end) + raw.slice(end).replace(/=\r\n/g, '').replace(/=3D/g, '=');
}

describe('sender identity over HTTP', () => {
  it('answers 422 with the from path to a display name that shows an address of another domain', async () => {
    // Prepare
    const body = receipt('success+spoof@simulator.amazonses.com', {
      from: '"support@paypal.com <support@paypal.com>" <noreply@example.com>',
    });

    // Act
    const { res, body: problem } = await post(body);

    // Assess
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(problem).toMatchObject({
      code: 'invalid_message',
      status: 422,
      errors: [
        {
          path: 'from',
          message:
            'display name must not show an address outside this key’s domains (paypal.com); allowed: example.com',
        },
      ],
    });
  });

  it('rewrites a foreign From to the key’s address with the name alone, the original in Reply-To and X-Original-From', async () => {
    // Prepare
    const token = await seedApiKey(baton, {
      senderPolicy: 'rewrite',
      defaultFrom: 'relay@example.com',
      allowedDomains: ['example.com'],
    });
    const body = receipt('success+rewrite@simulator.amazonses.com', {
      from: '"Ana (ana@legacy.example)" <ana@legacy.example>',
    });

    // Act
    const { res, body: answer } = await post(body, token);

    // Assess
    expect(res.status).toBe(202);
    expect(answer.rewrittenFrom).toBe('Ana via Baton <relay@example.com>');
    // Another tenant's message: the development key cannot read its status, the outbox shows it.
    const raw = await deliveredMessage(String(answer.id), false);
    expect(headerValue(raw, 'From')).toBe('Ana via Baton <relay@example.com>');
    expect(headerValue(raw, 'Reply-To')).toBe('"Ana (ana@legacy.example)" <ana@legacy.example>');
    expect(decodeWords(headerValue(raw, 'X-Original-From'))).toBe(
      '"Ana (ana@legacy.example)" <ana@legacy.example>',
    );
  });
});

describe('client values in the delivered message', () => {
  it('writes a List-Unsubscribe with a smuggled second URI as one encoded URI', async () => {
    // Prepare
    const body = receipt('success+unsub@simulator.amazonses.com', {
      stream: 'broadcast',
      listUnsubscribe: 'https://x.example/u>, <mailto:harvest@evil.example',
    });

    // Act
    const { res, body: answer } = await post(body);

    // Assess
    expect(res.status).toBe(202);
    const raw = await deliveredMessage(String(answer.id));
    expect(headerValue(raw, 'List-Unsubscribe')).toBe(
      '<https://x.example/u%3E%2C%20%3Cmailto:harvest@evil.example>',
    );
  });

  it('delivers an HTML link whose scheme hides behind a nested entity without the link', async () => {
    // Prepare
    const body = receipt('success+follina@simulator.amazonses.com', {
      html: '<p><a href="ms-msdt&#38;#58;/id PCWDiagnostic /skip force">Open</a> <a href="https://shop.example.com/?a=1&amp;b=2">Shop</a></p>',
    });

    // Act
    const { res, body: answer } = await post(body);

    // Assess
    expect(res.status).toBe(202);
    const raw = await deliveredMessage(String(answer.id));
    expect(raw).toContain('<a>Open</a>');
    expect(raw).toContain('<a href="https://shop.example.com/?a=1&amp;b=2">Shop</a>');
    expect(raw).not.toMatch(/ms-msdt/i);
  });
});
