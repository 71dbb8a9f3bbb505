/**
 * Section cost (issue 7, part 6): dollars per 1M single-recipient 10 KB messages, SES's per-email
 * fee excluded, from bench/prices.json and what the sections before measured:
 *
 * - AWS calls and DynamoDB capacity per invocation: the memory section's probes (real bundles on
 *   the emulators, counted on the wire), or, when the `requests` section ran, its end-to-end
 *   counts (the output says which);
 * - Lambda durations: each probe's CPU per invocation stretched to the function's share of a vCPU
 *   at its configured memory, plus the AWS round trips it makes and, for a paced sender batch, its
 *   pacing (bench/cost.ts, where every assumption is written down);
 * - log volume: the bytes each handler wrote (Powertools JSON logs and EMF, at the stack's INFO
 *   level), Lambda's platform records per invocation and the HTTP API access log line per request;
 * - what Lambda's SQS event sources do that no handler does: one ReceiveMessage per batch (billed
 *   per 64 KB) and one DeleteMessageBatch per batch; SES events: one SNS publish each, delivered to
 *   the feedback queue.
 *
 * Not counted: cold starts (their init is billed since August 2025, but amortised over a warm
 * instance's invocations it is small at steady volume), retries, bounces and complaints (a few per
 * cent of mail), storage (DynamoDB records and PITR, per GB retained), data transfer.
 *
 * Batch mode: POST /v1/messages/batch of 100, sender and feedback batches of 10 (the event source
 * batch sizes). Single mode: one message per request, every batch holding one message (a quiet
 * relay, the dearest case). Events: as configured (Send + Delivery for every delivered message), or
 * off (neither published), or Delivery without Send.
 */
import {
  ASSUMPTIONS,
  accessLogBytes,
  type CostBreakdown,
  durationMs,
  type InvocationProfile,
  invocationUsd,
  loadPrices,
  type MessageUsage,
  messageCost,
  type PriceFile,
  platformLogBytes,
} from '../cost.ts';
import { BATCH_SCENARIO, profileOf } from './memory.ts';
import { perInvocation } from './probes.ts';
import { stackFacts } from './stack.ts';
import type { BenchContext, FunctionName, Row, Section, StackFacts, WireUsage } from './types.ts';

const TARGET_USD_PER_MILLION = 3;
type Mode = 'batch' | 'single';

interface Part {
  readonly label: string;
  readonly fn: FunctionName;
  readonly profile: InvocationProfile;
  readonly invocations: number;
  readonly durationMs: number;
  readonly usd: number;
  readonly wire: WireUsage;
  readonly logBytes: number;
  readonly emfBytes: number;
}

interface Model {
  readonly usage: MessageUsage;
  readonly cost: CostBreakdown;
  readonly parts: readonly Part[];
  /** SQS billed requests per message by what makes them. */
  readonly sqs: Readonly<Record<string, number>>;
  /** Log bytes per message by source. */
  readonly logs: Readonly<Record<string, number>>;
}

const chunks = (bytes: number) => Math.max(1, Math.ceil(bytes / ASSUMPTIONS.chunkBytes));

