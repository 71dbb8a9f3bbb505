/**
 * The feedback function for fuzzing (`test/unit/feedback/fuzz.test.ts`): its invocation composed
 * exactly as `lambdas/feedback/handler.ts` composes it (which cannot be imported without its
 * environment: middy with the logger context and the metrics flush, the handlers' own
 * `processSqsBatch` with records in parallel, a whole-batch failure reported as item failures, the statistics
 * flushed once per batch, suppressions through the tombstone-aware store), over the in-memory
 * fakes. Records run in parallel, as deployed, so every store write is attributed to the SQS
 * record that made it through an `AsyncLocalStorage` scope per record, never by counting.
 *
 * Also: the SES fixture corpus as templates to mutate, and a loose reading of a queue body for
 * the checks (not a second parser: just enough to say what SES said).
 */
import './quiet-powertools.ts';
import { AsyncLocalStorage } from 'node:async_hooks';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  type ErasedKeyOf,
  erasedKeyFunction,
  TombstoneAwareSuppressions,
} from '../../lambdas/domain/erasure/erasure.ts';
import type { SoftBounceState } from '../../lambdas/domain/feedback/soft-bounce.ts';
import type { MessageRecord } from '../../lambdas/domain/message.ts';
import { StatTally } from '../../lambdas/domain/reporting/stats.ts';
import type { Suppression } from '../../lambdas/domain/suppression/suppression.ts';
import { createFeedbackConsumer } from '../../lambdas/feedback/app.ts';
import { processSqsBatch } from '../../lambdas/shared/batch.ts';
import { logger, publishMetrics, StreamMetrics } from '../../lambdas/shared/observability.ts';
import { Tally } from '../../lambdas/shared/tally.ts';
import {
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  InMemoryUsageStore,
  type TestClock,
  testClock,
} from './fakes.ts';
import { fixtureFiles, fixtureText } from './fixtures.ts';
import type { Json } from './json-mutations.ts';

export type { Json };

// ---------------------------------------------------------------------------------------------
// What each record did

/** One successful write of a message record: the version it replaced and what replaced it. */
export interface MessageWrite {
  readonly before: MessageRecord;
  readonly after: MessageRecord;
  readonly by: RecordTrace | undefined;
}

/** One processing of one SQS record (a receive): what it wrote and whether it failed. */
export interface RecordTrace {
  readonly record: SQSRecord;
  /** Which invocation of the function processed it, from 1. */
  readonly invocation: number;
  failed: boolean;
  error: unknown;
  readonly messageWrites: MessageWrite[];
  /** Every suppression offered to the table (`putIfStronger`), stored or not. */
  readonly suppressionWrites: Suppression[];
  readonly softBounceWrites: SoftBounceState[];
}

type Scope = AsyncLocalStorage<RecordTrace>;

/**
 * The Messages table, logging each write that will succeed, with the record it replaces. It keeps
 * the last record seeded or written per id, uncopied (the domain never mutates a record it has
 * handed over), so logging costs no copy: feedback only ever reads, finds and updates.
 */
export class TracingMessageStore extends InMemoryMessageStore {
  readonly writes: MessageWrite[] = [];
  readonly #scope: Scope;
  readonly #latest = new Map<string, MessageRecord>();

  constructor(scope: Scope) {
    super();
    this.#scope = scope;
  }

  /** The stored record, uncopied: for checks, which must not change it. */
  current(id: string): MessageRecord | undefined {
    return this.#latest.get(id);
  }

  /** Every stored record, uncopied. */
  records(): IterableIterator<MessageRecord> {
    return this.#latest.values();
  }

  override seed(...records: MessageRecord[]): this {
    for (const r of records) this.#latest.set(r.id, r);
    return super.seed(...records);
  }

  // Not async: one more await here would change how the batch's parallel records interleave. The
  // condition is the fake's own, which it checks before its first await.
  override update(next: MessageRecord, expectedVersion: number, claimToken?: string): Promise<void> {
    const before = this.#latest.get(next.id);
    if (before !== undefined && before.version === expectedVersion && claimToken === undefined) {
      const by = this.#scope.getStore();
      const write: MessageWrite = { before, after: next, by };
      this.writes.push(write);
      by?.messageWrites.push(write);
      this.#latest.set(next.id, next);
    }
    return super.update(next, expectedVersion, claimToken);
  }
}

