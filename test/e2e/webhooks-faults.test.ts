import { afterAll, describe, expect, it } from 'vitest';
import type { MessageRecord } from '../../lambdas/domain/message.ts';
import type { MessageView } from '../../lambdas/domain/reporting/status.ts';
import { webhookEventsOf } from '../../lambdas/domain/webhooks/events.ts';
import { seedApiKey } from '../support/e2e-keys.ts';
import { receipt, type TestBaton, waitFor, withTestBaton } from '../support/local-baton.ts';
import { type ReceiverAnswer, WebhookReceiver } from '../support/webhooks.ts';

// Issue 14's fault variant through local mode: a receiver that fails about 30 % of the calls it gets
// (500, 502, 503 and 429 with Retry-After, and a request left hanging past the 15 s timeout) while
// 20 messages produce their events. Every event the messages' timelines imply must arrive, verified
// and acknowledged, within a bounded time: none is lost, however its first delivery went.
//
// The failures are pseudo-random from a fixed seed, drawn per call in arrival order. Only an event's
// first call may fail, and never more than two calls in a row: a second failure of the same event
// waits five minutes (the schedule's third step), and five in a row open the endpoint's breaker for
// a minute; both are proven elsewhere (unit and integration tests), here they would only make the
// test minutes long without testing loss any better.

let baton: TestBaton;
withTestBaton((started) => {
  baton = started;
});

let receiver: WebhookReceiver | undefined;
afterAll(async () => {
  await receiver?.close();
});

const SIMULATOR = 'simulator.amazonses.com';
const MESSAGES = 20;
/** How long every event has to arrive, from the last send: retries come ~5 s after a failure, a hang costs 15 s. */
const BOUND_MS = 90_000;

/** mulberry32: a small seeded generator, so a run's failures can be told again from its seed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An answer function that fails about 30 % of calls, as described above, and counts what it did. */
function faultyAnswers(seed: number) {
  const random = seeded(seed);
  const seen = new Set<string>();
  const stats = { calls: 0, failures: 0, hangs: 0 };
  let inARow = 0;
  const answer = ({ headers }: { readonly headers: Record<string, unknown> }): ReceiverAnswer => {
    stats.calls++;
    const id = String(headers['webhook-id']);
    const first = !seen.has(id);
    seen.add(id);
    // Three in four first calls would be too many; one in two, capped at two in a row, is ~30 % of calls.
    if (!first || inARow >= 2 || random() >= 0.5) {
      inARow = 0;
      return { status: 200 };
    }
    inARow++;
    stats.failures++;
    const kind = random();
    if (kind < 0.05 && stats.hangs < 2) {
      stats.hangs++;
      return 'hang';
    }
    if (kind < 0.45) return { status: 500, body: 'internal error' };
    if (kind < 0.6) return { status: 502 };
    if (kind < 0.8) return { status: 503, headers: { 'retry-after': '1' } };
    return { status: 429, headers: { 'retry-after': '2' } };
  };
  return { answer, stats };
}

describe('webhooks under receiver faults', () => {
  it('delivers every event of 20 messages, verified, while the receiver fails about 30 % of calls', async () => {
    // Prepare: a tenant of its own, its endpoint on the faulty receiver.
    const token = await seedApiKey(baton, {
      tenant: 'wh-faults',
      scopes: ['send', 'read', 'suppressions', 'webhooks'],
    });
    receiver = await WebhookReceiver.start();
    const faults = faultyAnswers(14);
    receiver.answer = faults.answer;
    const created = await baton.request('/v1/webhooks', { json: { url: receiver.url() }, auth: token });
    const endpoint = (await created.json()) as { id: string; secret: string };
    expect(created.status, JSON.stringify(endpoint)).toBe(201);
    receiver.secrets = [endpoint.secret];
    // The producers' endpoint cache lasts a second in local mode.
    await new Promise((r) => setTimeout(r, 1_200));

    // Act: 20 messages, every fifth to a bouncing address.
    const sent: { id: string; to: string; tags: Record<string, string> }[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const to = i % 5 === 4 ? `bounce+whf${i}@${SIMULATOR}` : `success+whf${i}@${SIMULATOR}`;
      const tags = { n: String(i) };
      const res = await baton.request('/v1/messages', { json: receipt(to, { tags }), auth: token });
      const body = (await res.json()) as { id: string };
      expect(res.status, JSON.stringify(body)).toBe(202);
      sent.push({ id: body.id, to, tags });
    }
    const lastSend = Date.now();

    // The events each message's timeline implies, once it is settled (delivered or bounced).
    const expected = new Map<string, { messageId: string; type: string }>();
    for (const message of sent) {
      const view = await waitFor(`message ${message.id} to settle`, async () => {
        const res = await baton.request(`/v1/messages/${message.id}`, { auth: token });
        const v = (await res.json()) as MessageView;
        return v.status === 'delivered' || v.status === 'bounced' ? v : undefined;
      });
      const record = { ...view, tenant: 'wh-faults' } as unknown as MessageRecord;
      for (const event of webhookEventsOf(record, 0, message.tags)) {
        expected.set(event.id, { messageId: message.id, type: event.payload.type });
      }
    }

    // Assess: every expected event arrived verified and was acknowledged, within the bound.
    const acknowledged = () =>
      new Set(
        (receiver?.received ?? [])
          .filter((r) => r.verified && r.status >= 200 && r.status < 300)
          .map((r) => String(r.headers['webhook-id'])),
      );
    const missing = () => [...expected.keys()].filter((id) => !acknowledged().has(id));
    await receiver
      .waitFor(() => missing().length === 0, Math.max(1_000, BOUND_MS - (Date.now() - lastSend)))
      .catch((error: unknown) => {
        throw new Error(
          `${missing().length} of ${expected.size} events never arrived: ${missing()
            .map((id) => `${expected.get(id)?.type} of ${expected.get(id)?.messageId} (${id})`)
            .join(', ')}`,
          { cause: error },
        );
      });
    expect(expected.size).toBeGreaterThanOrEqual(MESSAGES * 3);
    expect(receiver.received.filter((r) => !r.verified)).toEqual([]);
    // The faults were real: about 30 % of the calls failed.
    expect(faults.stats.failures / faults.stats.calls).toBeGreaterThan(0.2);
    expect(faults.stats.failures / faults.stats.calls).toBeLessThan(0.45);
    // Every delivery of an event carried the same body, and no message event came that the
    // timelines do not imply (a wrong id would let a receiver drop a real event as a duplicate).
    const bodies = new Map<string, Set<string>>();
    for (const r of receiver.received) {
      const id = String(r.headers['webhook-id']);
      bodies.set(id, (bodies.get(id) ?? new Set()).add(r.body));
      if (r.payload?.type.startsWith('message.'))
        expect(expected.has(id), `unexpected event ${id}`).toBe(true);
    }
    expect([...bodies.values()].filter((b) => b.size > 1)).toEqual([]);
  }, 180_000);
});