function model(
  ctx: BenchContext,
  facts: StackFacts,
  prices: PriceFile,
  mode: Mode,
  kinds: readonly string[],
): Model {
  const probes = ctx.shared.probes;
  const payloads = ctx.shared.payloads;
  if (!probes?.api || !probes.sender || !probes.feedback || !payloads) {
    throw new Error('the cost section needs the memory section’s probes');
  }
  const parts: Part[] = [];
  const add = (label: string, fn: FunctionName, scenarioName: string) => {
    const probe = probes[fn];
    const s = probe?.scenarios[scenarioName];
    if (!s || s.invocations.length === 0) throw new Error(`no ${fn} probe scenario "${scenarioName}"`);
    const profile = profileOf(fn, s, facts);
    const per = perInvocation(s);
    const memory = facts.memoryMb[fn];
    parts.push({
      label,
      fn,
      profile,
      invocations: 1 / profile.units,
      durationMs: durationMs(profile, memory),
      usd: invocationUsd(profile, memory, prices) / profile.units,
      wire: per.wire,
      logBytes: per.logBytes,
      emfBytes: per.emfBytes,
    });
  };
  add('api', 'api', mode);
  add('sender', 'sender', mode);
  for (const kind of kinds) add(`feedback (${kind})`, 'feedback', `${mode} ${kind}`);

  const perMessage = (p: Part, x: number) => x * p.invocations;
  const sum = (f: (p: Part) => number) => parts.reduce((n, p) => n + f(p), 0);
  const api = parts[0] as Part;
  const sender = parts[1] as Part;
  const requestBytes = mode === 'batch' ? payloads.batchRequestBytes : payloads.singleRequestBytes;

  // SQS: the handlers' own calls (counted on the wire), then what the event sources and SNS do.
  const snsBilled = prices.assumptions.snsToSqsDeliveryIsBilledSqsRequest.value;
  const sqs: Record<string, number> = {
    'api SendMessage(Batch)': perMessage(api, api.wire.sqsBilled),
    'lane event source ReceiveMessage':
      chunks(sender.profile.units * payloads.jobBytes) / sender.profile.units,
    'lane event source DeleteMessageBatch': 1 / sender.profile.units,
  };
  const handlersSqs = sum((p) => (p === api ? 0 : perMessage(p, p.wire.sqsBilled)));
  if (handlersSqs > 0) sqs['handlers (visibility changes)'] = handlersSqs;
  let snsPublishes = 0;
  for (const p of parts.slice(2)) {
    const kind = p.label.slice('feedback ('.length, -1);
    const bytes = payloads.eventBytes[kind] ?? 2048;
    snsPublishes += chunks(bytes);
    if (snsBilled) sqs[`SNS → feedback queue (${kind})`] = chunks(bytes);
    sqs[`feedback event source Receive + Delete (${kind})`] =
      chunks(p.profile.units * bytes) / p.profile.units + 1 / p.profile.units;
  }

  const logs: Record<string, number> = {
    'handler JSON logs': sum((p) => perMessage(p, p.logBytes - p.emfBytes)),
    'EMF metrics': sum((p) => perMessage(p, p.emfBytes)),
    'Lambda platform records': sum((p) => p.invocations * platformLogBytes),
    'API access log': api.invocations * accessLogBytes,
  };

  const lambda: Record<string, { invocations: number; usd: number; durationMs: number; memoryMb: number }> =
    {};
  for (const p of parts) {
    lambda[p.label] = {
      invocations: p.invocations,
      usd: p.usd,
      durationMs: p.durationMs,
      memoryMb: facts.memoryMb[p.fn],
    };
  }
  let usage: MessageUsage = {
    apiRequests: Math.ceil(requestBytes / ASSUMPTIONS.apiMeterBytes) * api.invocations,
    lambda,
    dynamoWru: sum((p) => perMessage(p, p.wire.dynamoWru)),
    dynamoRru: sum((p) => perMessage(p, p.wire.dynamoRru)),
    sqsBilled: Object.values(sqs).reduce((a, b) => a + b, 0),
    snsPublishes,
    sesCalls: sum((p) => perMessage(p, p.wire.sesCalls)),
    s3Calls: sum((p) => perMessage(p, p.wire.s3Calls)),
    logBytes: Object.values(logs).reduce((a, b) => a + b, 0),
  };
  usage = withMeasuredRequests(ctx, facts, prices, mode, kinds, usage);
  return { usage, cost: messageCost(usage, prices), parts, sqs, logs };
}

/**
 * When the `requests` section measured the pipeline end to end, its counts replace the probes' for
 * the configured events; other event settings move by the probes' difference.
 */
