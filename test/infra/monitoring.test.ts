import type { Template } from 'aws-cdk-lib/assertions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GuardMetric, LANES, METRICS_NAMESPACE, SENDER_SERVICE } from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import {
  DASHBOARD_COUNTERS,
  LATENCIES,
  SEND_FAILURE_COUNT_THRESHOLD,
  SEND_FAILURE_MIN_ATTEMPTS,
  SEND_FAILURE_RATE_THRESHOLD,
} from '../../lib/constructs/monitoring.ts';
import {
  type CfnResource,
  logicalIdOf,
  props,
  resourceOf,
  resourcesOfType,
  statementsOf,
  synthTemplate,
} from './support.ts';

interface AlarmProps {
  MetricName: string;
  Namespace: string;
  Threshold: number;
  ComparisonOperator: string;
  Dimensions?: { Name: string; Value: unknown }[];
  AlarmActions?: unknown[];
  OKActions?: unknown[];
  TreatMissingData?: string;
}

function alarmsOn(
  alarms: AlarmProps[],
  metricName: string,
  dimension?: { Name: string; Value: unknown },
): AlarmProps[] {
  return alarms.filter(
    (alarm) =>
      alarm.MetricName === metricName &&
      (dimension === undefined ||
        (alarm.Dimensions ?? []).some(
          (d) => d.Name === dimension.Name && JSON.stringify(d.Value) === JSON.stringify(dimension.Value),
        )),
  );
}

const queueNameDimension = (queue: IQueue): { Name: string; Value: unknown } => ({
  Name: 'QueueName',
  Value: { 'Fn::GetAtt': [logicalIdOf(queue), 'QueueName'] },
});

