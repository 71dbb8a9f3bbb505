import { MessageTag } from '../../lambdas/shared/names.ts';
import { benchMessage, outboxTimes, percentile, postAll, startBenchBaton } from '../local-pipeline.ts';
import type { Section } from './types.ts';

/** Broadcast messages draining meanwhile (`BENCH_ISOLATION_BROADCAST`, default 20,000). */
const broadcastCount = () => Number(process.env.BENCH_ISOLATION_BROADCAST ?? 20_000);
const TRANSACTIONAL = 200;
/** Transactional requests in flight: a steady trickle, as an application's receipts are. */
const TRICKLE = 4;

const broadcastSends = (baton: Parameters<typeof postAll>[0]) =>
  baton.ses.sent().filter((s) => s.tags.some((t) => t.name === MessageTag.stream && t.value === 'broadcast'))
    .length;

/** p99 accept → outbox of 200 transactional messages posted at a steady trickle. */
async function transactionalP99(baton: Parameters<typeof postAll>[0], label: string): Promise<number> {
  const units = Array.from({ length: TRANSACTIONAL }, (_, i) => ({
    route: '/v1/messages',
    body: benchMessage(`${label}${i}`, 'transactional'),
  }));
  const posted = await postAll(baton, units, TRICKLE);
  const sent = await outboxTimes(baton, new Set(posted.acceptedAt.keys()), 10 * 60_000);
  return percentile(
    [...posted.acceptedAt].map(([id, at]) => (sent.get(id) ?? at) - at),
    99,
  );
}

/**
 * Lane isolation: the transactional lane's latency while a large broadcast drains, against the same
 * figure on an idle relay. The lanes share the api, the machine and the emulators; they have their
 * own queues, senders and concurrency.
 */
export const section: Section = {
  name: 'isolation',
  title: 'Lane isolation: transactional latency while a broadcast drains',
  async run(ctx) {
    const { baton, close } = await startBenchBaton();
    try {
      // Warm both lanes and every sender process (cold starts are not what this measures).
      const warm = Array.from({ length: 60 }, (_, i) => ({
        route: '/v1/messages',
        body: benchMessage(`warm${i}`, i % 3 === 0 ? 'broadcast' : 'transactional'),
      }));
      const warmed = await postAll(baton, warm, 16);
      await outboxTimes(baton, new Set(warmed.acceptedAt.keys()), 120_000);
      ctx.progress('isolation: idle relay, 200 transactional messages');
      const idle = await transactionalP99(baton, 'idle');

      const n = broadcastCount();
      ctx.progress(`isolation: ${n} broadcast messages, then 200 transactional while they drain`);
      const bodies = Array.from({ length: n }, (_, i) => benchMessage(`bc${i}`, 'broadcast'));
      const units = Array.from({ length: Math.ceil(n / 100) }, (_, i) => ({
        route: '/v1/messages/batch',
        body: { messages: bodies.slice(i * 100, i * 100 + 100) },
      }));
      const flood = postAll(baton, units, 8);
      // Start once the broadcast lane has a backlog, while the flood is still being posted.
      while (broadcastSends(baton) < 50) await new Promise((r) => setTimeout(r, 100));
      const busy = await transactionalP99(baton, 'busy');
      const broadcastSent = broadcastSends(baton);
      const posted = await flood;
      const ratio = busy / idle;
      return [
        { section: 'isolation', figure: 'transactional p99 accept → outbox, idle', value: idle, unit: 'ms' },
        {
          section: 'isolation',
          figure: 'transactional p99 accept → outbox, broadcast draining',
          value: busy,
          unit: 'ms',
          floor: Math.round(idle),
          ratio,
          target: '≤ 2× idle',
          pass: ratio <= 2,
          note: `${posted.acceptedAt.size} broadcast accepted, ${broadcastSent} sent by then`,
        },
      ];
    } finally {
      await close();
    }
  },
};