function withMeasuredRequests(
  ctx: BenchContext,
  facts: StackFacts,
  prices: PriceFile,
  mode: Mode,
  kinds: readonly string[],
  usage: MessageUsage,
): MessageUsage {
  const measured = ctx.shared.requests?.modes[mode];
  if (measured === undefined) return usage;
  const configured = perMessageKinds(facts);
  const same = configured.length === kinds.length && configured.every((k) => kinds.includes(k));
  const base = same ? usage : withoutOverride(ctx, facts, prices, mode, configured);
  const shift = (m: number, probe: number, own: number) => m + (own - probe);
  return {
    ...usage,
    dynamoWru: shift(measured.dynamoWru, base.dynamoWru, usage.dynamoWru),
    dynamoRru: shift(measured.dynamoRru, base.dynamoRru, usage.dynamoRru),
    sqsBilled: shift(measured.sqsBilled, base.sqsBilled, usage.sqsBilled),
    snsPublishes: shift(measured.snsPublishes, base.snsPublishes, usage.snsPublishes),
    sesCalls: shift(measured.sesCalls, base.sesCalls, usage.sesCalls),
    s3Calls: shift(measured.s3Calls ?? base.s3Calls, base.s3Calls, usage.s3Calls),
  };
}

function withoutOverride(
  ctx: BenchContext,
  facts: StackFacts,
  prices: PriceFile,
  mode: Mode,
  kinds: readonly string[],
): MessageUsage {
  const { requests, ...rest } = ctx.shared;
  const bare: BenchContext = { ...ctx, shared: rest };
  void requests;
  return model(bare, facts, prices, mode, kinds).usage;
}

/** SES events a delivered message produces, as the configuration set publishes them. */
function perMessageKinds(facts: StackFacts): string[] {
  return ['send', 'delivery'].filter((k) => facts.publishedEvents.includes(k));
}

const million = (usd: number) => usd * 1e6;
const money = (usd: number) => `$${usd.toFixed(3)}`;

