import '../../support/quiet-powertools.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DynamoApiKeyStore } from '../../../lambdas/adapters/api-key-store.ts';
import { DynamoGuardCounterStore } from '../../../lambdas/adapters/guard-counter-store.ts';
import { DynamoGuardStateStore } from '../../../lambdas/adapters/guard-state-store.ts';
import { guardAdapters, onGuardAction, onGuardError } from '../../../lambdas/adapters/guard-wiring.ts';
import { HeldJobsStore } from '../../../lambdas/adapters/held-jobs-store.ts';
import { ConfigurationError } from '../../../lambdas/shared/errors.ts';
import { EnvVar, GuardMetric } from '../../../lambdas/shared/names.ts';
import { logger, metrics } from '../../../lambdas/shared/observability.ts';
import { keySuspensionDecision } from '../../support/guard.ts';

const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const keyStore = new DynamoApiKeyStore(doc, 'ApiKeys');
const s3 = new S3Client({ region: 'us-east-1' });

const suspension = keySuspensionDecision({
  reason: 'the key’s suppressed-recipient hits 20 % (12 of 60, e.g. ana@example.org) are at or above 15 %',
});

/** Replaces `metrics.singleMetric()` with a recorder of what is added to the metric it returns. */
function recordSingleMetrics() {
  const recorded: Array<{ dimensions: Record<string, string>; name?: string; value?: number }> = [];
  vi.spyOn(metrics, 'singleMetric').mockImplementation(() => {
    const one: (typeof recorded)[number] = { dimensions: {} };
    recorded.push(one);
    const fake = {
      addDimensions: (d: Record<string, string>) => {
        Object.assign(one.dimensions, d);
        return fake;
      },
      addMetric: (name: string, _unit: unknown, value: number) => {
        one.name = name;
        one.value = value;
        return fake;
      },
    };
    return fake as unknown as ReturnType<typeof metrics.singleMetric>;
  });
  return recorded;
}

describe('guardAdapters', () => {
  it('builds the stores over the guard table and the payload bucket the environment names', () => {
    // Act
    const adapters = guardAdapters({
      doc,
      keyStore,
      s3,
      env: {
        [EnvVar.guardTable]: 'Guard',
        [EnvVar.payloadBucket]: 'payloads',
        [EnvVar.guardCountSimulator]: '1',
      },
    });

    // Assess
    expect(adapters.counters).toBeInstanceOf(DynamoGuardCounterStore);
    expect(adapters.state).toBeInstanceOf(DynamoGuardStateStore);
    expect(adapters.held).toBeInstanceOf(HeldJobsStore);
    expect(adapters.keys).toBe(keyStore);
    expect(adapters.countSimulator).toBe(true);
  });

  it('has no held-mail store without a payload bucket (feedback) and leaves simulator recipients out by default', () => {
    // Act
    const adapters = guardAdapters({ doc, keyStore, env: { [EnvVar.guardTable]: 'Guard' } });

    // Assess
    expect(adapters.held).toBeUndefined();
    expect(adapters.countSimulator).toBe(false);
  });

  it('fails the start naming BATON_GUARD_TABLE when it is not set', () => {
    // Act
    const build = () => guardAdapters({ doc, keyStore, env: {} });

    // Assess
    expect(build).toThrow(ConfigurationError);
    expect(build).toThrow('environment variable BATON_GUARD_TABLE is required but not set');
  });
});

describe('onGuardAction and onGuardError', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('logs the action with its figures and ids, no address, and emits GuardAction by Action and Scope', () => {
    // Prepare
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const emitted = recordSingleMetrics();

    // Act
    onGuardAction(suspension);

    // Assess
    expect(warn).toHaveBeenCalledTimes(1);
    const [message, fields] = warn.mock.calls[0] as [string, Record<string, unknown>];
    expect(message).toBe('guard action');
    expect(fields).toMatchObject({
      tenant: 'acme',
      keyId: 'k1',
      scope: 'key',
      action: 'suspendKey',
      signal: 'suppressedHitRate',
      rate: 0.2,
      threshold: 0.15,
      sample: { sends: 60, over: 'attempts', events: 12 },
    });
    expect(JSON.stringify(fields)).not.toContain('ana@example.org');
    expect(emitted).toEqual([
      {
        dimensions: { [GuardMetric.actionDimension]: 'suspendKey', [GuardMetric.scopeDimension]: 'key' },
        name: GuardMetric.action,
        value: 1,
      },
    ]);
  });

  it('never throws, even when the metrics cannot be written (the decision is stored already)', () => {
    // Prepare
    vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    vi.spyOn(metrics, 'singleMetric').mockImplementation(() => {
      throw new Error('metrics down');
    });

    // Act / Assess
    expect(() => onGuardAction(suspension)).not.toThrow();
    expect(() => onGuardError(new Error('x'), { operation: 'evaluate' })).not.toThrow();
  });

  it('logs a failed guard step by error name and emits GuardErrors', () => {
    // Prepare
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const emitted = recordSingleMetrics();

    // Act
    onGuardError(new Error('throttled writing for bob@example.net'), {
      operation: 'recordAccept',
      tenant: 'acme',
    });

    // Assess
    const [message, fields] = warn.mock.calls[0] as [string, Record<string, unknown>];
    expect(message).toBe('guard step failed');
    expect(fields).toMatchObject({ operation: 'recordAccept', tenant: 'acme', error: 'Error' });
    expect(JSON.stringify(fields)).not.toContain('bob@example.net');
    expect(emitted).toEqual([{ dimensions: {}, name: GuardMetric.errors, value: 1 }]);
  });
});
