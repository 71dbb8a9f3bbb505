import { Duration, Stack } from 'aws-cdk-lib';
import { Capture, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONFIRMATION_WINDOW_MS } from '../../lambdas/sender/app.ts';
import {
  confirmationWindowSeconds,
  FEEDBACK_RACE_WINDOW_SECONDS,
  SES_EVENT_ALLOWANCE_SECONDS,
} from '../../lambdas/shared/event-path.ts';
import { EnvVar, LANES } from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { SecureQueue } from '../../lib/constructs/secure-queue.ts';
import {
  asArray,
  type CfnResource,
  environmentOf,
  logicalIdOf,
  props,
  referencedId,
  resourceOf,
  resourcesOfType,
  statementsOf,
  synthTemplate,
} from './support.ts';

const FOUR_DAYS = 4 * 24 * 3600;
const FOURTEEN_DAYS = 14 * 24 * 3600;

describe('queues', () => {
  let template: Template;
  let stack: BatonStack;
  let queues: Record<string, CfnResource>;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
    queues = resourcesOfType(template, 'AWS::SQS::Queue');
  });

  it('gives every lane, the feedback path, the erasure worker and webhook delivery a queue with its own dead-letter queue', () => {
    // Prepare
    const expected = [
      ...LANES.map((lane) => stack.lanes[lane].queue),
      stack.feedback.queue,
      stack.erasure.queue,
      stack.webhooks.queue,
    ];

    // Act
    const wiring = expected.map((secure) => ({
      source: logicalIdOf(secure.queue),
      dlq: referencedId(
        (props(resourceOf(template, secure.queue)).RedrivePolicy as { deadLetterTargetArn: unknown })
          .deadLetterTargetArn,
      ),
    }));

    // Assess
    for (const [index, secure] of expected.entries()) {
      expect(wiring[index]?.dlq).toBe(logicalIdOf(secure.deadLetterQueue));
    }
    expect(new Set(wiring.map((w) => w.dlq)).size).toBe(expected.length);
    expect(Object.keys(queues)).toHaveLength(expected.length * 2);
  });

  it('gives every lane queue a dead-letter queue with maxReceiveCount >= 5', () => {
    // Prepare
    const dlq = new Capture();
    const receives = new Capture();

    // Act
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: receives },
    });
    const redrives = new Map<string, number>();
    do redrives.set(dlq.asString(), receives.asNumber());
    while (dlq.next() && receives.next());

    // Assess: lanes retry longer (SES throttling is transient), erasure dead-letters sooner; the
    // feedback queue's receives outlast the race window (see 'event path timings'); webhook
    // retries are new messages, so its receives repeat only after crashes (webhooks.test.ts).
    expect(Object.fromEntries(redrives)).toEqual({
      [logicalIdOf(stack.webhooks.queue.deadLetterQueue)]: 5,
      [logicalIdOf(stack.lanes.transactional.queue.deadLetterQueue)]: 10,
      [logicalIdOf(stack.lanes.broadcast.queue.deadLetterQueue)]: 10,
      [logicalIdOf(stack.feedback.queue.deadLetterQueue)]: 6,
      [logicalIdOf(stack.erasure.queue.deadLetterQueue)]: 5,
    });
  });

  it('keeps dead-lettered messages (14 days) longer than their source queue keeps them (4 days)', () => {
    // Prepare
    const dlq = new Capture();
    const sources = Object.values(
      template.findResources('AWS::SQS::Queue', {
        Properties: { RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] } } },
      }) as Record<string, CfnResource>,
    );

    // Act / Assess
    expect(sources).toHaveLength(5);
    for (const source of sources) {
      const target = referencedId(
        (props(source).RedrivePolicy as { deadLetterTargetArn: unknown }).deadLetterTargetArn,
      );
      expect(props(source).MessageRetentionPeriod).toBe(FOUR_DAYS);
      expect(props(queues[target] ?? { Type: 'missing' }).MessageRetentionPeriod).toBe(FOURTEEN_DAYS);
    }
  });

  it('encrypts every queue at rest', () => {
    // Act / Assess
    template.allResourcesProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
  });

  it('denies every non-TLS request on every queue', () => {
    // Prepare
    const policies = Object.values(resourcesOfType(template, 'AWS::SQS::QueuePolicy'));

    // Act
    const tlsOnly = new Set(
      policies.flatMap((policy) => {
        const denies = statementsOf(props(policy).PolicyDocument).some(
          (statement) =>
            statement.Effect === 'Deny' &&
            JSON.stringify(statement.Principal) === JSON.stringify({ AWS: '*' }) &&
            statement.Condition?.Bool?.['aws:SecureTransport'] === 'false',
        );
        return denies ? asArray(props(policy).Queues as unknown[]).map(referencedId) : [];
      }),
    );

    // Assess
    expect([...tlsOnly].sort()).toEqual(Object.keys(queues).sort());
  });

  it('sets each consumed queue visibility to at least 6x its function timeout', () => {
    // Prepare
    const mappings = Object.values(resourcesOfType(template, 'AWS::Lambda::EventSourceMapping'));
    const functions = resourcesOfType(template, 'AWS::Lambda::Function');

    // Act
    const checked = mappings.map((mapping) => {
      const queue = queues[referencedId(props(mapping).EventSourceArn)];
      const fn = functions[referencedId(props(mapping).FunctionName)];
      return {
        visibility: props(queue ?? { Type: 'missing' }).VisibilityTimeout as number,
        timeout: props(fn ?? { Type: 'missing' }).Timeout as number,
      };
    });

    // Assess
    expect(checked).toHaveLength(5);
    for (const { visibility, timeout } of checked) {
      expect(timeout).toBeGreaterThan(0);
      expect(visibility).toBeGreaterThanOrEqual(6 * timeout);
    }
  });

  it('lets only the feedback topic send to the feedback queue', () => {
    // Prepare
    const feedbackQueue = logicalIdOf(stack.feedback.queue.queue);
    const topic = logicalIdOf(stack.ses.feedbackTopic);

    // Act
    const allows = Object.values(resourcesOfType(template, 'AWS::SQS::QueuePolicy'))
      .filter((policy) =>
        asArray(props(policy).Queues as unknown[]).some((q) => referencedId(q) === feedbackQueue),
      )
      .flatMap((policy) => statementsOf(props(policy).PolicyDocument))
      .filter((statement) => statement.Effect === 'Allow');

    // Assess
    expect(allows).toEqual([
      {
        Effect: 'Allow',
        Action: 'sqs:SendMessage',
        Principal: { Service: 'sns.amazonaws.com' },
        Resource: { 'Fn::GetAtt': [feedbackQueue, 'Arn'] },
        Condition: { ArnEquals: { 'aws:SourceArn': { Ref: topic } } },
      },
    ]);
  });
});