function breakdown(parts: Readonly<Record<string, number>>, scale = 1e6): string {
  return Object.entries(parts)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${money(v * scale)}`)
    .join(', ');
}

function fixedMonthly(
  ctx: BenchContext,
  facts: StackFacts,
  prices: PriceFile,
): { total: number; parts: Record<string, number>; metrics: number } {
  const p = prices.prices;
  // Custom metrics: the names and dimension sets the probes published, for both lanes' streams.
  const seen = new Set<string>();
  for (const probe of Object.values(ctx.shared.probes ?? {})) {
    for (const m of probe?.metrics ?? []) {
      seen.add(m);
      if (m.includes('stream=transactional')) seen.add(m.replace('stream=transactional', 'stream=broadcast'));
    }
  }
  const secondsPerMonth = 30 * 24 * 3600;
  // SNS asks KMS for a data key per topic and publishing principal every 5 minutes (2 calls each).
  const kmsRequests = facts.kmsKeys > 0 ? 2 * (secondsPerMonth / 300) * 2 : 0;
  const parts: Record<string, number> = {
    [`alarms (${facts.alarms}, ${facts.alarmMetrics} alarm metrics)`]:
      facts.alarmMetrics * p.alarmMetricPerMonth.usd,
    [`dashboards (${facts.dashboards})`]: facts.dashboards * p.dashboardPerMonth.usd,
    [`custom metrics (${seen.size} seen in EMF, both lanes)`]: seen.size * p.customMetricPerMonth.usd,
    [`KMS key (${facts.kmsKeys}) and its SNS data-key requests`]:
      facts.kmsKeys * p.kmsKeyPerMonth.usd + (kmsRequests / 1e4) * p.kmsRequestPer10k.usd,
    [`secrets (${facts.secrets})`]: facts.secrets * p.secretPerMonth.usd,
    [`idle event-source polling (${facts.polledQueues} queues)`]:
      (facts.polledQueues *
        prices.assumptions.idleEventSourcePolls.value *
        p.sqsStandardRequestPerMillion.usd) /
      1e6,
  };
  return { total: Object.values(parts).reduce((a, b) => a + b, 0), parts, metrics: seen.size };
}

export const section: Section = {
  name: 'cost',
  title: 'cost per 1M messages (SES fee excluded) and fixed monthly cost',
  needs: ['memory'],
  async run(ctx) {
    const facts = stackFacts(ctx);
    const prices = loadPrices();
    const configured = perMessageKinds(facts);
    const source = ctx.shared.requests
      ? `requests: ${ctx.shared.requests.source}`
      : 'probes: real handler bundles on dynalite/fauxqs/SES stand-in, counted on the wire (no requests section run)';
    const variants: { mode: Mode; kinds: string[]; label: string; target?: boolean }[] = [
      {
        mode: 'batch',
        kinds: configured,
        label: `batch mode, SES events as configured (${configured.join(' + ')})`,
        target: true,
      },
      {
        mode: 'batch',
        kinds: configured.filter((k) => k !== 'send'),
        label: 'batch mode, Delivery events only (no Send events)',
      },
      { mode: 'batch', kinds: [], label: 'batch mode, delivery events off (no Send, no Delivery)' },
      { mode: 'single', kinds: configured, label: 'single mode, SES events as configured' },
      { mode: 'single', kinds: [], label: 'single mode, delivery events off' },
    ];
    const models = variants.map((v) => ({ ...v, m: model(ctx, facts, prices, v.mode, v.kinds) }));
    const main = (models[0] as (typeof models)[number]).m;
    const names = ctx.shared.tableNames ?? {};
    const table = (key: string) => {
      const [physical, ...op] = key.split(' ');
      return `${names[physical ?? ''] ?? physical} ${op.join(' ')}`;
    };
    // With the requests section's counts, the values are theirs; the breakdown stays the probes'.
    const byProbe = ctx.shared.requests ? 'probe breakdown: ' : '';
    const units = (kind: 'wru' | 'rru') =>
      byProbe +
      main.parts
        .flatMap((p) =>
          Object.entries(p.wire.dynamoUnits)
            .filter(([, u]) => u[kind] > 0)
            .map(([k, u]) => `${p.label}: ${table(k)} ${(u[kind] * p.invocations).toFixed(2)}`),
        )
        .join('; ');

    const rows: Row[] = [
      {
        section: 'cost',
        figure: 'source of the AWS request counts',
        value: ctx.shared.requests ? 'requests section' : 'probes',
        note: source,
      },
      {
        section: 'cost',
        figure: 'DynamoDB write units per message (batch, events as configured)',
        value: main.usage.dynamoWru,
        unit: 'WRU',
        target: '≤ 4',
        pass: main.usage.dynamoWru <= 4,
        note: units('wru'),
      },
      {
        section: 'cost',
        figure: 'DynamoDB read units per message (batch, events as configured)',
        value: main.usage.dynamoRru,
        unit: 'RRU',
        target: '≤ 1',
        pass: main.usage.dynamoRru <= 1,
        note: units('rru'),
      },
      {
        section: 'cost',
        figure: 'SQS billed requests per message (batch, events as configured)',
        value: main.usage.sqsBilled,
        target: '≤ 0.5',
        pass: main.usage.sqsBilled <= 0.5,
        note: `${byProbe}${breakdown(main.sqs, 1).replaceAll('$', '')}${prices.assumptions.snsToSqsDeliveryIsBilledSqsRequest.value ? '; SNS→SQS deliveries counted as SQS requests (see prices.json assumptions)' : ''}`,
      },
      {
        section: 'cost',
        figure: 'SES calls per message',
        value: main.usage.sesCalls,
        target: '1',
        pass: Math.abs(main.usage.sesCalls - 1) < 1e-9,
        note: `SNS publishes (SES events) ${main.usage.snsPublishes.toFixed(2)} per message: ${configured.join(', ')}`,
      },
      {
        section: 'cost',
        figure: 'CloudWatch log bytes per message (batch, events as configured)',
        value: main.usage.logBytes,
        unit: 'B',
        note: `${Object.entries(main.logs)
          .map(([k, v]) => `${k} ${v.toFixed(0)}`)
          .join(', ')}; single mode ${(models[3] as (typeof models)[number]).m.usage.logBytes.toFixed(0)} B`,
      },
    ];
    for (const p of main.parts) {
      const single = (models[3] as (typeof models)[number]).m.parts.find((q) => q.label === p.label);
      rows.push({
        section: 'cost',
        figure: `Lambda ${p.label}: modelled duration per invocation, batch of ${p.profile.units}`,
        value: p.durationMs,
        unit: 'ms',
        note:
          `${facts.memoryMb[p.fn]} MB; CPU ${p.profile.cpuMs.toFixed(1)} ms at 1 vCPU (probe) → ${((p.profile.cpuMs * ASSUMPTIONS.fullCpuMb) / facts.memoryMb[p.fn]).toFixed(0)} ms` +
          `${p.profile.paceMs ? `; pacing ${p.profile.paceMs.toFixed(0)} ms between sends` : ''}; ` +
          `$${million(p.usd).toFixed(3)} per 1M messages; single mode ${single ? `${single.durationMs.toFixed(0)} ms, $${million(single.usd).toFixed(3)}` : '-'}`,
      });
    }
    for (const v of models) {
      const total = million(v.m.cost.total);
      rows.push({
        section: 'cost',
        figure: `$ per 1M messages, ${v.label}`,
        value: total,
        unit: '$',
        ...(v.target
          ? { target: `≤ $${TARGET_USD_PER_MILLION.toFixed(2)}`, pass: total <= TARGET_USD_PER_MILLION }
          : {}),
        note: breakdown(v.m.cost.parts),
      });
    }
    rows.push({
      section: 'cost',
      figure: 'SES fee per 1M emails, for scale (not in the figures above)',
      value: prices.prices.sesPerThousandEmails.usd * 1000,
      unit: '$',
      note: `$${prices.prices.sesPerThousandEmails.usd} per 1,000 emails (${prices.prices.sesPerThousandEmails.source})`,
    });
    const fixed = fixedMonthly(ctx, facts, prices);
    rows.push({
      section: 'cost',
      figure: 'fixed monthly cost (any volume)',
      value: fixed.total,
      unit: '$',
      note: breakdown(fixed.parts, 1),
    });
    const messagesPut = Object.entries(
      main.parts.find((p) => p.fn === 'sender')?.wire.dynamoUnits ?? {},
    ).find(([k]) => names[k.split(' ')[0] ?? ''] === 'Messages' && k.endsWith(' PutItem'));
    const putCalls = main.parts.find((p) => p.fn === 'sender')?.wire.calls['DynamoDB PutItem'] ?? 0;
    if (messagesPut && putCalls > 0) {
      const perWrite = messagesPut[1].wru / putCalls;
      rows.push({
        section: 'cost',
        figure: 'message record size: WRU per status write (sender, sent)',
        value: perWrite,
        unit: 'WRU',
        target: '1 (record ≤ 1 KB)',
        pass: perWrite <= 1,
      });
    }
    ctx.shared.extra = {
      ...ctx.shared.extra,
      cost: {
        source,
        prices: prices.region,
        assumptions: ASSUMPTIONS,
        variants: models.map((v) => ({
          label: v.label,
          mode: v.mode,
          kinds: v.kinds,
          usage: v.m.usage,
          cost: v.m.cost,
          sqs: v.m.sqs,
          logs: v.m.logs,
        })),
        fixedMonthly: fixed,
        batchScenarios: BATCH_SCENARIO,
      },
    };
    return rows;
  },
};
