/**
 * The cost model behind the cost section (issue 7, part 6): prices from bench/prices.json, usage
 * from measurements, and the assumptions in between written down here, so every figure can be
 * traced. Pure functions; bench/sections/cost.ts feeds them.
 */
import { readFileSync } from 'node:fs';

export interface Price {
  readonly usd: number;
  readonly unit: string;
  readonly source: string;
  readonly asOf: string;
}

const PRICE_KEYS = [
  'apiGatewayHttpRequestPerMillion',
  'lambdaArmRequestPerMillion',
  'lambdaArmGbSecond',
  'sqsStandardRequestPerMillion',
  'dynamoWriteRequestUnitPerMillion',
  'dynamoReadRequestUnitPerMillion',
  'dynamoStoragePerGbMonth',
  'dynamoPitrPerGbMonth',
  'snsPublishPerMillion',
  'snsDeliveryToSqsPerMillion',
  'logsIngestionPerGb',
  'logsStoragePerGbMonth',
  'customMetricPerMonth',
  'alarmMetricPerMonth',
  'dashboardPerMonth',
  'kmsKeyPerMonth',
  'kmsRequestPer10k',
  'secretPerMonth',
  'sesPerThousandEmails',
] as const;
export type PriceKey = (typeof PRICE_KEYS)[number];

export interface PriceFile {
  readonly region: string;
  readonly prices: Readonly<Record<PriceKey, Price>>;
  readonly assumptions: {
    readonly snsToSqsDeliveryIsBilledSqsRequest: { readonly value: boolean; readonly why: string };
    readonly idleEventSourcePolls: { readonly value: number; readonly why: string };
  };
}

export const PRICES_FILE = new URL('./prices.json', import.meta.url);

/** Reads bench/prices.json and checks that every price the model uses is there, with its source. */
export function loadPrices(file: URL = PRICES_FILE): PriceFile {
  const data = JSON.parse(readFileSync(file, 'utf8')) as PriceFile;
  for (const key of PRICE_KEYS) {
    const p = data.prices?.[key];
    if (p === undefined || typeof p.usd !== 'number' || !p.source || !p.asOf) {
      throw new Error(`bench/prices.json: ${key} needs usd, unit, source and asOf`);
    }
  }
  return data;
}

/** What the model assumes where nothing here can measure it. */
export const ASSUMPTIONS = {
  /** Lambda gives a function one full vCPU at 1,769 MB, proportionally less below. */
  fullCpuMb: 1769,
  /**
   * CPU time measured on this machine (x64) is taken to be the CPU time on Lambda's arm64
   * (Graviton) at one full vCPU. Not measurable here; scale it if you know better.
   */
  cpuSpeedFactor: 1,
  /**
   * Round trips inside a region, ms, for a small request (sequential: calls made in parallel are
   * counted as if they were not, so durations err high).
   */
  latencyMs: {
    DynamoDB: 6,
    'DynamoDB BatchGetItem': 10,
    'DynamoDB BatchWriteItem': 12,
    SQS: 10,
    'SQS SendMessageBatch': 15,
    SESv2: 40,
    S3: 25,
    SNS: 15,
  } as Readonly<Record<string, number>>,
  /** Lambda's own JSON log records per invocation (platform.start and platform.report). */
  platformLog: [
    '{"time":"2025-03-01T12:00:00.000Z","type":"platform.start","record":{"requestId":"6f7f0961-0c6c-4a70-b6a9-bb1a4e7e5f3f","version":"$LATEST"}}',
    '{"time":"2025-03-01T12:00:00.250Z","type":"platform.report","record":{"requestId":"6f7f0961-0c6c-4a70-b6a9-bb1a4e7e5f3f","metrics":{"durationMs":249.71,"billedDurationMs":250,"memorySizeMB":256,"maxMemoryUsedMB":98},"status":"success"}}',
  ],
  /** One HTTP API access log line, in the stack's format (lib/constructs/http-api.ts). */
  accessLog:
    '{"requestId":"Kx1vWiYsIAMEJbg=","requestTime":"01/Mar/2025:12:00:00 +0000","sourceIp":"203.0.113.10","userAgent":"baton-client/1.0","routeKey":"POST /v1/messages/batch","status":"207","protocol":"HTTP/1.1","responseLength":"9312","responseLatency":"412","integrationLatency":"405","integrationError":"-"}',
  /** HTTP API requests are metered per started 512 KB. */
  apiMeterBytes: 512 * 1024,
  /** SQS and SNS bill one request per started 64 KB of payload. */
  chunkBytes: 64 * 1024,
  /** Months a log byte is stored (the stack's default retention, 30 days). */
  logRetentionMonths: 1,
} as const;

