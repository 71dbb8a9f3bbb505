import { SQSClient } from '@aws-sdk/client-sqs';
import { EnvVar, Keys } from '../../lambdas/shared/names.ts';
import type { LocalBaton } from '../../local/baton-local.ts';
import { functionSetting, sourceQueuesDepth } from '../../local/inspect.ts';
import { benchMessage, outboxTimes, postAll, startBenchBaton } from '../local-pipeline.ts';
import { type IndexedAttribute, startWireProxy, type WireProxy, wireDelta, wireSum } from '../probe/wire.ts';
import type { MeasuredRequests, Row, Section, WireUsage } from './types.ts';

/** Messages per mode (`BENCH_REQUEST_MESSAGES`, default 500 singly and 1,000 in batches of 100). */
const singles = () => Number(process.env.BENCH_REQUEST_MESSAGES ?? 500);
const batched = () => 2 * singles();

type Mode = 'single' | 'batch';

/**
 * Every AWS call of the local pipeline, counted on the wire between the function processes (and
 * the event-source pollers) and the emulators: per message, by service and operation, in billed
 * units (DynamoDB read/write units as the emulator reports them plus index writes; SQS per
 * started 64 KB). The SES stand-in's event publishes to SNS are counted where it publishes them.
 */
export const section: Section = {
  name: 'requests',
  title: 'AWS requests per single-recipient message, measured end to end in local mode',
  async run(ctx) {
    const indexed: IndexedAttribute[] = [];
    const proxies: WireProxy[] = [];
    const { baton, close } = await startBenchBaton({
      wrapEndpoint: async (service, endpoint) => {
        const proxy = await startWireProxy(
          endpoint,
          service === 'dynamodb' ? 'DynamoDB' : service === 'sesv2' ? 'SESv2' : 'fauxqs',
          indexed,
        );
        proxies.push(proxy);
        return proxy.endpoint;
      },
    });
    // Local tables are named after their logical ids; the bySesMessageId index is KEYS_ONLY.
    const messagesTable = functionSetting(baton, EnvVar.messagesTable);
    indexed.push({
      table: messagesTable,
      attribute: Keys.messages.sesMessageId,
      key: Keys.messages.partition,
    });
    const sqs = new SQSClient({
      region: 'us-east-1',
      endpoint: baton.endpoints.sqs,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      useQueueUrlAsEndpoint: false,
    });
    const usage = () => wireSum(proxies.map((p) => p.usage()));
    try {
      ctx.progress('requests: warming up (cold starts, key cache)');
      await measure(baton, sqs, usage, 'single', 20, 'warm');
      const modes = {} as Record<Mode, { usage: WireUsage; events: number; messages: number }>;
      for (const [mode, n] of [
        ['single', singles()],
        ['batch', batched()],
      ] as const) {
        ctx.progress(`requests: ${n} messages, ${mode}`);
        modes[mode] = { ...(await measure(baton, sqs, usage, mode, n, mode[0] ?? 'x')), messages: n };
      }
      const perMessage = (mode: Mode) => {
        const { usage: u, events, messages } = modes[mode];
        return {
          dynamoWru: u.dynamoWru / messages,
          dynamoRru: u.dynamoRru / messages,
          // Each SES event SNS delivers to the feedback queue is an SQS request billed to the queue.
          sqsBilled: (u.sqsBilled + events) / messages,
          sesCalls: u.sesCalls / messages,
          snsPublishes: events / messages,
          s3Calls: u.s3Calls / messages,
        };
      };
      const measured: MeasuredRequests = {
        source: `local mode end to end (${singles()} single, ${batched()} batched messages)`,
        modes: { single: perMessage('single'), batch: perMessage('batch') },
      };
      ctx.shared.requests = measured;
      ctx.shared.extra = {
        ...ctx.shared.extra,
        requests: Object.fromEntries(
          (['single', 'batch'] as const).map((m) => [
            m,
            { messages: modes[m].messages, calls: modes[m].usage.calls, units: modes[m].usage.dynamoUnits },
          ]),
        ),
      };
      return rowsFor(measured, modes, baton);
    } finally {
      sqs.destroy();
      await close();
      await Promise.all(proxies.map((p) => p.stop()));
    }
  },
};