describe('monitoring', () => {
  let template: Template;
  let stack: BatonStack;
  let alarms: AlarmProps[];

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
    alarms = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm')).map(
      (alarm) => props(alarm) as unknown as AlarmProps,
    );
  });

  it('alarms as soon as any dead-letter queue holds a message', () => {
    // Prepare
    const deadLetterQueues = [
      ...LANES.map((lane) => stack.lanes[lane].queue),
      stack.feedback.queue,
      stack.erasure.queue,
    ].map((secure) => secure.deadLetterQueue);

    // Act / Assess
    for (const dlq of deadLetterQueues) {
      const [alarm, ...others] = alarmsOn(
        alarms,
        'ApproximateNumberOfMessagesVisible',
        queueNameDimension(dlq),
      );
      expect(others).toEqual([]);
      expect(alarm).toMatchObject({
        Namespace: 'AWS/SQS',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
    }
  });

  it.each([
    ['transactional', 300],
    ['broadcast', 3600],
    ['erasure', 3600],
  ] as const)('alarms when the oldest %s message is older than %i s', (name, seconds) => {
    // Prepare
    const queue = name === 'erasure' ? stack.erasure.queue : stack.lanes[name].queue;

    // Act
    const [alarm, ...others] = alarmsOn(
      alarms,
      'ApproximateAgeOfOldestMessage',
      queueNameDimension(queue.queue),
    );

    // Assess
    expect(others).toEqual([]);
    expect(alarm).toMatchObject({ Threshold: seconds, ComparisonOperator: 'GreaterThanThreshold' });
  });

  it('alarms on errors of every function', () => {
    // Prepare
    const functions = [
      stack.api.handler.function,
      ...LANES.map((lane) => stack.lanes[lane].sender.function),
      stack.feedback.handler.function,
      stack.erasure.worker.function,
    ];

    // Act / Assess
    for (const fn of functions) {
      const [alarm, ...others] = alarmsOn(alarms, 'Errors', {
        Name: 'FunctionName',
        Value: { Ref: logicalIdOf(fn) },
      });
      expect(others).toEqual([]);
      expect(alarm).toMatchObject({
        Namespace: 'AWS/Lambda',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
    }
  });

  it('alarms on the SES account bounce rate at 4 % and complaint rate at 0.08 %', () => {
    // Act
    const bounce = alarmsOn(alarms, 'Reputation.BounceRate');
    const complaint = alarmsOn(alarms, 'Reputation.ComplaintRate');

    // Assess
    expect(bounce).toEqual([
      expect.objectContaining({
        Namespace: 'AWS/SES',
        Threshold: 0.04,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      }),
    ]);
    expect(complaint).toEqual([
      expect.objectContaining({
        Namespace: 'AWS/SES',
        Threshold: 0.0008,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      }),
    ]);
    // Account-level metrics (no dimensions): the ones SES enforces on.
    expect(bounce[0]?.Dimensions).toBeUndefined();
  });

  it('alarms when any lane’s sender reports SES sending paused (the metric and dimensions the senders emit)', () => {
    // Act: a metric-math alarm adding up sendingPaused of every lane
    const paused = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm'))
      .map(
        (alarm) => props(alarm) as { Metrics?: Array<{ MetricStat?: { Metric: Record<string, unknown> } }> },
      )
      .filter((alarm) => alarm.Metrics?.some((m) => m.MetricStat?.Metric.MetricName === 'sendingPaused'));

    // Assess
    expect(paused).toHaveLength(1);
    const [alarm] = paused as Array<Record<string, unknown> & { Metrics: Array<Record<string, unknown>> }>;
    expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    const stats = alarm?.Metrics.filter((m) => m.MetricStat !== undefined).map(
      (m) => (m.MetricStat as { Metric: { Namespace: string; Dimensions: unknown } }).Metric,
    );
    expect(stats).toEqual(
      LANES.map((lane) =>
        expect.objectContaining({
          Namespace: METRICS_NAMESPACE,
          Dimensions: expect.arrayContaining([
            { Name: 'service', Value: SENDER_SERVICE },
            { Name: 'stream', Value: lane },
          ]),
        }),
      ),
    );
  });

  /** Metric-math alarms, with the metrics they read (id → MetricStat.Metric) and their expression. */
  interface MathAlarm {
    Threshold: number;
    ComparisonOperator: string;
    expression: string;
    stats: Record<string, { MetricName: string; Namespace: string; Dimensions: unknown[] }>;
    periods: number[];
  }
  const mathAlarms = (): MathAlarm[] =>
    Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm'))
      .map((alarm) => props(alarm) as Record<string, unknown>)
      .filter((alarm) => Array.isArray(alarm.Metrics))
      .map((alarm) => {
        const metrics = alarm.Metrics as Array<{
          Id: string;
          Expression?: string;
          ReturnData?: boolean;
          MetricStat?: { Metric: MathAlarm['stats'][string]; Period: number };
        }>;
        return {
          Threshold: alarm.Threshold as number,
          ComparisonOperator: alarm.ComparisonOperator as string,
          expression: metrics.find((m) => m.Expression !== undefined)?.Expression ?? '',
          stats: Object.fromEntries(
            metrics.flatMap((m) => (m.MetricStat ? [[m.Id, m.MetricStat.Metric]] : [])),
          ),
          periods: metrics.flatMap((m) => (m.MetricStat ? [m.MetricStat.Period] : [])),
        };
      });
  const senderDimensions = (lane: string) =>
    expect.arrayContaining([
      { Name: 'service', Value: SENDER_SERVICE },
      { Name: 'stream', Value: lane },
    ]);

  it.each(LANES)('alarms on a burst of permanent send failures of the %s stream', (lane) => {
    // Act
    const [alarm, ...others] = mathAlarms().filter(
      (a) =>
        Object.values(a.stats).length === 1 &&
        Object.values(a.stats)[0]?.MetricName === 'messagesFailed' &&
        JSON.stringify(Object.values(a.stats)[0]?.Dimensions).includes(`"${lane}"`),
    );

    // Assess
    expect(others).toEqual([]);
    expect(alarm).toMatchObject({
      Threshold: SEND_FAILURE_COUNT_THRESHOLD,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      expression: 'FILL(failed, 0)',
      stats: { failed: { Namespace: METRICS_NAMESPACE, Dimensions: senderDimensions(lane) } },
      periods: [300],
    });
  });

  it.each(LANES)('alarms when permanent failures are a tenth of the %s stream’s sends in an hour', (lane) => {
    // Act
    const [alarm, ...others] = mathAlarms().filter(
      (a) => a.stats[`failed_${lane}`] !== undefined && a.stats[`sent_${lane}`] !== undefined,
    );

    // Assess
    expect(others).toEqual([]);
    expect(alarm).toMatchObject({
      Threshold: SEND_FAILURE_RATE_THRESHOLD,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      expression: `IF((FILL(sent_${lane}, 0) + FILL(failed_${lane}, 0)) >= ${SEND_FAILURE_MIN_ATTEMPTS}, FILL(failed_${lane}, 0) / (FILL(sent_${lane}, 0) + FILL(failed_${lane}, 0)), 0)`,
      stats: {
        [`sent_${lane}`]: { MetricName: 'messagesSent', Dimensions: senderDimensions(lane) },
        [`failed_${lane}`]: { MetricName: 'messagesFailed', Dimensions: senderDimensions(lane) },
      },
      periods: [3600, 3600],
    });
  });

  it('alarms when an hour of sends brings not one SES event into the feedback queue', () => {
    // Act
    const [alarm, ...others] = mathAlarms().filter((a) => a.stats.arrived !== undefined);

    // Assess
    expect(others).toEqual([]);
    expect(alarm).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      expression:
        'IF((FILL(sent_transactional, 0) + FILL(sent_broadcast, 0)) > 0, IF(FILL(arrived, 0) == 0, 1, 0), 0)',
      stats: {
        arrived: {
          Namespace: 'AWS/SQS',
          MetricName: 'NumberOfMessagesSent',
          Dimensions: [queueNameDimension(stack.feedback.queue.queue)],
        },
        ...Object.fromEntries(
          LANES.map((lane) => [
            `sent_${lane}`,
            { MetricName: 'messagesSent', Dimensions: senderDimensions(lane) },
          ]),
        ),
      },
      periods: [3600, 3600, 3600],
    });
  });

  it('alarms within a minute on every action the abuse guard takes, whichever process took it', () => {
    // Act: a Metrics Insights query, so that every service's and every action's series counts.
    const guard = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm'))
      .map((alarm) => props(alarm) as Record<string, unknown> & { Metrics?: Array<Record<string, unknown>> })
      .filter((alarm) => JSON.stringify(alarm.Metrics ?? []).includes(GuardMetric.action));

    // Assess: the dimension set the guard emits (guard-wiring.ts): Action, Scope and Powertools' service.
    expect(guard).toHaveLength(1);
    expect(guard[0]).toMatchObject({
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: logicalIdOf(stack.monitoring.alarmTopic) }],
      Metrics: [
        {
          Id: expect.any(String),
          Expression: `SELECT SUM(${GuardMetric.action}) FROM SCHEMA("${METRICS_NAMESPACE}", ${GuardMetric.actionDimension}, ${GuardMetric.scopeDimension}, service)`,
          Period: 60,
        },
      ],
    });
  });

  it('notifies the alarm topic from every alarm, on alarm and on recovery, and stays quiet when idle', () => {
    // Prepare
    const topic = { Ref: logicalIdOf(stack.monitoring.alarmTopic) };

    // Act / Assess
    expect(alarms.length).toBeGreaterThanOrEqual(12);
    for (const alarm of alarms) {
      expect(alarm.AlarmActions).toEqual([topic]);
      expect(alarm.OKActions).toEqual([topic]);
      expect(alarm.TreatMissingData).toBe('notBreaching');
    }
  });

  it('encrypts the alarm topic, requires TLS and admits only CloudWatch alarms of this account', () => {
    // Prepare
    const topicId = logicalIdOf(stack.monitoring.alarmTopic);

    // Act
    const statements = Object.values(resourcesOfType(template, 'AWS::SNS::TopicPolicy'))
      .filter((policy) => JSON.stringify(props(policy).Topics) === JSON.stringify([{ Ref: topicId }]))
      .flatMap((policy) => statementsOf(props(policy).PolicyDocument));

    // Assess
    expect(props(resourceOf(template, stack.monitoring.alarmTopic))).toEqual({
      KmsMasterKeyId: { 'Fn::GetAtt': [logicalIdOf(stack.notificationKey.key), 'Arn'] },
    });
    expect(statements.filter((s) => s.Effect === 'Allow')).toEqual([
      expect.objectContaining({
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Condition: expect.objectContaining({
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
        }),
      }),
    ]);
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });

  it('subscribes no one to alarms unless alarmEmail is set', () => {
    // Prepare
    const withEmail = synthTemplate({ context: { alarmEmail: 'ops@example.com' } });

    // Act / Assess
    template.resourcePropertiesCountIs('AWS::SNS::Subscription', { Protocol: 'email' }, 0);
    withEmail.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: logicalIdOf(withEmail.stack.monitoring.alarmTopic) },
    });
  });

  it('charts lanes, functions, SES reputation and the Baton counters on the dashboard', () => {
    // Prepare
    const [dashboard] = Object.values(
      resourcesOfType(template, 'AWS::CloudWatch::Dashboard'),
    ) as CfnResource[];

    // Act: the body is JSON text joined with tokens; keep the text, mark the tokens.
    const join = props(dashboard ?? { Type: 'missing' }).DashboardBody as { 'Fn::Join': [string, unknown[]] };
    const body = join['Fn::Join'][1]
      .map((part) => (typeof part === 'string' ? part : JSON.stringify(part)))
      .join('');

    // Assess
    for (const metric of [
      'messagesFailed',
      'NumberOfMessagesSent',
      'ApproximateNumberOfMessagesVisible',
      'ApproximateAgeOfOldestMessage',
      'Invocations',
      'Errors',
      'Duration',
      'Reputation.BounceRate',
      'Reputation.ComplaintRate',
    ]) {
      expect(body).toContain(metric);
    }
    for (const counter of DASHBOARD_COUNTERS) {
      expect(body).toContain(
        `SEARCH('Namespace=\\"${METRICS_NAMESPACE}\\" MetricName=\\"${counter}\\" stream', 'Sum', 300)`,
      );
    }
    for (const latency of LATENCIES) {
      expect(body).toContain(
        `SEARCH('Namespace=\\"${METRICS_NAMESPACE}\\" MetricName=\\"${latency}\\" stream', 'p95', 300)`,
      );
    }
    expect(LATENCIES).toEqual(['acceptedToSentMs', 'acceptedToDeliveredMs']);
    for (const queue of [...LANES.map((lane) => stack.lanes[lane].queue), stack.feedback.queue]) {
      expect(body).toContain(logicalIdOf(queue.queue));
      expect(body).toContain(logicalIdOf(queue.deadLetterQueue));
    }
    expect(body).toContain(
      `SEARCH('Namespace=\\"${METRICS_NAMESPACE}\\" MetricName=\\"${GuardMetric.action}\\" ${GuardMetric.actionDimension} ${GuardMetric.scopeDimension}', 'Sum', 60)`,
    );
    expect(body).toContain(
      `SEARCH('Namespace=\\"${METRICS_NAMESPACE}\\" MetricName=\\"${GuardMetric.errors}\\"', 'Sum', 300)`,
    );
    expect(DASHBOARD_COUNTERS).toEqual([
      'messagesAccepted',
      'messagesSent',
      'messagesDelivered',
      'messagesBounced',
      'messagesComplained',
    ]);
  });
});