/** The Suppressions table (tombstones included): every suppression offered to it. */
export class TracingSuppressionStore extends InMemorySuppressionStore {
  readonly #scope: Scope;
  readonly offered: Array<{ readonly suppression: Suppression; readonly by: RecordTrace | undefined }> = [];

  constructor(scope: Scope) {
    super();
    this.#scope = scope;
  }

  override putIfStronger(s: Suppression): Promise<boolean> {
    const by = this.#scope.getStore();
    this.offered.push({ suppression: structuredClone(s), by });
    by?.suppressionWrites.push(structuredClone(s));
    return super.putIfStronger(s);
  }

  override put(s: Suppression): Promise<void> {
    const by = this.#scope.getStore();
    this.offered.push({ suppression: structuredClone(s), by });
    by?.suppressionWrites.push(structuredClone(s));
    return super.put(s);
  }
}

export class TracingSoftBounceStore extends InMemorySoftBounceStore {
  readonly #scope: Scope;

  constructor(scope: Scope) {
    super();
    this.#scope = scope;
  }

  override put(state: SoftBounceState): Promise<void> {
    this.#scope.getStore()?.softBounceWrites.push(structuredClone(state));
    return super.put(state);
  }
}

// ---------------------------------------------------------------------------------------------
// The function

/** Long enough for `erasedKeyFunction`; a test value, like local mode's. */
const FUZZ_ERASURE_SECRET = 'feedback-fuzz-erasure-secret-0123456789abcdef';

/** One per module: building the HMAC key costs more than a whole fuzz case. */
export const fuzzErasedKeyOf: ErasedKeyOf = erasedKeyFunction(FUZZ_ERASURE_SECRET);

