import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { describe, expect, it } from 'vitest';
import {
  lanesDrained,
  messageReaches,
  messageView,
  receipt,
  type TestBaton,
  waitFor,
  withTestBaton,
} from '../support/local-baton.ts';

// The newcomer story of the README, over HTTP against local mode: the real handlers, emulators
// provisioned from the synthesized template, and the SES stand-in's mailbox simulator.

let baton: TestBaton;

withTestBaton((started) => {
  baton = started;
});

async function send(to: string, extra: Record<string, unknown> = {}) {
  const res = await baton.request('/v1/messages', { json: receipt(to, extra) });
  return {
    status: res.status,
    body: (await res.json()) as { id: string; status: string; recipients: unknown[] },
  };
}

const message = (id: string) => messageView(baton, id);
const settled = (id: string, status: string) => messageReaches(baton, id, status);

describe('local mode, end to end', () => {
  it('answers the health check without a key', async () => {
    const res = await baton.request('/health', { auth: null });

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('accepts a message, writes it to the outbox and shows it delivered with its timeline', async () => {
    const { status, body } = await send('success@simulator.amazonses.com', { html: '<p>Thanks!</p>' });

    expect(status).toBe(202);
    expect(body).toEqual({
      id: expect.stringMatching(/^msg_[0-9A-Z]{26}$/),
      status: 'queued',
      recipients: [{ address: 'success@simulator.amazonses.com', status: 'queued' }],
      rewrittenFrom: null,
    });
    const view = await settled(body.id, 'delivered');
    expect(view.recipients).toEqual([
      expect.objectContaining({
        address: 'success@simulator.amazonses.com',
        status: 'delivered',
        reason: null,
      }),
    ]);
    expect(view.events.map((e) => e.type)).toEqual(['accepted', 'sent', 'delivered']);
    expect(view.events[1]?.sesMessageId).toMatch(/^[0-9a-f]{16}-/);
    const eml = join(baton.outboxDir, `${body.id}.eml`);
    expect(existsSync(eml)).toBe(true);
    expect(readFileSync(eml, 'utf8')).toContain(`Message-ID: <${body.id}@example.com>`);
  });

  it('DKIM-signs the outbox message so that it verifies against the printed DNS record', async () => {
    const { body } = await send('success+dkim@simulator.amazonses.com');
    await settled(body.id, 'delivered');
    const raw = readFileSync(join(baton.outboxDir, `${body.id}.eml`));
    const record = baton.dkimRecords[0];

    const result = await dkimVerify(raw, {
      resolver: async (name: string, type: string) => {
        if (type === 'TXT' && name === record?.name) return [[record.value]];
        throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      },
    });

    expect(result.results).toHaveLength(1);
    expect(result.results[0]?.status.result).toBe('pass');
    expect(result.results[0]?.signingDomain).toBe('example.com');
  });

  it('bounces mail to bounce@, suppresses the address as hard_bounce and never sends to it again', async () => {
    const first = await send('bounce@simulator.amazonses.com');
    const bounced = await settled(first.body.id, 'bounced');
    expect(bounced.recipients[0]?.reason).toContain('550 5.1.1');

    const suppression = await waitFor('the suppression', async () => {
      const res = await baton.request('/v1/suppressions/bounce@simulator.amazonses.com');
      return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
    });
    expect(suppression).toMatchObject({
      address: 'bounce@simulator.amazonses.com',
      reason: 'hard_bounce',
      source: first.body.id,
      expiresAt: null,
    });

    const second = await send('bounce@simulator.amazonses.com');
    expect(second.status).toBe(202);
    expect(second.body).toMatchObject({
      status: 'suppressed',
      recipients: [
        { address: 'bounce@simulator.amazonses.com', status: 'suppressed', reason: 'hard_bounce' },
      ],
    });
    const view = await message(second.body.id);
    expect(view.status).toBe('suppressed');
    expect(view.recipients[0]?.reason).toContain('hard_bounce');
    // Anything queued for the suppressed message would have reached SES by the time the lanes are empty.
    await lanesDrained(baton);
    expect(existsSync(join(baton.outboxDir, `${second.body.id}.eml`))).toBe(false);
    expect(baton.ses.sent().some((s) => s.batonMessageId === second.body.id)).toBe(false);
  });

  it('records a complaint from complaint@ after its delivery, suppresses the address and refuses the next message', async () => {
    const first = await send('complaint@simulator.amazonses.com');
    const view = await settled(first.body.id, 'complained');
    // SES publishes the two in order, but the feedback queue is a standard queue: either may be
    // applied first, and the status comes out the same whichever it is.
    expect(feedbackTimeline(view)).toEqual(['accepted', 'sent', 'complained', 'delivered']);

    const res = await baton.request('/v1/suppressions/complaint@simulator.amazonses.com');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ reason: 'complaint', source: first.body.id });

    const second = await send('complaint@simulator.amazonses.com');
    expect(second.body).toMatchObject({
      status: 'suppressed',
      recipients: [
        { address: 'complaint@simulator.amazonses.com', status: 'suppressed', reason: 'complaint' },
      ],
    });
  });

  it('ends an out-of-office reply (transient bounce, then delivery) delivered, without suppressing', async () => {
    const { body } = await send('ooto@simulator.amazonses.com');

    const view = await settled(body.id, 'delivered');

    // Whichever of the two is applied first (a standard queue), the delivery wins over the bounce.
    expect(feedbackTimeline(view)).toEqual(['accepted', 'sent', 'bounced', 'delivered']);
    const res = await baton.request('/v1/suppressions/ooto@simulator.amazonses.com');
    expect(res.status).toBe(404);
  });

  it('treats suppressionlist@ as a hard bounce from the SES account suppression list', async () => {
    const { body } = await send('suppressionlist@simulator.amazonses.com');

    const view = await settled(body.id, 'bounced');

    expect(view.recipients[0]?.reason).toContain('OnAccountSuppressionList');
    const res = await baton.request('/v1/suppressions/suppressionlist@simulator.amazonses.com');
    expect(await res.json()).toMatchObject({ reason: 'hard_bounce' });
  });

  it('sends to the delivered recipients of a mixed message and reports it partially delivered', async () => {
    const { body } = await send('success@simulator.amazonses.com', {
      to: ['success@simulator.amazonses.com'],
      cc: ['bounce+mixed@simulator.amazonses.com'],
    });

    const view = await settled(body.id, 'partially_delivered');

    expect(view.recipients.map((r) => [r.address, r.status])).toEqual([
      ['success@simulator.amazonses.com', 'delivered'],
      ['bounce+mixed@simulator.amazonses.com', 'bounced'],
    ]);
  });

  it('keeps another tenant from reading a message and answers 404 for an unknown id', async () => {
    const res = await baton.request('/v1/messages/msg_01NOPE0000000000000000000');

    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({
      type: 'urn:baton:problem:not_found',
      status: 404,
      code: 'not_found',
    });
  });
});