describe('SecureQueue', () => {
  it('refuses a maxReceiveCount below 5, which dead-letters messages on a throttling blip', () => {
    // Prepare
    const stack = new Stack();

    // Act / Assess
    expect(
      () => new SecureQueue(stack, 'Queue', { visibilityTimeout: Duration.seconds(60), maxReceiveCount: 3 }),
    ).toThrow('SecureQueue: maxReceiveCount must be an integer from 5 to 1000, got 3');
  });

  it('refuses a dead-letter retention that is not longer than the source retention', () => {
    // Prepare
    const stack = new Stack();

    // Act / Assess
    expect(
      () =>
        new SecureQueue(stack, 'Queue', {
          visibilityTimeout: Duration.seconds(60),
          retentionPeriod: Duration.days(4),
          deadLetterRetentionPeriod: Duration.days(4),
        }),
    ).toThrow(/deadLetterRetentionPeriod \(4 days\) must be longer than retentionPeriod \(4 days\)/);
  });
});

describe('event path timings', () => {
  let template: Template;
  let stack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
  });

  const feedbackQueue = () => props(resourceOf(template, stack.feedback.queue.queue));
  const feedbackBatchingWindow = () =>
    Number(props(resourceOf(template, stack.feedback.eventSourceMapping)).MaximumBatchingWindowInSeconds);

  it('gives the feedback queue a last receive after the race window, so a late event for an unknown message is classified orphaned', () => {
    // Act
    const visibility = Number(feedbackQueue().VisibilityTimeout);
    const receives = (feedbackQueue().RedrivePolicy as { maxReceiveCount: number }).maxReceiveCount;

    // Assess: receive n comes at least (n - 1) visibility timeouts after the first.
    expect((receives - 1) * visibility).toBeGreaterThan(FEEDBACK_RACE_WINDOW_SECONDS);
    expect({ visibility, receives }).toEqual({ visibility: 185, receives: 6 });
  });

  it.each(LANES)(
    'tells the %s sender to wait for SES’s evidence longer than the feedback path’s worst normal latency',
    (lane) => {
      // Prepare
      const visibility = Number(feedbackQueue().VisibilityTimeout);
      const batching = feedbackBatchingWindow();

      // Act
      const env = environmentOf(template, stack.lanes[lane].sender.function);

      // Assess: published, batched, failed once and received again after the visibility timeout.
      const window = Number(env[EnvVar.confirmationWindowSeconds]);
      expect(window).toBe(
        confirmationWindowSeconds({
          publishSeconds: SES_EVENT_ALLOWANCE_SECONDS,
          batchingWindowSeconds: batching,
          visibilitySeconds: visibility,
        }),
      );
      expect(window).toBeGreaterThan(SES_EVENT_ALLOWANCE_SECONDS + batching + visibility);
      expect(window).toBe(255);
      // The sender's fallback, when no window is set, is this same figure (a copy must not drift).
      expect(CONFIRMATION_WINDOW_MS).toBe(window * 1000);
    },
  );
});
