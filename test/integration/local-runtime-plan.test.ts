import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { generateApiKey, SCOPES } from '../../lambdas/domain/keys/api-key.ts';
import { EnvVar, Keys, PUBLISHED_SES_EVENTS, Route } from '../../lambdas/shared/names.ts';
import { functionBaseEnv } from '../../local/baton-local.ts';
import { developmentKeyItem } from '../../local/dev-keys.ts';
import { LOCAL_EVENT_VISIBILITY_SECONDS, localEventPath } from '../../local/event-path.ts';
import { type LocalPlan, resolveEnvironment, UnsupportedTemplateError } from '../../local/plan.ts';
import type { ProvisionedStack } from '../support/emulators.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('local plan from the synthesized template, provisioned on the emulators', () => {
  let stack: ProvisionedStack;
  let plan: LocalPlan;

  withProvisionedStack((started) => {
    stack = started;
    plan = stack.plan;
  });

  const queuePlan = (logicalId: string) => plan.queues.find((q) => q.logicalId === logicalId);

  describe('planFromTemplate', () => {
    it('finds the seven tables, each keyed as names.ts says, with the SES message id index on Messages', () => {
      // Act
      const keys = plan.tables.map((t) =>
        t.keySchema.map((k) => `${k.AttributeName}:${k.KeyType}`).join(','),
      );

      // Assess
      expect(plan.tables).toHaveLength(7);
      expect(keys.toSorted()).toEqual(
        [
          ...[
            Keys.apiKeys.partition,
            Keys.messages.partition,
            Keys.suppressions.partition,
            Keys.stats.partition,
            Keys.idempotency.partition,
          ].map((k) => `${k}:HASH`),
          `${Keys.guard.partition}:HASH,${Keys.guard.sort}:RANGE`,
          `${Keys.webhooks.partition}:HASH,${Keys.webhooks.sort}:RANGE`,
        ].toSorted(),
      );
      const guard = plan.tables.find((t) => t.logicalId === stack.tables.guard);
      expect(guard?.ttlAttribute).toBe(Keys.guard.ttl);
      const messages = plan.tables.find((t) => t.logicalId === stack.tables.messages);
      expect(messages?.globalSecondaryIndexes.map((g) => [g.IndexName, g.KeySchema])).toEqual([
        [Keys.messages.sesMessageIdIndex, [{ AttributeName: Keys.messages.sesMessageId, KeyType: 'HASH' }]],
      ]);
      expect(messages?.ttlAttribute).toBe(Keys.messages.ttl);
    });

    it('finds ten queues: five with a redrive policy, each to one of the five DLQs', () => {
      // Act
      const withRedrive = plan.queues.filter((q) => q.redrive);
      const dlqs = plan.queues.filter((q) => !q.redrive);

      // Assess
      expect(plan.queues).toHaveLength(10);
      expect(withRedrive).toHaveLength(5);
      expect(withRedrive.map((q) => q.redrive?.deadLetterQueue).toSorted()).toEqual(
        dlqs.map((q) => q.logicalId).toSorted(),
      );
    });

    it('subscribes the feedback queue to the topic the configuration set publishes to, raw', () => {
      // Act
      const [destination] = plan.eventDestinations;
      const feedbackSource = plan.eventSources.find((e) =>
        plan.functions.some((f) => f.logicalId === e.function && f.entry === 'lambdas/feedback/handler.ts'),
      );

      // Assess
      expect(plan.subscriptions).toEqual([
        { topic: destination?.topic, queue: feedbackSource?.queue, rawMessageDelivery: true },
      ]);
      expect(plan.topics).toContain(destination?.topic);
    });

    it('puts local mode’s event path on its own settings: the feedback queue’s visibility in seconds, the confirmation window derived from it', () => {
      // Prepare
      const feedback = plan.subscriptions[0]?.queue ?? '';

      // Act
      const local = localEventPath(plan, { eventDelayMs: 3000 });
      const capped = localEventPath(plan, { eventDelayMs: 50, maxBatchingWindowSeconds: 0 });

      // Assess: 3 s of event delay + 1 s SNS → SQS + the 5 s batching window + 10 s visibility + 5 s.
      expect(local.plan.queues.find((q) => q.logicalId === feedback)?.visibilityTimeout).toBe(
        LOCAL_EVENT_VISIBILITY_SECONDS,
      );
      expect(local.confirmationWindowSeconds).toBe(24);
      expect(capped.confirmationWindowSeconds).toBe(17);
      // The lanes keep the template's visibility: only the event path is local mode's own.
      const others = plan.queues.filter((q) => q.logicalId !== feedback);
      expect(local.plan.queues.filter((q) => q.logicalId !== feedback)).toEqual(others);
    });

    it('finds the six functions, each with a handler entry that exists on disk', () => {
      // Act
      const entries = plan.functions.map((f) => f.entry);

      // Assess
      expect(plan.functions).toHaveLength(6);
      expect(entries.toSorted()).toEqual([
        'lambdas/api/handler.ts',
        'lambdas/erasure/handler.ts',
        'lambdas/feedback/handler.ts',
        'lambdas/sender/handler.ts',
        'lambdas/sender/handler.ts',
        'lambdas/webhooks/handler.ts',
      ]);
      expect(entries.filter((entry) => !existsSync(join(REPO_ROOT, entry)))).toEqual([]);
    });

    it('finds five SQS event sources, all reporting batch item failures, from queues with a DLQ', () => {
      // Act
      const sources = plan.eventSources;

      // Assess
      expect(sources).toHaveLength(5);
      expect(sources.map((e) => e.reportBatchItemFailures)).toEqual([true, true, true, true, true]);
      for (const source of sources) {
        expect(queuePlan(source.queue)?.redrive).toBeDefined();
        expect(plan.functions.map((f) => f.logicalId)).toContain(source.function);
      }
      expect(new Set(sources.map((e) => e.function)).size).toBe(5);
      // Lambda refuses an event source whose queue hides a message for less than the function may run.
      const tooShort = sources.filter(
        (e) =>
          (queuePlan(e.queue)?.visibilityTimeout ?? 0) <
          (plan.functions.find((f) => f.logicalId === e.function)?.timeoutSeconds ?? Infinity),
      );
      expect(tooShort).toEqual([]);
    });

    it('picks up webhook delivery from the template alone: its table, its queue, its function and their event source', () => {
      // Prepare
      const fn = plan.functions.find((f) => f.entry === 'lambdas/webhooks/handler.ts');
      const table = plan.tables.find((t) => t.logicalId === stack.tables.webhooks);

      // Act
      const source = plan.eventSources.find((e) => e.function === fn?.logicalId);
      const queue = plan.queues.find((q) => q.logicalId === source?.queue);

      // Assess
      expect(table?.ttlAttribute).toBe(Keys.webhooks.ttl);
      expect(fn).toMatchObject({ timeoutSeconds: 30, memoryMb: 256 });
      expect(source).toMatchObject({
        batchSize: 10,
        maxBatchingWindowSeconds: 0,
        maxConcurrency: 10,
        reportBatchItemFailures: true,
      });
      expect(queue).toMatchObject({ visibilityTimeout: 180, redrive: { maxReceiveCount: 5 } });
      expect(stack.physical.queues.get(queue?.logicalId ?? '')?.url).toBe(stack.queues.webhook.url);
    });

    it('maps one route to the api function for every route key in names.ts', () => {
      // Act
      const routeKeys = plan.routes.map((r) => r.routeKey);

      // Assess
      expect(routeKeys.toSorted()).toEqual(Object.values(Route).toSorted());
      const api = plan.functions.find((f) => f.entry === 'lambdas/api/handler.ts');
      expect(new Set(plan.routes.map((r) => r.function))).toEqual(new Set([api?.logicalId]));
    });

    it('finds the configuration set event destination publishing the seven SES event types', () => {
      // Act
      const destinations = plan.eventDestinations;

      // Assess
      expect(destinations).toHaveLength(1);
      expect(destinations[0]?.configurationSet).toBe(plan.configurationSets[0]);
      expect(destinations[0]?.eventTypes.toSorted()).toEqual([...PUBLISHED_SES_EVENTS].toSorted());
    });
  });

  describe('resolveEnvironment', () => {
    it('resolves every function environment to strings naming the provisioned resources', () => {
      // Act
      const resolved = plan.functions.map((f) => resolveEnvironment(f.environment, stack.physical));

      // Assess
      for (const env of resolved) {
        expect(Object.values(env).every((value) => typeof value === 'string' && value !== '')).toBe(true);
      }
      // The api is the function behind the routes (the senders read the ApiKeys table too).
      const apiIndex = plan.functions.findIndex((f) => plan.routes.some((r) => r.function === f.logicalId));
      const api = resolved[apiIndex];
      expect(api?.[EnvVar.transactionalQueueUrl]).toBe(
        stack.physical.queues.get(queueIdOf('transactional'))?.url,
      );
      expect(api?.[EnvVar.broadcastQueueUrl]).toBe(stack.physical.queues.get(queueIdOf('broadcast'))?.url);
      const senders = resolved.filter((env) => env[EnvVar.lane] !== undefined);
      expect(senders.map((env) => env[EnvVar.lane]).toSorted()).toEqual(['broadcast', 'transactional']);
      expect(senders.map((env) => env[EnvVar.configurationSet])).toEqual([
        plan.configurationSets[0],
        plan.configurationSets[0],
      ]);
    });

    it('gives the guard table to the api, both senders and feedback, and counts simulator recipients locally', () => {
      // Act
      const resolved = plan.functions.map((f) => resolveEnvironment(f.environment, stack.physical));
      const base = functionBaseEnv(
        'Api',
        256,
        { dynamodb: 'd', sqs: 's', ses: 'e', s3: 'b' },
        'n',
        undefined,
      );

      // Assess
      expect(resolved.filter((env) => env[EnvVar.guardTable] === stack.tables.guard)).toHaveLength(4);
      // Every local process (functions and the SMTP server) starts from this environment.
      expect(base[EnvVar.guardCountSimulator]).toBe('1');
    });

    it('gives every producer and the delivery function the webhooks table and queue, and lets local webhooks reach loopback', () => {
      // Act
      const resolved = new Map(
        plan.functions.map((f) => [f.entry, resolveEnvironment(f.environment, stack.physical)] as const),
      );
      const withWebhooks = plan.functions.filter((f) => {
        const env = resolveEnvironment(f.environment, stack.physical);
        return (
          env[EnvVar.webhooksTable] === stack.tables.webhooks &&
          env[EnvVar.webhookQueueUrl] === stack.queues.webhook.url
        );
      });
      const base = functionBaseEnv(
        'Webhooks',
        256,
        { dynamodb: 'd', sqs: 's', ses: 'e', s3: 'b' },
        'n',
        undefined,
      );

      // Assess: api, both senders, feedback and the delivery function; not the erasure worker.
      expect(withWebhooks.map((f) => f.entry).toSorted()).toEqual([
        'lambdas/api/handler.ts',
        'lambdas/feedback/handler.ts',
        'lambdas/sender/handler.ts',
        'lambdas/sender/handler.ts',
        'lambdas/webhooks/handler.ts',
      ]);
      expect(resolved.get('lambdas/erasure/handler.ts')?.[EnvVar.webhooksTable]).toBeUndefined();
      // Every local process (functions and the SMTP server) starts from this environment.
      expect(base[EnvVar.webhookAllowLoopback]).toBe('1');
      expect(base[EnvVar.webhookDirectorySeconds]).toBe('1');
    });

    it('gives the development key every scope, webhooks included', () => {
      // Act
      const key = developmentKeyItem(generateApiKey().token, ['example.com']);

      // Assess
      expect(key.scopes).toEqual([...SCOPES]);
      expect(key.scopes).toContain('webhooks');
    });

    it('refuses a reference to a resource that does not exist locally, naming the variable', () => {
      // Act
      const resolve = () => resolveEnvironment({ BATON_TYPO: { Ref: 'NoSuchTable' } }, stack.physical);

      // Assess
      expect(resolve).toThrow(UnsupportedTemplateError);
      expect(resolve).toThrow(
        'environment variable BATON_TYPO: cannot resolve {"Ref":"NoSuchTable"} locally',
      );
    });
  });

  describe('provision', () => {
    it('creates every table of the plan on dynalite, Messages with its SES message id index', async () => {
      // Act
      const described = await Promise.all(
        plan.tables.map((t) =>
          stack.clients.dynamo.send(
            new DescribeTableCommand({ TableName: stack.physical.tables.get(t.logicalId) }),
          ),
        ),
      );

      // Assess
      expect(described.map((d) => d.Table?.TableStatus)).toEqual(plan.tables.map(() => 'ACTIVE'));
      const messages = described.find((d) => d.Table?.TableName === stack.tables.messages);
      expect(messages?.Table?.GlobalSecondaryIndexes?.map((g) => g.IndexName)).toEqual([
        Keys.messages.sesMessageIdIndex,
      ]);
    });

    it('creates every queue with the redrive policy naming its DLQ’s ARN', async () => {
      // Act
      const attributes = await Promise.all(
        plan.queues.map(async (q) => {
          const url = stack.physical.queues.get(q.logicalId)?.url ?? '';
          const out = await stack.clients.sqs.send(
            new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }),
          );
          return [q, out.Attributes ?? {}] as const;
        }),
      );

      // Assess
      for (const [q, attrs] of attributes) {
        if (!q.redrive) {
          expect(attrs.RedrivePolicy).toBeUndefined();
          continue;
        }
        expect(JSON.parse(attrs.RedrivePolicy ?? '{}')).toEqual({
          deadLetterTargetArn: stack.physical.queues.get(q.redrive.deadLetterQueue)?.arn,
          maxReceiveCount: q.redrive.maxReceiveCount,
        });
        expect(attrs.VisibilityTimeout).toBe(String(q.visibilityTimeout));
      }
    });
  });

  /** The logical id of a lane's queue, read from the api function's environment in the template. */
  function queueIdOf(lane: 'transactional' | 'broadcast'): string {
    const api = plan.functions.find((f) => f.entry === 'lambdas/api/handler.ts');
    const ref =
      api?.environment[lane === 'transactional' ? EnvVar.transactionalQueueUrl : EnvVar.broadcastQueueUrl];
    const id = (ref as { Ref?: unknown } | undefined)?.Ref;
    if (typeof id !== 'string') throw new Error(`the api function names no ${lane} queue by Ref`);
    return id;
  }
});
