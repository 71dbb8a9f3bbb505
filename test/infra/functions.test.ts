import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_METADATA_KEY, EnvVar, LANES, METRICS_NAMESPACE } from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { laneSendPlans, resolveConfig } from '../../lib/config.ts';
import { BatonFunction } from '../../lib/constructs/baton-function.ts';
import { REPO_ROOT } from '../../lib/paths.ts';
import {
  type CfnResource,
  environmentOf,
  functionsByEntry,
  logicalIdOf,
  props,
  referencedId,
  resourceOf,
  resourcesOfType,
  synthTemplate,
} from './support.ts';

const COMMON_ENV = ['POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_METRICS_NAMESPACE'];

describe('functions', () => {
  let template: Template;
  let stack: BatonStack;
  let functions: Record<string, CfnResource>;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
    functions = resourcesOfType(template, 'AWS::Lambda::Function');
  });

  it('runs every function on Node.js 24, arm64, 256 MB, with JSON logs in its own log group', () => {
    // Act / Assess
    expect(Object.keys(functions)).toHaveLength(6);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 256,
      Handler: 'index.handler',
      LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: Match.stringLikeRegexp('LogGroup') } },
    });
  });

  it('gives each function a log group with the configured retention', () => {
    // Prepare
    const custom = synthTemplate({ context: { logRetentionDays: 90 } });

    // Act
    const logGroups = Object.values(functions).map((fn) =>
      referencedId((props(fn).LoggingConfig as { LogGroup: unknown }).LogGroup),
    );

    // Assess
    expect(new Set(logGroups).size).toBe(6);
    for (const id of logGroups) {
      expect(props(resourcesOfType(template, 'AWS::Logs::LogGroup')[id] ?? { Type: 'missing' })).toEqual({
        RetentionInDays: RetentionDays.ONE_MONTH,
      });
    }
    custom.template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
  });

  it('records each handler source as metadata that points at an existing file', () => {
    // Act
    const entries = functionsByEntry(template, ENTRY_METADATA_KEY);

    // Assess
    expect(Object.fromEntries(Object.entries(entries).map(([entry, ids]) => [entry, ids.length]))).toEqual({
      'lambdas/api/handler.ts': 1,
      'lambdas/sender/handler.ts': 2,
      'lambdas/feedback/handler.ts': 1,
      'lambdas/erasure/handler.ts': 1,
      'lambdas/webhooks/handler.ts': 1,
    });
    for (const entry of Object.keys(entries)) expect(existsSync(join(REPO_ROOT, entry)), entry).toBe(true);
  });

  it('sets the documented timeouts: api 10 s, senders sized to their lane (188 s and 350 s at 14/s), feedback 30 s, erasure worker 2 min', () => {
    // Act
    const timeoutOf = (fn: NodejsFunction): unknown => props(resourceOf(template, fn)).Timeout;

    // Assess
    expect(timeoutOf(stack.api.handler.function)).toBe(10);
    expect(timeoutOf(stack.lanes.transactional.sender.function)).toBe(188);
    expect(timeoutOf(stack.lanes.broadcast.sender.function)).toBe(350);
    expect(timeoutOf(stack.feedback.handler.function)).toBe(30);
    expect(timeoutOf(stack.erasure.worker.function)).toBe(120);
  });

  it('gives the api function its tables (the guard table too), both lane queues and the retention', () => {
    // Act
    const env = environmentOf(template, stack.api.handler.function);

    // Assess
    expect(Object.keys(env).sort()).toEqual(
      [
        EnvVar.apiKeysTable,
        EnvVar.messagesTable,
        EnvVar.suppressionsTable,
        EnvVar.statsTable,
        EnvVar.idempotencyTable,
        EnvVar.guardTable,
        EnvVar.transactionalQueueUrl,
        EnvVar.broadcastQueueUrl,
        EnvVar.retentionDays,
        EnvVar.payloadBucket,
        EnvVar.erasureSecretArn,
        EnvVar.erasureQueueUrl,
        EnvVar.webhooksTable,
        EnvVar.webhookQueueUrl,
        ...COMMON_ENV,
      ].sort(),
    );
    expect(env).toMatchObject({
      [EnvVar.apiKeysTable]: { Ref: logicalIdOf(stack.tables.apiKeys) },
      [EnvVar.erasureSecretArn]: { Ref: logicalIdOf(stack.erasure.secret) },
      [EnvVar.erasureQueueUrl]: { Ref: logicalIdOf(stack.erasure.queue.queue) },
      [EnvVar.idempotencyTable]: { Ref: logicalIdOf(stack.tables.idempotency) },
      [EnvVar.guardTable]: { Ref: logicalIdOf(stack.tables.guard) },
      [EnvVar.transactionalQueueUrl]: { Ref: logicalIdOf(stack.lanes.transactional.queue.queue) },
      [EnvVar.broadcastQueueUrl]: { Ref: logicalIdOf(stack.lanes.broadcast.queue.queue) },
      [EnvVar.retentionDays]: '30',
      [EnvVar.payloadBucket]: { Ref: logicalIdOf(stack.payloads.bucket) },
      POWERTOOLS_SERVICE_NAME: 'baton-api',
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    });
  });

  it.each(LANES)(
    'gives the %s sender its lane, its share of the send rate, the configuration set and the guard’s tables',
    (lane) => {
      // Prepare
      const plan = laneSendPlans(resolveConfig({ domain: 'example.com' })).find((p) => p.lane === lane);

      // Act
      const env = environmentOf(template, stack.lanes[lane].sender.function);

      // Assess
      expect(Object.keys(env).sort()).toEqual(
        [
          EnvVar.messagesTable,
          EnvVar.suppressionsTable,
          EnvVar.statsTable,
          EnvVar.apiKeysTable,
          EnvVar.guardTable,
          EnvVar.configurationSet,
          EnvVar.lane,
          EnvVar.maxSendRate,
          EnvVar.maxConcurrency,
          EnvVar.maxReceiveCount,
          EnvVar.claimLeaseSeconds,
          EnvVar.confirmationWindowSeconds,
          EnvVar.payloadBucket,
          EnvVar.erasureSecretArn,
          EnvVar.webhooksTable,
          EnvVar.webhookQueueUrl,
          ...COMMON_ENV,
        ].sort(),
      );
      expect(env).toMatchObject({
        [EnvVar.lane]: lane,
        [EnvVar.maxSendRate]: String(plan?.sendRate),
        [EnvVar.maxConcurrency]: String(plan?.maxConcurrency),
        // The same number as the lane queue's redrive policy (queues.test.ts pins 10).
        [EnvVar.maxReceiveCount]: '10',
        // The claim outlives an attempt paced for its whole timeout (and ends before the visibility).
        [EnvVar.claimLeaseSeconds]: String((plan?.timeoutSeconds ?? 0) + 90),
        [EnvVar.configurationSet]: { Ref: logicalIdOf(stack.ses.configurationSet) },
        [EnvVar.payloadBucket]: { Ref: logicalIdOf(stack.payloads.bucket) },
        [EnvVar.erasureSecretArn]: { Ref: logicalIdOf(stack.erasure.secret) },
        // The sender re-checks the guard state on the job's key, and keeps a held message's job.
        [EnvVar.apiKeysTable]: { Ref: logicalIdOf(stack.tables.apiKeys) },
        [EnvVar.guardTable]: { Ref: logicalIdOf(stack.tables.guard) },
        POWERTOOLS_SERVICE_NAME: 'baton-sender',
      });
    },
  );

  it('sizes each sandbox sender (maxSendRate 1) to its pace: timeout, batch, claim and visibility', () => {
    // Prepare
    const sandbox = synthTemplate({ context: { maxSendRate: '1' } });

    // Act
    const sizes = LANES.map((lane) => {
      const { sender, queue, eventSourceMapping } = sandbox.stack.lanes[lane];
      return {
        lane,
        timeout: props(resourceOf(sandbox.template, sender.function)).Timeout,
        batchSize: props(resourceOf(sandbox.template, eventSourceMapping)).BatchSize,
        lease: Number(environmentOf(sandbox.template, sender.function)[EnvVar.claimLeaseSeconds]),
        visibility: props(resourceOf(sandbox.template, queue.queue)).VisibilityTimeout,
      };
    });

    // Assess: a claim outlives the longest paced attempt and expires before the message reappears.
    expect(sizes).toEqual([
      { lane: 'transactional', timeout: 874, batchSize: 6, lease: 964, visibility: 6 * 874 + 1 },
      { lane: 'broadcast', timeout: 679, batchSize: 2, lease: 769, visibility: 6 * 679 + 1 },
    ]);
  });

  it('splits maxSendRate between the senders without exceeding it', () => {
    // Prepare
    const custom = synthTemplate({ context: { maxSendRate: '50' } });

    // Act
    const rates = LANES.map((lane) =>
      Number(environmentOf(custom.template, custom.stack.lanes[lane].sender.function)[EnvVar.maxSendRate]),
    );

    // Assess
    expect(rates[0]).toBeGreaterThan(rates[1] ?? Number.POSITIVE_INFINITY);
    expect(rates.reduce((sum, rate) => sum + rate, 0)).toBeLessThanOrEqual(50);
  });

  it('gives the feedback function its tables and the guard’s (it writes no TTL of its own)', () => {
    // Act
    const env = environmentOf(template, stack.feedback.handler.function);

    // Assess
    expect(Object.keys(env).sort()).toEqual(
      [
        EnvVar.messagesTable,
        EnvVar.suppressionsTable,
        EnvVar.statsTable,
        EnvVar.apiKeysTable,
        EnvVar.guardTable,
        EnvVar.erasureSecretArn,
        EnvVar.webhooksTable,
        EnvVar.webhookQueueUrl,
        ...COMMON_ENV,
      ].sort(),
    );
    expect(env).toMatchObject({
      [EnvVar.apiKeysTable]: { Ref: logicalIdOf(stack.tables.apiKeys) },
      [EnvVar.guardTable]: { Ref: logicalIdOf(stack.tables.guard) },
      POWERTOOLS_SERVICE_NAME: 'baton-feedback',
      [EnvVar.erasureSecretArn]: { Ref: logicalIdOf(stack.erasure.secret) },
    });
  });

  it('uses only environment variable names declared in EnvVar (besides Powertools and Node options)', () => {
    // Prepare
    const declared = new Set<string>([...Object.values(EnvVar), ...COMMON_ENV]);

    // Act
    const used = Object.values(functions).flatMap((fn) =>
      Object.keys((props(fn).Environment as { Variables: Record<string, unknown> }).Variables),
    );

    // Assess
    expect(used.filter((name) => !declared.has(name))).toEqual([]);
  });
});

