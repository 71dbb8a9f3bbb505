import {
  benchMessage,
  outboxTimes,
  percentile,
  postAll,
  sampleTreeRss,
  startBenchBaton,
} from '../local-pipeline.ts';
import type { Row, Section } from './types.ts';

/** Messages per run (`BENCH_PIPELINE_MESSAGES`, default 5,000) and requests in flight (default 32). */
export const pipelineMessages = (): number => Number(process.env.BENCH_PIPELINE_MESSAGES ?? 5_000);
export const pipelineConcurrency = (): number => Number(process.env.BENCH_CONCURRENCY ?? 32);

export interface PipelineRun {
  readonly messages: number;
  /** First POST to the last accept / to the last outbox write, ms. */
  readonly acceptMs: number;
  readonly deliverMs: number;
  readonly requestMs: readonly number[];
  readonly acceptToOutboxMs: readonly number[];
}

/** Posts `messages` 10 KB messages, singly or in batches of 100, and waits for all to reach SES. */
export async function pipelineRun(
  baton: Parameters<typeof postAll>[0],
  messages: number,
  mode: 'single' | 'batch',
  concurrency: number,
  label: string,
): Promise<PipelineRun> {
  const bodies = Array.from({ length: messages }, (_, i) => benchMessage(`${label}${i}`));
  const units =
    mode === 'single'
      ? bodies.map((body) => ({ route: '/v1/messages', body }))
      : Array.from({ length: Math.ceil(messages / 100) }, (_, i) => ({
          route: '/v1/messages/batch',
          body: { messages: bodies.slice(i * 100, i * 100 + 100) },
        }));
  const posted = await postAll(baton, units, concurrency);
  const sent = await outboxTimes(baton, new Set(posted.acceptedAt.keys()), 20 * 60_000);
  const lastSent = Math.max(...sent.values());
  return {
    messages,
    acceptMs: posted.lastAcceptAt - posted.firstPostAt,
    deliverMs: lastSent - posted.firstPostAt,
    requestMs: posted.requestMs,
    acceptToOutboxMs: [...posted.acceptedAt].map(([id, at]) => (sent.get(id) ?? at) - at),
  };
}

function rows(run: PipelineRun, mode: string): Row[] {
  const s = 'pipeline';
  const p = (values: readonly number[], q: number) => Math.round(percentile(values, q) * 10) / 10;
  return [
    { section: s, figure: `${mode}: accepted/s`, value: (run.messages / run.acceptMs) * 1000, unit: 'msg/s' },
    {
      section: s,
      figure: `${mode}: delivered/s (outbox)`,
      value: (run.messages / run.deliverMs) * 1000,
      unit: 'msg/s',
    },
    {
      section: s,
      figure: `${mode}: request latency p50/p95/p99`,
      value: `${p(run.requestMs, 50)} / ${p(run.requestMs, 95)} / ${p(run.requestMs, 99)}`,
      unit: 'ms',
    },
    {
      section: s,
      figure: `${mode}: accept → outbox p50/p95/p99`,
      value: `${p(run.acceptToOutboxMs, 50)} / ${p(run.acceptToOutboxMs, 95)} / ${p(run.acceptToOutboxMs, 99)}`,
      unit: 'ms',
    },
  ];
}

export const section: Section = {
  name: 'pipeline',
  title: 'Local pipeline throughput and latency (HTTP → api → queue → sender → SES stand-in)',
  async run(ctx) {
    const messages = pipelineMessages();
    const concurrency = pipelineConcurrency();
    const rss = sampleTreeRss();
    const { baton, close } = await startBenchBaton();
    try {
      ctx.progress(`pipeline: ${messages} single messages, ${concurrency} in flight`);
      const single = await pipelineRun(baton, messages, 'single', concurrency, 's');
      ctx.progress(`pipeline: ${messages} messages in batches of 100`);
      const batch = await pipelineRun(baton, messages, 'batch', concurrency, 'b');
      const peakMb = rss.stop();
      // The floor section compares its own time with these.
      ctx.shared.extra = {
        ...ctx.shared.extra,
        pipeline: {
          messages,
          concurrency,
          single: { acceptMs: single.acceptMs, deliverMs: single.deliverMs },
          batch: { acceptMs: batch.acceptMs, deliverMs: batch.deliverMs },
        },
      };
      return [
        ...rows(single, 'single'),
        ...rows(batch, 'batch'),
        {
          section: 'pipeline',
          figure: 'local mode peak RSS (all processes)',
          value: Math.round(peakMb),
          unit: 'MB',
          note: `${baton.pools.size} functions, their processes included`,
        },
      ];
    } finally {
      rss.stop();
      await close();
    }
  },
};