export const platformLogBytes = ASSUMPTIONS.platformLog.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
export const accessLogBytes = Buffer.byteLength(ASSUMPTIONS.accessLog) + 1;

/** Milliseconds an invocation waits on AWS, from its calls by `Service Operation`. */
export function ioMs(calls: Readonly<Record<string, number>>): number {
  let total = 0;
  for (const [name, n] of Object.entries(calls)) {
    const service = name.split(' ')[0] ?? name;
    total += n * (ASSUMPTIONS.latencyMs[name] ?? ASSUMPTIONS.latencyMs[service] ?? 10);
  }
  return total;
}

/** CPU milliseconds measured at one full core, as they stretch on a `memoryMb` function. */
export function cpuOnLambdaMs(cpuMs: number, memoryMb: number): number {
  return cpuMs * ASSUMPTIONS.cpuSpeedFactor * Math.max(1, ASSUMPTIONS.fullCpuMb / memoryMb);
}

/** An invocation as the model sees it. */
export interface InvocationProfile {
  /** CPU per invocation at one full core (measured), ms. */
  readonly cpuMs: number;
  /** AWS calls per invocation (measured). */
  readonly calls: Readonly<Record<string, number>>;
  /** Messages (or events) per invocation. */
  readonly units: number;
  /**
   * The sender's pacer: sends start at least this far apart within one instance
   * (1,000 × maxConcurrency / lane send rate). Undefined for unpaced functions.
   */
  readonly paceMs?: number;
}

/**
 * Modelled duration of one invocation at `memoryMb`: CPU stretched to the function's share of a
 * vCPU, plus waiting on AWS; a paced sender also waits for its turn (each message's work overlaps
 * the wait, so a batch takes (n − 1) pace intervals + one message's work when the work is shorter).
 */
export function durationMs(p: InvocationProfile, memoryMb: number): number {
  const work = cpuOnLambdaMs(p.cpuMs, memoryMb) + ioMs(p.calls);
  if (p.paceMs === undefined || p.units <= 1) return work;
  const perUnit = work / p.units;
  return Math.max(work, (p.units - 1) * p.paceMs + perUnit);
}

/** Lambda cost of one invocation: requests plus GB-s of the duration rounded up to the ms. */
export function invocationUsd(p: InvocationProfile, memoryMb: number, prices: PriceFile): number {
  const billedMs = Math.ceil(durationMs(p, memoryMb));
  return (
    prices.prices.lambdaArmRequestPerMillion.usd / 1e6 +
    (billedMs / 1000) * (memoryMb / 1024) * prices.prices.lambdaArmGbSecond.usd
  );
}

/** Memory sizes the recommendation chooses from. */
export const MEMORY_CHOICES = [128, 256, 512, 1024] as const;
/** Peak memory may use at most this share of the size: room for larger messages and GC slack. */
export const MEMORY_HEADROOM = 0.7;

export interface MemoryChoice {
  readonly memoryMb: number;
  readonly fits: boolean;
  readonly durationMs: number;
  /** Lambda cost per unit (message or event) at this size. */
  readonly usdPerUnit: number;
}

/**
 * Each size's modelled duration and cost per unit for `profile`, and the cheapest size whose
 * headroom covers the measured peak (ties go to the larger, faster size).
 */
export function chooseMemory(
  profile: InvocationProfile,
  peakMb: number,
  prices: PriceFile,
): { choices: MemoryChoice[]; best: MemoryChoice } {
  const choices = MEMORY_CHOICES.map((memoryMb) => ({
    memoryMb,
    fits: peakMb <= memoryMb * MEMORY_HEADROOM,
    durationMs: durationMs(profile, memoryMb),
    usdPerUnit: invocationUsd(profile, memoryMb, prices) / profile.units,
  }));
  const fitting = choices.filter((c) => c.fits);
  const pool = fitting.length > 0 ? fitting : [choices[choices.length - 1] as MemoryChoice];
  const best = pool.reduce((a, b) => (b.usdPerUnit <= a.usdPerUnit * 1.000001 ? b : a));
  return { choices, best };
}

/** Usage of one message (single recipient), by what is billed. */
export interface MessageUsage {
  /** API Gateway billed requests (512 KB increments). */
  readonly apiRequests: number;
  /** Lambda: invocations per message and modelled cost per message, by function. */
  readonly lambda: Readonly<
    Record<string, { invocations: number; usd: number; durationMs: number; memoryMb: number }>
  >;
  readonly dynamoWru: number;
  readonly dynamoRru: number;
  readonly sqsBilled: number;
  readonly snsPublishes: number;
  readonly sesCalls: number;
  readonly s3Calls: number;
  /** Bytes written to CloudWatch Logs per message: handler output, Lambda platform records, API access log. */
  readonly logBytes: number;
}

export interface CostBreakdown {
  readonly total: number;
  readonly parts: Readonly<Record<string, number>>;
}