function rowsFor(
  measured: MeasuredRequests,
  modes: Record<Mode, { usage: WireUsage; messages: number }>,
  baton: LocalBaton,
): Row[] {
  const s = 'requests';
  const rows: Row[] = [];
  for (const mode of ['batch', 'single'] as const) {
    const m = measured.modes[mode];
    const batch = mode === 'batch';
    rows.push(
      {
        section: s,
        figure: `${mode}: SQS billed requests / msg`,
        value: m.sqsBilled,
        ...(batch ? { target: '≤ 0.5', pass: m.sqsBilled <= 0.5 } : {}),
        note: 'lane + feedback queues (SNS deliveries included); idle polling is a fixed cost',
      },
      {
        section: s,
        figure: `${mode}: DynamoDB write units / msg`,
        value: m.dynamoWru,
        ...(batch ? { target: '≤ 4', pass: m.dynamoWru <= 4 } : {}),
      },
      {
        section: s,
        figure: `${mode}: DynamoDB read units / msg`,
        value: m.dynamoRru,
        ...(batch ? { target: '≤ 1', pass: m.dynamoRru <= 1 } : {}),
      },
      {
        section: s,
        figure: `${mode}: SES calls / msg`,
        value: m.sesCalls,
        ...(batch ? { target: '1', pass: Math.abs(m.sesCalls - 1) < 0.005 } : {}),
      },
      { section: s, figure: `${mode}: SES events published to SNS / msg`, value: m.snsPublishes },
    );
  }
  // What each write unit is for, batch mode.
  const logical = new Map(
    baton.plan.tables.map((t) => [t.logicalId, t.logicalId.replace(/[A-F0-9]{8}$/, '')]),
  );
  const { usage, messages } = modes.batch;
  for (const [key, units] of Object.entries(usage.dynamoUnits).sort()) {
    if (units.wru === 0 && units.rru === 0) continue;
    const [table = '', ...op] = key.split(' ');
    rows.push({
      section: s,
      figure: `batch: ${logical.get(table) ?? table} ${op.join(' ')}`,
      value: `${(units.wru / messages).toFixed(3)} WRU, ${(units.rru / messages).toFixed(3)} RRU`,
      unit: '/ msg',
    });
  }
  return rows;
}

/**
 * Posts `n` messages, waits until SES took them all and every queue (lanes and feedback) is empty
 * twice in a row, and returns the usage and SES events published in between.
 */
async function measure(
  baton: LocalBaton,
  sqs: SQSClient,
  usage: () => WireUsage,
  mode: Mode,
  n: number,
  label: string,
): Promise<{ usage: WireUsage; events: number }> {
  const before = usage();
  const eventsBefore = baton.eventsPublished();
  const bodies = Array.from({ length: n }, (_, i) => benchMessage(`${label}${i}`));
  const units =
    mode === 'single'
      ? bodies.map((body) => ({ route: '/v1/messages', body }))
      : Array.from({ length: Math.ceil(n / 100) }, (_, i) => ({
          route: '/v1/messages/batch',
          body: { messages: bodies.slice(i * 100, i * 100 + 100) },
        }));
  const posted = await postAll(baton, units, 32);
  await outboxTimes(baton, new Set(posted.acceptedAt.keys()), 10 * 60_000);
  await baton.ses.settled();
  let empty = 0;
  while (empty < 2) {
    empty = (await sourceQueuesDepth(sqs, baton)) === 0 ? empty + 1 : 0;
    await new Promise((r) => setTimeout(r, 500));
  }
  return { usage: wireDelta(usage(), before), events: baton.eventsPublished() - eventsBefore };
}
