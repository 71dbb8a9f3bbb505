/**
 * Local mode's webhook latency (issue 14): from the state change (the payload's `timestamp`, when
 * Baton wrote the timeline entry) to the first attempt reaching a real receiver on 127.0.0.1, for
 * every event of `messages` messages to the mailbox simulator's success address.
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
  /** Every arrival verified with `standardwebhooks`. */
  readonly verified: boolean;
}

export async function measureWebhookLatency(messages: number, concurrency = 4): Promise<WebhookLatency> {
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

    const seen = receiver.received.length;
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < messages; i = next++) {
        const res = await fetch(`${baton.url}/v1/messages`, {
          method: 'POST',
          headers,
          body: JSON.stringify(benchMessage(`wh${i}`)),
        });
        if (res.status !== 202) throw new Error(`POST /v1/messages answered ${res.status}`);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
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
    const expected = messages * 3;
    await receiver.waitFor(() => firstArrivals().size >= expected, 120_000);
    const arrivals = firstArrivals();
    const latencies = [...arrivals.values()].map((a) => ({
      type: a.type,
      ms: a.at - Date.parse(a.timestamp),
    }));
    const all = latencies.map((l) => l.ms);
    const byType: Record<string, number> = {};
    for (const type of new Set(latencies.map((l) => l.type))) {
      byType[type] = percentile(
        latencies.filter((l) => l.type === type).map((l) => l.ms),
        99,
      );
    }
    return {
      events: arrivals.size,
      messages,
      p50: percentile(all, 50),
      p95: percentile(all, 95),
      p99: percentile(all, 99),
      max: Math.max(...all),
      p99ByType: byType,
      verified: receiver.received.slice(seen).every((r) => r.verified),
    };
  } finally {
    await bench.close();
    await receiver.close();
  }
}
