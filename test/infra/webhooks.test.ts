import type { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ENTRY_METADATA_KEY,
  EnvVar,
  Keys,
  LANES,
  METRICS_NAMESPACE,
  WebhookMetric,
} from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { MAX_MESSAGE_AGE } from '../../lib/baton-stack.ts';
import { WEBHOOK_MAX_RECEIVE_COUNT, WEBHOOK_SERVICE } from '../../lib/constructs/webhook-delivery.ts';
import {
  asArray,
  environmentOf,
  logicalIdOf,
  permissionsOf,
  props,
  referencedId,
  render,
  resourceOf,
  resourcesOfType,
  statementsOf,
  synthTemplate,
} from './support.ts';

const ref = (construct: IConstruct): string => `<${logicalIdOf(construct)}>`;

interface AlarmJson {
  readonly AlarmDescription?: string;
  readonly MetricName?: string;
  readonly Namespace?: string;
  readonly ExtendedStatistic?: string;
  readonly Dimensions?: { Name: string; Value: unknown }[];
  readonly Threshold: number;
  readonly ComparisonOperator: string;
  readonly Metrics?: { Expression?: string }[];
  readonly AlarmActions?: unknown[];
}

describe('webhooks infrastructure (issue 14)', () => {
  let template: Template;
  let stack: BatonStack;
  let smtpTemplate: Template;
  let smtpStack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
    ({ template: smtpTemplate, stack: smtpStack } = synthTemplate({
      context: { smtp: true, smtpCertificateSecret: 'baton/smtp-tls' },
    }));
  });

  describe('the Webhooks table', () => {
    it('keys items on string "pk" and "sk", expiring logs through "expiresAt", like the Guard table', () => {
      // Act
      const table = resourceOf(template, stack.tables.webhooks);

      // Assess
      expect(props(table).KeySchema).toEqual([
        { AttributeName: Keys.webhooks.partition, KeyType: 'HASH' },
        { AttributeName: Keys.webhooks.sort, KeyType: 'RANGE' },
      ]);
      expect(props(table).AttributeDefinitions).toEqual([
        { AttributeName: Keys.webhooks.partition, AttributeType: 'S' },
        { AttributeName: Keys.webhooks.sort, AttributeType: 'S' },
      ]);
      expect(props(table).TimeToLiveSpecification).toEqual({
        AttributeName: Keys.webhooks.ttl,
        Enabled: true,
      });
      expect(props(table).GlobalSecondaryIndexes).toBeUndefined();
    });

    it('is on-demand, point-in-time recoverable, encrypted and retained when the stack goes', () => {
      // Act
      const table = resourceOf(template, stack.tables.webhooks);

      // Assess: the endpoints' secrets are not reproducible; deleting the stack must not lose them.
      expect(props(table)).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      });
      expect(props(table).TableName).toBeUndefined();
      expect(table).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    });
  });

  describe('the delivery queue', () => {
    it('dead-letters after five receives (crashes: retries are new messages), hides a batch 180 s and keeps messages 4 days', () => {
      // Act
      const queue = props(resourceOf(template, stack.webhooks.queue.queue));
      const dlq = props(resourceOf(template, stack.webhooks.queue.deadLetterQueue));

      // Assess
      expect(queue).toMatchObject({
        VisibilityTimeout: 180,
        MessageRetentionPeriod: 4 * 24 * 3600,
        SqsManagedSseEnabled: true,
        RedrivePolicy: {
          deadLetterTargetArn: { 'Fn::GetAtt': [logicalIdOf(stack.webhooks.queue.deadLetterQueue), 'Arn'] },
          maxReceiveCount: 5,
        },
      });
      expect(dlq).toMatchObject({ MessageRetentionPeriod: 14 * 24 * 3600, SqsManagedSseEnabled: true });
      expect(queue.QueueName).toBeUndefined();
    });

    it('denies every request without TLS on the queue and on its dead-letter queue', () => {
      // Prepare
      const policies = Object.values(resourcesOfType(template, 'AWS::SQS::QueuePolicy'));

      // Act
      const tlsOnly = policies
        .filter((policy) =>
          statementsOf(props(policy).PolicyDocument).some(
            (s) =>
              s.Effect === 'Deny' &&
              JSON.stringify(s.Principal) === JSON.stringify({ AWS: '*' }) &&
              s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
          ),
        )
        .flatMap((policy) => asArray(props(policy).Queues as unknown[]).map(referencedId));

      // Assess
      expect(tlsOnly).toEqual(
        expect.arrayContaining([
          logicalIdOf(stack.webhooks.queue.queue),
          logicalIdOf(stack.webhooks.queue.deadLetterQueue),
        ]),
      );
    });
  });

  /** The role's statements on the Webhooks table: their actions and dynamodb:LeadingKeys patterns. */
  const confinedOn = (s: BatonStack, role: IConstruct) => {
    const table = ref(s.tables.webhooks);
    return Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))
      .filter((policy) =>
        asArray(props(policy).Roles as unknown[])
          .map(render)
          .includes(ref(role)),
      )
      .flatMap((policy) => statementsOf(props(policy).PolicyDocument))
      .filter((st) => asArray(st.Resource).map(render).includes(table))
      .map((st) => [asArray(st.Action), st.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys']]);
  };

  describe('the delivery function', () => {
    it('runs lambdas/webhooks/handler.ts on Node.js 24, arm64, 256 MB, for at most 30 s, as baton-webhooks', () => {
      // Act
      const fn = resourceOf(template, stack.webhooks.handler.function);

      // Assess
      expect(fn.Metadata?.[ENTRY_METADATA_KEY]).toBe('lambdas/webhooks/handler.ts');
      expect(props(fn)).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        MemorySize: 256,
        Timeout: 30,
        LoggingConfig: { LogFormat: 'JSON' },
      });
      expect(environmentOf(template, stack.webhooks.handler.function)).toEqual({
        [EnvVar.webhooksTable]: { Ref: logicalIdOf(stack.tables.webhooks) },
        [EnvVar.webhookQueueUrl]: { Ref: logicalIdOf(stack.webhooks.queue.queue) },
        // Near it the function queues a long-deferred job afresh instead of letting SQS dead-letter it.
        [EnvVar.maxReceiveCount]: String(WEBHOOK_MAX_RECEIVE_COUNT),
        POWERTOOLS_SERVICE_NAME: WEBHOOK_SERVICE,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      });
    });

    it('drains the queue in batches of 10 with partial batch failures, 10 at once by default', () => {
      // Act
      const mapping = props(resourceOf(template, stack.webhooks.eventSourceMapping));

      // Assess: no batching window, a new event's first attempt waits for nothing.
      expect(mapping).toMatchObject({
        EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(stack.webhooks.queue.queue), 'Arn'] },
        FunctionName: { Ref: logicalIdOf(stack.webhooks.handler.function) },
        BatchSize: 10,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: 10 },
      });
      expect(mapping.MaximumBatchingWindowInSeconds).toBeUndefined();
    });

    it('takes its maximum concurrency from webhookMaxConcurrency', () => {
      // Act
      const custom = synthTemplate({ context: { webhookMaxConcurrency: '4' } });

      // Assess
      expect(
        props(resourceOf(custom.template, custom.stack.webhooks.eventSourceMapping)).ScalingConfig,
      ).toEqual({ MaximumConcurrency: 4 });
    });

    it('may read and write endpoints and their state, record attempts, publish, queue retries and hide a message', () => {
      // Act
      const permissions = permissionsOf(template, stack.webhooks.handler.role);

      // Assess
      expect(permissions).toEqual({
        [ref(stack.webhooks.handler.logGroup)]: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        [ref(stack.webhooks.queue.queue)]: [
          'sqs:ChangeMessageVisibility',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
          'sqs:ReceiveMessage',
          'sqs:SendMessage',
        ],
        [ref(stack.tables.webhooks)]: [
          'dynamodb:BatchWriteItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:Query',
        ],
      });
    });

    it('confines each of its calls on the table to the partitions it needs', () => {
      // Act
      const confined = confinedOn(stack, stack.webhooks.handler.role);

      // Assess: state and attempts (endpoint#), the endpoint read and disabled (tenant#), and the
      // disabled event published as a producer publishes.
      // (CDK merges the statements of one resource and condition.)
      expect(confined).toEqual([
        [['dynamodb:GetItem', 'dynamodb:PutItem'], ['endpoint#*']],
        [['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'], ['tenant#*']],
        [['dynamodb:BatchWriteItem'], ['events#*']],
      ]);
    });
  });

  describe('the producers', () => {
    const producers = (s: BatonStack) => [
      ['api', s.api.handler.function] as const,
      ...LANES.map((lane) => [`${lane} sender`, s.lanes[lane].sender.function] as const),
      ['feedback', s.feedback.handler.function] as const,
    ];

    it('gives the api, both senders and feedback the table and the queue', () => {
      // Act
      const environments = producers(stack).map(([name, fn]) => {
        const env = environmentOf(template, fn);
        return [name, env[EnvVar.webhooksTable], env[EnvVar.webhookQueueUrl]];
      });

      // Assess
      expect(environments).toEqual(
        producers(stack).map(([name]) => [
          name,
          { Ref: logicalIdOf(stack.tables.webhooks) },
          { Ref: logicalIdOf(stack.webhooks.queue.queue) },
        ]),
      );
    });

    it('gives the SMTP server (smtp=true) the table and the queue', () => {
      // Prepare
      const smtp = smtpStack.smtp;
      if (smtp === undefined) throw new Error('no SMTP service');
      const definitions = Object.values(resourcesOfType(smtpTemplate, 'AWS::ECS::TaskDefinition'));

      // Act
      const server = definitions
        .flatMap(
          (d) =>
            props(d).ContainerDefinitions as {
              Name: string;
              Environment?: { Name: string; Value: unknown }[];
            }[],
        )
        .find((c) => c.Name === 'Server');
      const env = Object.fromEntries((server?.Environment ?? []).map((e) => [e.Name, e.Value]));

      // Assess
      expect(env[EnvVar.webhooksTable]).toEqual({ Ref: logicalIdOf(smtpStack.tables.webhooks) });
      expect(env[EnvVar.webhookQueueUrl]).toEqual({ Ref: logicalIdOf(smtpStack.webhooks.queue.queue) });
    });

    it('lets the senders, feedback and the SMTP tasks only find subscribers, keep events and queue jobs', () => {
      // Prepare
      const smtp = smtpStack.smtp;
      if (smtp === undefined) throw new Error('no SMTP service');
      const onWebhooks = (t: Template, s: BatonStack, role: IConstruct) => {
        const permissions = permissionsOf(t, role);
        return [permissions[ref(s.tables.webhooks)], permissions[ref(s.webhooks.queue.queue)]];
      };
      const publishing = [['dynamodb:BatchWriteItem', 'dynamodb:Query'], ['sqs:SendMessage']];

      // Act
      const granted = [
        ...LANES.map((lane) => onWebhooks(template, stack, stack.lanes[lane].sender.role)),
        onWebhooks(template, stack, stack.feedback.handler.role),
        onWebhooks(smtpTemplate, smtpStack, smtp.taskDefinition.taskRole),
      ];

      // Assess
      expect(granted).toEqual([publishing, publishing, publishing, publishing]);
    });

    it('confines each producer’s Query to endpoint partitions and its batched writes to event partitions', () => {
      // Act
      const confined = [
        ...LANES.map((lane) => stack.lanes[lane].sender.role),
        stack.feedback.handler.role,
      ].map((role) => confinedOn(stack, role));

      // Assess: the partitions Keys.webhooks documents (tenant#<t> endpoints, events#<t> events).
      const expected = [
        [['dynamodb:Query'], ['tenant#*']],
        [['dynamodb:BatchWriteItem'], ['events#*']],
      ];
      expect(confined).toEqual([expected, expected, expected]);
    });

    it('lets the api manage endpoints and read the logs besides publishing', () => {
      // Act
      const permissions = permissionsOf(template, stack.api.handler.role);
      const confined = confinedOn(stack, stack.api.handler.role);

      // Assess: endpoints (tenant#), the replay log (events#), attempts and the hourly replay budget
      // (endpoint#), each confined.
      expect(permissions[ref(stack.tables.webhooks)]).toEqual([
        'dynamodb:BatchWriteItem',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ]);
      expect(confined).toEqual([
        [['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'], ['tenant#*']],
        [['dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:Query'], ['events#*']],
        [['dynamodb:Query', 'dynamodb:UpdateItem'], ['endpoint#*']],
      ]);
      expect(permissions[ref(stack.webhooks.queue.queue)]).toEqual(['sqs:SendMessage']);
    });

    it('grants nothing on the table or the queue through a wildcard, and no one else any of it', () => {
      // Prepare
      const table = ref(stack.tables.webhooks);
      const queue = ref(stack.webhooks.queue.queue);
      const roles = [
        stack.api.handler.role,
        ...LANES.map((lane) => stack.lanes[lane].sender.role),
        stack.feedback.handler.role,
        stack.webhooks.handler.role,
      ].map((role) => ref(role));

      // Act
      const statements = Object.values(resourcesOfType(template, 'AWS::IAM::Policy')).flatMap((policy) =>
        statementsOf(props(policy).PolicyDocument).map((statement) => ({
          roles: asArray(props(policy).Roles as unknown[]).map(render),
          resources: asArray(statement.Resource).map(render),
          actions: asArray(statement.Action),
        })),
      );
      const touching = statements.filter((s) =>
        s.resources.some((r) => r.startsWith(table) || r.startsWith(queue)),
      );

      // Assess
      expect(touching.length).toBeGreaterThan(0);
      for (const statement of touching) {
        expect(statement.actions.filter((a) => a.includes('*'))).toEqual([]);
        expect(statement.resources.filter((r) => r.includes('*'))).toEqual([]);
        expect(roles).toEqual(expect.arrayContaining(statement.roles));
      }
    });
  });

  describe('monitoring', () => {
    let alarms: AlarmJson[];

    beforeAll(() => {
      alarms = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm')).map(
        (a) => props(a) as unknown as AlarmJson,
      );
    });

    const queueAlarm = (metricName: string, queue: IConstruct): AlarmJson | undefined =>
      alarms.find(
        (a) =>
          a.MetricName === metricName &&
          (a.Dimensions ?? []).some(
            (d) =>
              d.Name === 'QueueName' &&
              JSON.stringify(d.Value) === JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(queue), 'QueueName'] }),
          ),
      );

    it('alarms on any dead-lettered delivery and on a message older than the longest deliberate wait', () => {
      // Act
      const deadLetters = queueAlarm(
        'ApproximateNumberOfMessagesVisible',
        stack.webhooks.queue.deadLetterQueue,
      );
      const backlog = queueAlarm('ApproximateAgeOfOldestMessage', stack.webhooks.queue.queue);

      // Assess: a retry may be hidden 12 h after a 15 min delay, and SQS counts it in the age.
      expect(deadLetters).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
      expect(backlog?.Threshold).toBe(MAX_MESSAGE_AGE.webhooks.toSeconds());
      expect(MAX_MESSAGE_AGE.webhooks.toSeconds()).toBeGreaterThan(12 * 3600 + 15 * 60);
    });

    it('alarms on errors of the delivery function', () => {
      // Act
      const errors = alarms.find(
        (a) =>
          a.MetricName === 'Errors' &&
          (a.Dimensions ?? []).some(
            (d) =>
              d.Name === 'FunctionName' &&
              JSON.stringify(d.Value) ===
                JSON.stringify({ Ref: logicalIdOf(stack.webhooks.handler.function) }),
          ),
      );

      // Assess
      expect(errors).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    });

    it('alarms on any WebhookPublishFailures, from whichever process published', () => {
      // Act
      const alarm = alarms.find((a) =>
        (a.Metrics ?? []).some((m) => m.Expression?.includes(WebhookMetric.publishFailures)),
      );

      // Assess
      expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
      expect(alarm?.Metrics?.[0]?.Expression).toBe(
        `SELECT SUM(WebhookPublishFailures) FROM SCHEMA("${METRICS_NAMESPACE}", service)`,
      );
      expect(alarm?.AlarmActions).toHaveLength(1);
    });

    it('alarms when the p99 from state change to first attempt passes 15 minutes', () => {
      // Act
      const alarm = alarms.find((a) => a.MetricName === WebhookMetric.firstAttemptLatency);

      // Assess
      expect(alarm).toMatchObject({
        Namespace: METRICS_NAMESPACE,
        ExtendedStatistic: 'p99',
        Dimensions: [{ Name: 'service', Value: WEBHOOK_SERVICE }],
        Threshold: 15 * 60 * 1000,
        ComparisonOperator: 'GreaterThanThreshold',
      });
    });

    it('charts attempts, deliveries, failed attempts and the first-attempt latency p99', () => {
      // Act
      const body = JSON.stringify(
        props(resourceOf(template, stack.monitoring.dashboard)).DashboardBody ?? '',
      );

      // Assess
      for (const name of [
        WebhookMetric.attempts,
        WebhookMetric.delivered,
        WebhookMetric.failedAttempts,
        WebhookMetric.firstAttemptLatency,
        WebhookMetric.publishFailures,
      ]) {
        expect(body).toContain(name);
      }
      expect(body).toContain('p99');
    });
  });

  it('publishes the table name and the queue URL', () => {
    // Act
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

    // Assess
    expect(outputs.WebhooksTableName?.Value).toEqual({ Ref: logicalIdOf(stack.tables.webhooks) });
    expect(outputs.WebhookQueueUrl?.Value).toEqual({ Ref: logicalIdOf(stack.webhooks.queue.queue) });
  });
});
