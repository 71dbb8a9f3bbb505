/**
 * Local mode's webhook latency (issue 14): from the state change (the payload's `timestamp`, when
 * Baton wrote the timeline entry) to the first attempt reaching a real receiver on 127.0.0.1, for
 * every event (queued, sent, delivered) of messages to the mailbox simulator's success address.
 *
 * Two phases on one local deployment: `steady`, messages sent one at a time at a rate the endpoint
 * keeps up with (the latency a tenant sees); `burst`, messages sent as fast as four clients can, so
 * the events queue up behind the endpoint's concurrency cap (its throughput, and the wait a backlog
 * adds).
 */
import { WebhookReceiver } from '../test/support/webhooks.ts';
import { benchMessage, percentile, startBenchBaton } from './local-pipeline.ts';

export interface WebhookLatency {
  readonly events: number;
  readonly messages: number;
  /** ms, state change → first arrival, over every event. */
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  /** p99 per event type. */
  readonly p99ByType: Readonly<Record<string, number>>;
  /** Events delivered per second, first send to last first arrival. */
  readonly eventsPerSecond: number;
  /** Every arrival verified with `standardwebhooks`. */
  readonly verified: boolean;
}

export interface WebhookPhase {
  readonly messages: number;
  /** Messages per second, sent one at a time; absent, as fast as `concurrency` clients can. */
  readonly perSecond?: number;
  readonly concurrency?: number;
}

export async function measureWebhookLatency(
  phases: Readonly<Record<string, WebhookPhase>>,
): Promise<Record<string, WebhookLatency>> {
  const receiver = await WebhookReceiver.start();
  const bench = await startBenchBaton();
  try {
    const { baton } = bench;
    const headers = { authorization: `Bearer ${baton.apiKey}`, 'content-type': 'application/json' };
    const created = await fetch(`${baton.url}/v1/webhooks`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ url: receiver.url(), description: 'bench' }),
    });
    const endpoint = (await created.json()) as { secret?: string };
    if (created.status !== 201 || typeof endpoint.secret !== 'string') {
      throw new Error(`registering the bench receiver answered ${created.status}`);
    }
    receiver.secrets = [endpoint.secret];
    // The producers cache a tenant's endpoints for BATON_WEBHOOK_DIRECTORY_SECONDS (1 s locally).
    await new Promise((r) => setTimeout(r, 1_500));

    const post = async (label: string) => {
      const res = await fetch(`${baton.url}/v1/messages`, {
        method: 'POST',
        headers,
        body: JSON.stringify(benchMessage(label)),
      });
      if (res.status !== 202) throw new Error(`POST /v1/messages answered ${res.status}`);
      await res.arrayBuffer();
    };
    const results: Record<string, WebhookLatency> = {};
    for (const [name, phase] of Object.entries(phases)) {
      const seen = receiver.received.length;
      const started = Date.now();
      if (phase.perSecond !== undefined) {
        for (let i = 0; i < phase.messages; i++) {
          const due = started + (i * 1000) / phase.perSecond;
          await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
          await post(`wh-${name}-${i}`);
        }
      } else {
        let next = 0;
        const worker = async () => {
          for (let i = next++; i < phase.messages; i = next++) await post(`wh-${name}-${i}`);
        };
        await Promise.all(Array.from({ length: phase.concurrency ?? 4 }, worker));
      }
      const firstArrivals = () => {
        const first = new Map<string, { at: number; type: string; timestamp: string }>();
        for (const r of receiver.received.slice(seen)) {
          const id = String(r.headers['webhook-id']);
          if (!first.has(id) && r.payload)
            first.set(id, { at: r.at, type: r.payload.type, timestamp: r.payload.timestamp });
        }
        return first;
      };
      // queued, sent and delivered per message.
      await receiver.waitFor(() => firstArrivals().size >= phase.messages * 3, 180_000);
      const arrivals = [...firstArrivals().values()];
      const latencies = arrivals.map((a) => ({ type: a.type, ms: a.at - Date.parse(a.timestamp) }));
      const all = latencies.map((l) => l.ms);
      const byType: Record<string, number> = {};
      for (const type of new Set(latencies.map((l) => l.type))) {
        byType[type] = percentile(
          latencies.filter((l) => l.type === type).map((l) => l.ms),
          99,
        );
      }
      const last = Math.max(...arrivals.map((a) => a.at));
      results[name] = {
        events: arrivals.length,
        messages: phase.messages,
        p50: percentile(all, 50),
        p95: percentile(all, 95),
        p99: percentile(all, 99),
        max: Math.max(...all),
        p99ByType: byType,
        eventsPerSecond: arrivals.length / ((last - started) / 1000),
        verified: receiver.received.slice(seen).every((r) => r.verified),
      };
    }
    return results;
  } finally {
    await bench.close();
    await receiver.close();
  }
}
