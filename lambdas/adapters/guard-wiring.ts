import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { GuardDecision } from '../domain/guard/evaluate.ts';
import {
  GUARD_EVALUATION_INTERVAL_MS,
  type GuardErrorContext,
  GuardService,
} from '../domain/guard/service.ts';
import type { Clock, GuardCounters, GuardKeyWriter, GuardStateStore, HeldJobs } from '../domain/ports.ts';
import { numberEnv, optionalEnv, requiredEnv } from '../shared/env.ts';
import { ConfigurationError } from '../shared/errors.ts';
import { EnvVar, GuardMetric, Keys } from '../shared/names.ts';
import { describeError, logger, metrics } from '../shared/observability.ts';
import { redactAddresses } from '../shared/redact.ts';
import { DynamoGuardCounterStore } from './guard-counter-store.ts';
import { DynamoGuardStateStore } from './guard-state-store.ts';
import { HeldJobsStore } from './held-jobs-store.ts';
import { createS3Client, S3PayloadStore } from './payload-store.ts';

export interface GuardAdapterDeps {
  /** The process's document client (one per process, shared with its other stores). */
  readonly doc: DynamoDBDocumentClient;
  /** The ApiKeys store, uncached: the guard writes its decisions onto the keys (DynamoApiKeyStore). */
  readonly keyStore: GuardKeyWriter;
  /** The payload bucket's client; created from the environment when not given. */
  readonly s3?: S3Client;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

export interface GuardAdapters {
  readonly counters: GuardCounters;
  readonly state: GuardStateStore;
  readonly keys: GuardKeyWriter;
  /**
   * Held mail's jobs and index; undefined in a process without the payload bucket (the feedback
   * function, which holds nothing).
   */
  readonly held: HeldJobs | undefined;
  /** Count mailbox-simulator recipients (BATON_GUARD_COUNT_SIMULATOR=1: local mode only). */
  readonly countSimulator: boolean;
}

/**
 * The abuse guard's adapters, built the same way in every process that runs it (api, SMTP server,
 * senders, feedback) from the same variables: BATON_GUARD_TABLE (required), BATON_PAYLOAD_BUCKET
 * (held jobs, when the process has it) and BATON_GUARD_COUNT_SIMULATOR.
 */
export function guardAdapters(deps: GuardAdapterDeps): GuardAdapters {
  const env = deps.env ?? process.env;
  const table = requiredEnv(EnvVar.guardTable, env);
  const bucket = optionalEnv(EnvVar.payloadBucket, env);
  return {
    counters: new DynamoGuardCounterStore(deps.doc, {
      table,
      partitionKey: Keys.guard.partition,
      sortKey: Keys.guard.sort,
      ttlAttribute: Keys.guard.ttl,
    }),
    state: new DynamoGuardStateStore(deps.doc, table),
    keys: deps.keyStore,
    held:
      bucket === undefined
        ? undefined
        : new HeldJobsStore(deps.doc, {
            table,
            payloads: new S3PayloadStore(deps.s3 ?? createS3Client(env), bucket),
          }),
    countSimulator: optionalEnv(EnvVar.guardCountSimulator, env) === '1',
  };
}

/**
 * What every guard action leaves behind (issue 13): one structured log line with the figures and
 * the reason in words (ids only, never an address), and the EMF metric `GuardAction` with the
 * dimensions `Action` and `Scope` (and Powertools' `service`), written at once rather than with the
 * request's metrics: the alarm reads it within the minute, and an SMTP session has no flush.
 * GuardService's `onAction`: never throws (the decision is stored already; reporting it must not
 * undo the request).
 */
export function onGuardAction(decision: GuardDecision): void {
  try {
    logger.warn('guard action', {
      tenant: decision.tenantId,
      ...(decision.keyId === undefined ? {} : { keyId: decision.keyId }),
      scope: decision.scope,
      action: decision.action,
      signal: decision.signal,
      rate: decision.rate,
      threshold: decision.threshold,
      sample: decision.sample,
      window: decision.window,
      probation: decision.probation,
      ...(decision.until === undefined ? {} : { until: decision.until }),
      reason: redactAddresses(decision.reason),
    });
    const metric = metrics.singleMetric();
    metric.addDimensions({
      [GuardMetric.actionDimension]: decision.action,
      [GuardMetric.scopeDimension]: decision.scope,
    });
    metric.addMetric(GuardMetric.action, MetricUnit.Count, 1);
  } catch {
    // Logging or metrics failing leaves nothing better to do; the decision itself is stored.
  }
}

/**
 * A guard step that failed while the mail went on (counting on the accept path, evaluating,
 * applying): a warning with the error's name and redacted text, and the EMF metric `GuardErrors`
 * (dimension `service`), charted on the dashboard. GuardService's `onError`: never throws.
 */
export function onGuardError(error: unknown, context: GuardErrorContext): void {
  try {
    logger.warn('guard step failed', { ...context, ...describeError(error) });
    metrics.singleMetric().addMetric(GuardMetric.errors, MetricUnit.Count, 1);
  } catch {
    // As above: nothing better to do.
  }
}

/**
 * The abuse guard as one process runs it: GuardService over `guardAdapters`, reporting its actions
 * and failures through `onGuardAction`/`onGuardError`, evaluating each scope at most once per
 * BATON_GUARD_EVALUATE_SECONDS (60 by default; tests of local mode shorten it).
 */
export function createGuard(deps: GuardAdapterDeps & { readonly clock: Clock }): {
  readonly guard: GuardService;
  readonly held: HeldJobs | undefined;
  readonly state: GuardStateStore;
} {
  const env = deps.env ?? process.env;
  const adapters = guardAdapters(deps);
  const guard = new GuardService({
    counters: adapters.counters,
    state: adapters.state,
    keys: adapters.keys,
    clock: deps.clock,
    countSimulator: adapters.countSimulator,
    evaluateEveryMs: numberEnv(EnvVar.guardEvaluateSeconds, GUARD_EVALUATION_INTERVAL_MS / 1000, env) * 1000,
    onAction: onGuardAction,
    onError: onGuardError,
  });
  return { guard, held: adapters.held, state: adapters.state };
}

/** The held-mail store, for a process that keeps held jobs (it has the payload bucket). */
export function requiredHeld(held: HeldJobs | undefined): HeldJobs {
  if (held === undefined) {
    throw new ConfigurationError(`held mail needs the payload bucket: set ${EnvVar.payloadBucket}`);
  }
  return held;
}