function lambdaContext(invocation: number): Context {
  const functionName = 'baton-feedback-fuzz';
  return {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: `fuzz-${invocation}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'fuzz',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 30_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

export interface FeedbackWorld {
  readonly clock: TestClock;
  readonly messages: TracingMessageStore;
  /** The table itself: tombstones sit here under their `erased:` key. */
  readonly suppressions: TracingSuppressionStore;
  readonly softBounces: TracingSoftBounceStore;
  readonly usage: InMemoryUsageStore;
  readonly erasedKeyOf: ErasedKeyOf;
  /** Every record processed so far, in the order processing started. */
  readonly traces: RecordTrace[];
  /** One invocation of the function with these records, as the SQS event source makes it. */
  invoke(records: readonly SQSRecord[]): Promise<SQSBatchResponse>;
}

/** A fresh feedback function over empty tables, its clock at `now` (tables are seeded by the caller). */
/** One for all worlds: each AsyncLocalStorage instance makes every async context frame larger. */
const scope: Scope = new AsyncLocalStorage<RecordTrace>();

export function feedbackWorld(now: string): FeedbackWorld {
  const clock = testClock(now);
  const messages = new TracingMessageStore(scope);
  const suppressions = new TracingSuppressionStore(scope);
  const softBounces = new TracingSoftBounceStore(scope);
  const usage = new InMemoryUsageStore();
  const traces: RecordTrace[] = [];
  const erasedKeyOf = fuzzErasedKeyOf;

  // As lambdas/feedback/handler.ts builds them, once per instance.
  const stats = new StatTally();
  const byStream = new StreamMetrics();
  const outcomes = new Tally();
  const consumer = createFeedbackConsumer(
    {
      messages,
      suppressions: new TombstoneAwareSuppressions(suppressions, erasedKeyOf),
      erasedKeyOf,
      softBounces,
      clock,
    },
    stats,
    byStream,
    outcomes,
  );
  let invocation = 0;

  /** The consumer inside a scope of its own, so each write knows its record. */
  const traced = (record: SQSRecord): Promise<void> => {
    const trace: RecordTrace = {
      record,
      invocation,
      failed: false,
      error: undefined,
      messageWrites: [],
      suppressionWrites: [],
      softBounceWrites: [],
    };
    traces.push(trace);
    return scope
      .run(trace, () => consumer(record))
      .catch((error: unknown) => {
        trace.failed = true;
        trace.error = error;
        throw error;
      });
  };

  const handler = middy<SQSEvent, SQSBatchResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(publishMetrics())
    .handler(async (event, context) => {
      // The handler's own batch loop, not a copy of it.
      return processSqsBatch(event.Records, traced, {
        context,
        outcomes,
        finish: async () => {
          await stats.flush(usage);
          byStream.flush();
        },
      });
    });

  return {
    clock,
    messages,
    suppressions,
    softBounces,
    usage,
    erasedKeyOf,
    traces,
    invoke: async (records) => {
      invocation += 1;
      return handler({ Records: [...records] }, lambdaContext(invocation));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The fixture corpus

/** An SES feedback payload from the fixtures, to aim, mutate and wrap. */
export interface SesTemplate {
  /** The fixture file it comes from. */
  readonly name: string;
  /** The SES JSON: a configuration-set event (`eventType`) or an identity notification. */
  readonly payload: Json;
  /** The SNS envelope the fixture came in, if it is one. */
  readonly envelope?: Json;
}

export interface FixtureCorpus {
  readonly templates: readonly SesTemplate[];
  /** Queue bodies that are not SES feedback: other Lambda events, SNS confirmations, bare objects. */
  readonly foreign: readonly string[];
}

export const SES_FIXTURE_DIR = 'ses';

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseObject(text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

const hasSesType = (j: Json): boolean =>
  typeof j.eventType === 'string' || typeof j.notificationType === 'string';

/**
 * Every file of `test/fixtures/shared/ses/`: SES JSON (bare or in its SNS envelope) becomes a
 * template; the bounce and complaint objects AWS documents on their own become templates too, put
 * in an identity notification; everything else (and the bare objects as they are) is foreign.
 */
export function loadSesCorpus(): FixtureCorpus {
  const templates: SesTemplate[] = [];
  const foreign: string[] = [];
  for (const name of fixtureFiles(SES_FIXTURE_DIR)) {
    const text = fixtureText(`${SES_FIXTURE_DIR}/${name}`);
    const json = parseObject(text);
    if (json === undefined) {
      foreign.push(text);
      continue;
    }
    if (hasSesType(json)) {
      templates.push({ name, payload: json });
      continue;
    }
    const inner = typeof json.Message === 'string' ? parseObject(json.Message) : undefined;
    if (json.Type === 'Notification' && inner !== undefined && hasSesType(inner)) {
      templates.push({ name, payload: inner, envelope: json });
      continue;
    }
    foreign.push(text);
    const section = Array.isArray(json.bouncedRecipients)
      ? 'bounce'
      : Array.isArray(json.complainedRecipients)
        ? 'complaint'
        : undefined;
    if (section !== undefined) {
      const list = (section === 'bounce' ? json.bouncedRecipients : json.complainedRecipients) as Json[];
      templates.push({
        name,
        payload: {
          notificationType: section === 'bounce' ? 'Bounce' : 'Complaint',
          [section]: json,
          mail: {
            timestamp: typeof json.timestamp === 'string' ? json.timestamp : '2016-01-27T14:59:38.237Z',
            messageId: `graft-${section}-0000000000000000-000000`,
            destination: list.map((r) => r.emailAddress),
          },
        },
      });
    }
    // The Lambda events carry queue bodies and SNS messages of their own.
    if (Array.isArray(json.Records)) {
      for (const r of json.Records as unknown[]) {
        if (!isObject(r)) continue;
        if (typeof r.body === 'string') foreign.push(r.body);
        if (isObject(r.Sns)) foreign.push(JSON.stringify(r.Sns));
      }
    }
  }
  return { templates, foreign };
}

// ---------------------------------------------------------------------------------------------
// Reading a body back, loosely

/**
 * What a queue body says SES said, from the body parsed: the JSON object itself, or the string
 * `Message` of an SNS Notification. For the checks only (which suppression may a record justify,
 * which message does it name); undefined when there is no JSON object to read.
 */
export function sesJsonFrom(outer: unknown): Json | undefined {
  if (!isObject(outer)) return undefined;
  if (typeof outer.Type === 'string' && typeof outer.TopicArn === 'string') {
    return outer.Type === 'Notification' && typeof outer.Message === 'string'
      ? parseObject(outer.Message)
      : undefined;
  }
  return outer;
}

export function objectAt(parent: unknown, key: string): Json | undefined {
  if (!isObject(parent)) return undefined;
  const value = parent[key];
  return isObject(value) ? value : undefined;
}

export function stringAt(parent: unknown, key: string): string | undefined {
  if (!isObject(parent)) return undefined;
  const value = parent[key];
  return typeof value === 'string' ? value : undefined;
}