describe('source maps', () => {
  it('runs no function with --enable-source-maps, which costs a cold start and the first error dearly at 256 MB', () => {
    // Prepare
    const { template } = synthTemplate();

    // Act
    const options = Object.values(resourcesOfType(template, 'AWS::Lambda::Function')).map(
      (fn) =>
        (props(fn).Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables
          ?.NODE_OPTIONS,
    );

    // Assess: bench/source-maps.ts has the figures (docs/operations.md "Stack traces").
    expect(options.length).toBeGreaterThan(0);
    expect(options.filter((o) => String(o ?? '').includes('--enable-source-maps'))).toEqual([]);
  });
});

describe('event source mappings', () => {
  let template: Template;
  let stack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
  });

  it('reports partial batch failures with batches of 10 and a short batching window', () => {
    // Prepare: the erasure worker takes one job at a time (erasure.test.ts); webhook delivery
    // batches no window at all (webhooks.test.ts).
    const erasure = logicalIdOf(stack.erasure.eventSourceMapping);

    // Act
    const mappings = Object.entries(resourcesOfType(template, 'AWS::Lambda::EventSourceMapping')).filter(
      ([id]) => id !== erasure,
    );

    // Assess
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 5);
    expect(mappings).toHaveLength(4);
    for (const [, mapping] of mappings) {
      expect(props(mapping)).toMatchObject({
        BatchSize: 10,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
      expect(props(mapping).MaximumBatchingWindowInSeconds ?? 0).toBeLessThanOrEqual(5);
    }
  });

  it('connects each sender to its own lane queue and the feedback function to the feedback queue', () => {
    // Prepare
    const pairs = [
      ...LANES.map((lane) => [stack.lanes[lane].sender.function, stack.lanes[lane].queue.queue] as const),
      [stack.feedback.handler.function, stack.feedback.queue.queue] as const,
    ];

    // Act / Assess
    for (const [fn, queue] of pairs) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: logicalIdOf(fn) },
        EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(queue), 'Arn'] },
      });
    }
  });

  it('caps concurrency per lane, giving transactional at least as many senders as broadcast', () => {
    // Act
    const concurrencyOf = (lane: (typeof LANES)[number]): number =>
      (
        props(resourceOf(template, stack.lanes[lane].eventSourceMapping)).ScalingConfig as {
          MaximumConcurrency: number;
        }
      ).MaximumConcurrency;

    // Assess
    expect(concurrencyOf('transactional')).toBe(2);
    expect(concurrencyOf('broadcast')).toBe(2);
    // Sized from the send rate like the lanes (config.test.ts).
    expect(props(resourceOf(template, stack.feedback.eventSourceMapping)).ScalingConfig).toEqual({
      MaximumConcurrency: 2,
    });
  });

  it('scales lane concurrency with the configured send rate', () => {
    // Prepare
    const { template: fast, stack: fastStack } = synthTemplate({ context: { maxSendRate: 200 } });

    // Act / Assess
    expect(props(resourceOf(fast, fastStack.lanes.transactional.eventSourceMapping)).ScalingConfig).toEqual({
      MaximumConcurrency: 18,
    });
    expect(props(resourceOf(fast, fastStack.lanes.broadcast.eventSourceMapping)).ScalingConfig).toEqual({
      MaximumConcurrency: 8,
    });
  });
});

describe('BatonFunction', () => {
  it('refuses an entry that does not exist, naming it', () => {
    // Prepare
    const stack = new Stack();

    // Act / Assess
    expect(
      () =>
        new BatonFunction(stack, 'Fn', {
          entry: 'lambdas/nope/handler.ts',
          serviceName: 'baton-nope',
          description: 'missing',
          timeout: Duration.seconds(3),
          logRetention: RetentionDays.ONE_DAY,
        }),
    ).toThrow(`BatonFunction: entry "lambdas/nope/handler.ts" does not exist under ${REPO_ROOT}`);
  });

  it('refuses an entry outside the repository', () => {
    // Prepare
    const stack = new Stack();

    // Act / Assess
    expect(
      () =>
        new BatonFunction(stack, 'Fn', {
          entry: '../elsewhere/handler.ts',
          serviceName: 'baton-nope',
          description: 'outside',
          timeout: Duration.seconds(3),
          logRetention: RetentionDays.ONE_DAY,
        }),
    ).toThrow('BatonFunction: entry must be relative to the repository root, got "../elsewhere/handler.ts"');
  });
});