describe('problem responses over HTTP', () => {
  const valid = { from: 'orders@example.com', to: ['ana@example.org'], subject: 'Hi', text: 'x' };

  it.each([
    ['no key', { auth: null, json: valid }, 401, 'unauthorized'],
    [
      'a wrong key',
      { auth: 'bt_e2etestkey01_wrongwrongwrongwrongwrongwrong', json: valid },
      401,
      'unauthorized',
    ],
    [
      'a non-JSON content type',
      { body: 'from=a', headers: { 'content-type': 'text/plain' }, method: 'POST' },
      415,
      'unsupported_media_type',
    ],
    [
      'malformed JSON',
      { body: '{"from":', headers: { 'content-type': 'application/json' }, method: 'POST' },
      400,
      'malformed_json',
    ],
    ['a From outside the key’s domains', { json: { ...valid, from: 'ceo@bank.example' } }, 403, 'forbidden'],
  ])('answers %s with %i', async (_what, init, status, code) => {
    const res = await baton.request(
      '/v1/messages',
      init as RequestInit & { json?: unknown; auth?: string | null },
    );

    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ type: `urn:baton:problem:${code}`, status, code });
  });

  it('answers an invalid message with 422 naming every failing path', async () => {
    const res = await baton.request('/v1/messages', {
      json: {
        from: 'orders@example.com',
        to: ['not-an-address', '"quoted"@example.org'],
        subject: 'a\r\nBcc: x@y.z',
      },
    });

    expect(res.status).toBe(422);
    const problem = (await res.json()) as { code: string; errors: Array<{ path: string }> };
    expect(problem.code).toBe('invalid_message');
    expect(problem.errors.map((e) => e.path)).toEqual(
      expect.arrayContaining(['to[0]', 'to[1]', 'subject', 'text']),
    );
  });

  it('answers an unknown route with a 404 problem', async () => {
    const res = await baton.request('/v2/nothing-here');

    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'not_found' });
  });

  it('never wrote an outbox file for a message it did not deliver', () => {
    const files = readdirSync(baton.outboxDir);
    const delivered = baton.ses.sent().filter((s) => s.outboxFile !== undefined).length;
    expect(files.filter((f) => f.endsWith('.eml'))).toHaveLength(delivered);
    expect(files.some((f) => f.includes('.dup-'))).toBe(false);
  });
});

/**
 * The timeline's event types with the feedback part (after `sent`) sorted: the feedback queue does
 * not keep order, so that part is a set, while everything up to `sent` is Baton's own sequence.
 */
function feedbackTimeline(view: { readonly events: ReadonlyArray<{ readonly type: string }> }): string[] {
  const types = view.events.map((e) => e.type);
  const sent = types.indexOf('sent');
  return [...types.slice(0, sent + 1), ...types.slice(sent + 1).sort()];
}