/** Dollars per message, by service, excluding SES's per-email fee and S3 (none for a 10 KB message). */
export function messageCost(u: MessageUsage, prices: PriceFile): CostBreakdown {
  const p = prices.prices;
  const gb = u.logBytes / 1024 ** 3;
  const parts: Record<string, number> = {
    'API Gateway HTTP API': (u.apiRequests * p.apiGatewayHttpRequestPerMillion.usd) / 1e6,
    'Lambda (requests + GB-s)': Object.values(u.lambda).reduce((n, f) => n + f.usd, 0),
    'SQS requests': (u.sqsBilled * p.sqsStandardRequestPerMillion.usd) / 1e6,
    'DynamoDB writes': (u.dynamoWru * p.dynamoWriteRequestUnitPerMillion.usd) / 1e6,
    'DynamoDB reads': (u.dynamoRru * p.dynamoReadRequestUnitPerMillion.usd) / 1e6,
    'SNS publishes (SES events)': (u.snsPublishes * p.snsPublishPerMillion.usd) / 1e6,
    'CloudWatch Logs ingestion': gb * p.logsIngestionPerGb.usd,
    'CloudWatch Logs storage': gb * p.logsStoragePerGbMonth.usd * ASSUMPTIONS.logRetentionMonths,
  };
  return { total: Object.values(parts).reduce((a, b) => a + b, 0), parts };
}

/**
 * What the abuse guard adds (issue 13), in DynamoDB request units as the guard section measures
 * them with the real adapters on dynalite (a failed conditional write billed 1 WRU, as DynamoDB
 * bills it; dynalite reports nothing for it).
 */
export interface GuardUnits {
  /** One accepted request's `add`: the key's and the tenant's hour buckets, a batch of 100. */
  readonly acceptBatchWru: number;
  /** The same for a request of one message. */
  readonly acceptSingleWru: number;
  /** One check of a recipient domain against the key's once-per-domain markers (new or known). */
  readonly domainCheckWru: number;
  /** One attempt to claim a scope's evaluation (won or lost). */
  readonly claimWru: number;
  /** The reads of one evaluation: the key's buckets (7 days), the tenant's (30 days), its state. */
  readonly evaluationRru: number;
  /** One counted feedback event (a bounce or complaint): its markers and adds for key and tenant. */
  readonly feedbackEventWru: number;
}

/**
 * What the guard's cost depends on besides the units, written down so each can be changed. The
 * per-minute part does not grow with volume: it is dearest per message at low volume, hence the
 * month of 1M messages from one key (every minute has traffic) as the case reported.
 */
export const GUARD_ASSUMPTIONS = {
  /** Messages per request in batch mode (POST /v1/messages/batch of 100). */
  batchSize: 100,
  /**
   * Domain checks that reach DynamoDB per message: the first message to each domain in each warm
   * instance (the in-process LRU answers the rest). 1 in 50 is generous for a relay of few domains.
   */
  domainChecksPerMessage: 0.02,
  /** Minutes with traffic among 1M messages: a 30-day month at 23 a minute, evaluated every minute. */
  evaluationMinutesPerMillion: 30 * 24 * 60,
  /** Processes that try to claim a scope's evaluation each minute (an api instance and feedback). */
  claimAttemptsPerScopeMinute: 2,
  /** Counted feedback events per message: hard and transient bounces and complaints (3 %). */
  countedEventsPerMessage: 0.03,
} as const;

/** Dollars per 1M messages the guard adds, by part: DynamoDB only (its CPU and log lines are in the noise). */
export function guardCost(units: GuardUnits, prices: PriceFile, mode: 'batch' | 'single'): CostBreakdown {
  const a = GUARD_ASSUMPTIONS;
  const wru = prices.prices.dynamoWriteRequestUnitPerMillion.usd / 1e6;
  const rru = prices.prices.dynamoReadRequestUnitPerMillion.usd / 1e6;
  const perMillion: Record<string, number> = {
    'accept: key + tenant buckets':
      mode === 'batch' ? (1e6 / a.batchSize) * units.acceptBatchWru * wru : 1e6 * units.acceptSingleWru * wru,
    'accept: new-domain checks': 1e6 * a.domainChecksPerMessage * units.domainCheckWru * wru,
    'evaluation: claims and reads, per minute':
      a.evaluationMinutesPerMillion * units.evaluationRru * rru +
      a.evaluationMinutesPerMillion * 2 * a.claimAttemptsPerScopeMinute * units.claimWru * wru,
    'feedback: markers and adds': 1e6 * a.countedEventsPerMessage * units.feedbackEventWru * wru,
  };
  return { total: Object.values(perMillion).reduce((x, y) => x + y, 0), parts: perMillion };
}
