import { ArnFormat, Aws, Duration, Stack, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type HorizontalAnnotation,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DoctorMetric,
  GuardMetric,
  LANES,
  METRICS_NAMESPACE,
  SENDER_SERVICE,
  WebhookMetric,
} from '../../lambdas/shared/names.ts';
import type { DomainDoctor } from './domain-doctor.ts';
import type { NotificationKey } from './notification-key.ts';
import { SMTP_SERVICE, type SmtpService } from './smtp-service.ts';
import { WEBHOOK_SERVICE } from './webhook-delivery.ts';

/** A queue whose backlog is watched. */
export interface MonitoredQueue {
  /** Short PascalCase name used in construct ids and widget titles, e.g. `Transactional`. */
  readonly name: string;
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
  /** Alarm when the oldest message is older than this: the lane has stopped keeping up. */
  readonly maxMessageAge: Duration;
}

/** A function whose errors are alarmed on. */
export interface MonitoredFunction {
  /** Short PascalCase name used in construct ids and widget titles, e.g. `Api`. */
  readonly name: string;
  readonly function: IFunction;
}

export interface MonitoringProps {
  readonly queues: readonly MonitoredQueue[];
  readonly functions: readonly MonitoredFunction[];
  /** Encrypts the alarm topic; CloudWatch is admitted to it for this account's alarms. */
  readonly notificationKey: NotificationKey;
  /**
   * Subscribed to the alarm topic by email.
   * @default - no subscription (subscribe a pager or chat integration to the topic yourself)
   */
  readonly alarmEmail?: string | undefined;
  /**
   * Account bounce rate (fraction) that raises an alarm. SES puts an account under review at 5 %.
   * @default 0.04
   */
  readonly bounceRateThreshold?: number;
  /**
   * Account complaint rate (fraction) that raises an alarm. SES puts an account under review at 0.1 %.
   * @default 0.0008
   */
  readonly complaintRateThreshold?: number;
  /** Extra widgets (e.g. the HTTP API's), appended to the dashboard. */
  readonly extraWidgets?: readonly GraphWidget[];
  /**
   * The queue SES events reach (SES → SNS → SQS). What arrives in it is compared with what the
   * senders sent: see {@link NO_FEEDBACK_PERIOD}.
   */
  readonly feedbackQueue: IQueue;
  /**
   * Permanent send failures (`messagesFailed`) of one stream within five minutes that raise an
   * alarm, whatever the volume: a burst of refusals (identity not verified, sandbox recipient,
   * access denied) is an incident.
   * @default SEND_FAILURE_COUNT_THRESHOLD
   */
  readonly sendFailureCountThreshold?: number;
  /**
   * Share of one stream's send attempts in an hour that failed permanently and raises an alarm (at
   * least {@link SEND_FAILURE_MIN_ATTEMPTS} attempts): catches "every message fails" at low volume.
   * @default SEND_FAILURE_RATE_THRESHOLD
   */
  readonly sendFailureRateThreshold?: number;
  /**
   * The SMTP front door, when deployed: its alarms and dashboard rows.
   * @default - none
   */
  readonly smtp?: SmtpService | undefined;
  /**
   * The scheduled domain doctor, when deployed: alarms when a check that passed starts failing.
   * @default - none
   */
  readonly doctor?: DomainDoctor | undefined;
}

/** SMTP AUTH failures in five minutes that raise an alarm: someone is guessing keys. */
export const SMTP_AUTH_FAILURE_THRESHOLD = 50;
/**
 * SMTP 4xx replies in five minutes that raise an alarm: the table or queue failing (451), or keys
 * hitting their rate or quota (451/452). Clients retry a 4xx, so mail is late rather than lost.
 */
export const SMTP_TEMPORARY_FAILURE_THRESHOLD = 25;

/** The SMTP server's EMF counters (dimension `service`; refusals also by `reason`). */
export const SMTP_COUNTERS = [
  'smtpConnections',
  'smtpMessagesAccepted',
  'smtpRefusals',
  'smtpReplies4xx',
  'smtpReplies5xx',
  'smtpAuthFailures',
] as const;

/** Permanent send failures per stream in five minutes that raise an alarm. */
export const SEND_FAILURE_COUNT_THRESHOLD = 10;
/** Share of a stream's attempts in an hour that failed permanently and raises an alarm. */
export const SEND_FAILURE_RATE_THRESHOLD = 0.1;
/** Attempts in the hour below which the failure rate is not judged (one failure is not 100 %). */
export const SEND_FAILURE_MIN_ATTEMPTS = 3;
/**
 * How long sends may go without any SES event arriving in the feedback queue before the alarm
 * fires. SES publishes a Send event within seconds of accepting a message, so an hour of sends and
 * nothing arriving means the SES → SNS → SQS path is broken (a key policy SES cannot use, a topic
 * or queue policy, a disabled event destination): every event is then dropped with no error
 * anywhere, suppressions stop and messages stay `sent` for ever.
 */
export const NO_FEEDBACK_PERIOD = Duration.hours(1);

/** Baton's own EMF counters charted per `stream` (DESIGN §1, STYLE metrics). */
export const DASHBOARD_COUNTERS = [
  'messagesAccepted',
  'messagesSent',
  'messagesDelivered',
  'messagesBounced',
  'messagesComplained',
] as const;

/** Latencies the functions record (ms): accepted → sent (sender), accepted → delivered (feedback). */
export const LATENCIES = ['acceptedToSentMs', 'acceptedToDeliveredMs'] as const;

/**
 * The p99 of state change → first attempt above which deliveries are falling behind: the webhook
 * queue's oldest-message age cannot say so, since retries wait in it for hours on purpose.
 */
export const WEBHOOK_FIRST_ATTEMPT_P99_THRESHOLD = Duration.minutes(15);

const FIVE_MINUTES = Duration.minutes(5);
const ONE_MINUTE = Duration.minutes(1);

/**
 * Why the alarm email subscription has no dead-letter queue (cdk-nag Serverless-SNSRedrivePolicy).
 * Exported for the infra tests.
 */
export const ALARM_EMAIL_REDRIVE_REASON =
  'The subscription only forwards CloudWatch alarm notifications to the operator mailbox. An alarm ' +
  'that could not be mailed stays in ALARM state on the dashboard and in CloudWatch, so nothing is ' +
  'lost for good; a dead-letter queue would need its own alarm, which would notify through this ' +
  'same topic. Subscribe a pager or chat integration for a second path.';

/**
 * A dashboard and the alarms an operator needs to trust the relay: nothing stuck in a dead-letter
 * queue, no lane falling behind, no function failing, and the SES reputation kept clear of the
 * levels at which SES reviews or pauses the account.
 */
export class Monitoring extends Construct {
  readonly dashboard: Dashboard;
  readonly alarmTopic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const bounceRate = props.bounceRateThreshold ?? 0.04;
    const complaintRate = props.complaintRateThreshold ?? 0.0008;
    const failureRate = props.sendFailureRateThreshold ?? SEND_FAILURE_RATE_THRESHOLD;
    const failureCount = props.sendFailureCountThreshold ?? SEND_FAILURE_COUNT_THRESHOLD;
    validate(props, bounceRate, complaintRate, failureRate, failureCount);

    this.alarmTopic = new Topic(this, 'AlarmTopic', {
      masterKey: props.notificationKey.key,
      enforceSSL: true,
    });
    const alarmArns = Stack.of(this).formatArn({
      service: 'cloudwatch',
      resource: 'alarm',
      resourceName: '*',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    props.notificationKey.allowServicePublisher('cloudwatch.amazonaws.com', alarmArns);
    // With a topic policy in place the default "anyone in the account" policy is gone, so the
    // CloudWatch alarm service needs its own statement.
    this.alarmTopic.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': alarmArns },
        },
      }),
    );
    if (props.alarmEmail !== undefined) {
      const subscription = this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
      Validations.of(subscription).acknowledge({
        id: 'Serverless-SNSRedrivePolicy',
        reason: ALARM_EMAIL_REDRIVE_REASON,
      });
    }
    const action = new SnsAction(this.alarmTopic);

    for (const watched of props.queues) {
      this.alarm(`${watched.name}DeadLetters`, action, {
        metric: watched.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          statistic: 'Maximum',
          period: FIVE_MINUTES,
        }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        description: `${watched.name}: messages in the dead-letter queue need an operator (inspect, then redrive).`,
      });
      this.alarm(`${watched.name}Backlog`, action, {
        metric: watched.queue.metricApproximateAgeOfOldestMessage({
          statistic: 'Maximum',
          period: FIVE_MINUTES,
        }),
        threshold: watched.maxMessageAge.toSeconds(),
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        description: `${watched.name}: the oldest queued message is older than ${watched.maxMessageAge.toHumanString()}.`,
      });
    }
    for (const watched of props.functions) {
      this.alarm(`${watched.name}Errors`, action, {
        metric: watched.function.metricErrors({ statistic: 'Sum', period: FIVE_MINUTES }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        description: `${watched.name} function: invocations failed (unhandled errors or timeouts).`,
      });
    }
    // The senders count SendingPausedException / AccountSuspendedException as `sendingPaused`,
    // with the dimensions {service, stream} (one sender per lane): the alarm adds the lanes up.
    const pausedByLane = Object.fromEntries(
      LANES.map((lane) => [`paused_${lane}`, senderMetric('sendingPaused', lane, FIVE_MINUTES)]),
    );
    this.alarm('SendingPaused', action, {
      metric: new MathExpression({
        expression: Object.keys(pausedByLane)
          .map((id) => `FILL(${id}, 0)`)
          .join(' + '),
        usingMetrics: pausedByLane,
        period: FIVE_MINUTES,
        label: 'sendingPaused (all lanes)',
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'SES refused to send for the account (sending paused or account suspended): check the SES console.',
    });
    // Permanent failures per stream: before DKIM verifies, in the SES sandbox or with a sender role
    // that lacks an identity, every message fails at once, and neither the DLQ nor the function
    // error alarms see it (the sender handles the record).
    for (const lane of LANES) {
      const name = `${lane[0]?.toUpperCase()}${lane.slice(1)}`;
      this.alarm(`${name}SendFailures`, action, {
        metric: new MathExpression({
          expression: 'FILL(failed, 0)',
          usingMetrics: { failed: senderMetric('messagesFailed', lane, FIVE_MINUTES) },
          period: FIVE_MINUTES,
          label: `messagesFailed (${lane})`,
        }),
        threshold: failureCount,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        description: `${lane}: ${failureCount} or more messages failed permanently at SES within 5 minutes (identity not verified, SES sandbox recipient, access denied?). See the failed messages' reason.`,
      });
      this.alarm(`${name}SendFailureRate`, action, {
        metric: failureRateOf(lane),
        threshold: failureRate,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        description: `${lane}: ${percent(failureRate)} or more of an hour's sends (at least ${SEND_FAILURE_MIN_ATTEMPTS}) failed permanently at SES. See the failed messages' reason.`,
      });
    }
    const sentByLane = Object.fromEntries(
      LANES.map((lane) => [`sent_${lane}`, senderMetric('messagesSent', lane, NO_FEEDBACK_PERIOD)]),
    );
    const sentTotal = Object.keys(sentByLane)
      .map((id) => `FILL(${id}, 0)`)
      .join(' + ');
    const arrived = props.feedbackQueue.metricNumberOfMessagesSent({
      statistic: 'Sum',
      period: NO_FEEDBACK_PERIOD,
    });
    this.alarm('NoFeedback', action, {
      metric: new MathExpression({
        // 1 for an hour with sends and not one SES event arriving, else 0. Nested IFs rather than a
        // logical operator: IF over a comparison is the plainest form metric math takes in alarms.
        expression: `IF((${sentTotal}) > 0, IF(FILL(arrived, 0) == 0, 1, 0), 0)`,
        usingMetrics: { ...sentByLane, arrived },
        period: NO_FEEDBACK_PERIOD,
        label: 'sent, but no SES event arrived',
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        `Messages were sent but no SES event reached the feedback queue for ${NO_FEEDBACK_PERIOD.toHumanString()}: ` +
        'the SES → SNS → SQS path is broken (KMS key policy, topic or queue policy, event destination). ' +
        'Bounces and complaints are not being recorded.',
    });
    const bounceMetric = sesReputation('Reputation.BounceRate');
    const complaintMetric = sesReputation('Reputation.ComplaintRate');
    this.alarm('BounceRate', action, {
      metric: bounceMetric,
      threshold: bounceRate,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description: `SES account bounce rate is at or above ${percent(bounceRate)} (SES reviews the account at 5 %).`,
    });
    this.alarm('ComplaintRate', action, {
      metric: complaintMetric,
      threshold: complaintRate,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description: `SES account complaint rate is at or above ${percent(complaintRate)} (SES reviews the account at 0.1 %).`,
    });

    this.alarm('GuardAction', action, {
      // A Metrics Insights query rather than fixed metrics: the api, the SMTP tasks and the feedback
      // function each act (Powertools' `service`), with five actions in two scopes, more series than
      // an alarm's metric math may name (10); the query adds up all of them, present and future.
      metric: new MathExpression({
        expression: `SELECT SUM(${GuardMetric.action}) FROM SCHEMA("${METRICS_NAMESPACE}", ${GuardMetric.actionDimension}, ${GuardMetric.scopeDimension}, service)`,
        usingMetrics: {},
        period: ONE_MINUTE,
        label: 'abuse guard actions',
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description:
        'The abuse guard acted (suspended or throttled a key, paused or held a tenant’s mail, or warned): ' +
        'see the "guard action" log line for the tenant, key, signal and figures, then `npm run guard` to ' +
        'release, cancel or resume.',
    });

    this.alarm('WebhookPublishFailures', action, {
      // A Metrics Insights query: the api, the SMTP tasks, the senders and feedback each publish
      // (Powertools' `service`); the query adds up all of them, present and future.
      metric: new MathExpression({
        expression: `SELECT SUM(${WebhookMetric.publishFailures}) FROM SCHEMA("${METRICS_NAMESPACE}", service)`,
        usingMetrics: {},
        period: FIVE_MINUTES,
        label: 'webhook publish failures',
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'Webhook events of a state change could not be kept or queued (see the "webhook publish failed" ' +
        'log lines): tenants miss those events unless they are replayed (POST /v1/webhooks/{id}/replay).',
    });
    this.alarm('WebhookFirstAttemptLatency', action, {
      metric: webhookMetric(WebhookMetric.firstAttemptLatency, 'p99'),
      threshold: WEBHOOK_FIRST_ATTEMPT_P99_THRESHOLD.toMilliseconds(),
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description: `Webhooks: the p99 from state change to first delivery attempt is above ${WEBHOOK_FIRST_ATTEMPT_P99_THRESHOLD.toHumanString()}; delivery is falling behind (concurrency, throttling, slow endpoints).`,
    });

    if (props.smtp !== undefined) this.watchSmtp(props.smtp, action);
    if (props.doctor !== undefined) {
      this.alarm('DomainChecksRegressed', action, {
        metric: props.doctor.metricChecksRegressed(),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        description:
          'Domain doctor: a check of a sending domain that passed before fails now (DNS record removed or changed, SES DKIM failing). Run `npm run doctor -- <domain> --stack <stack>` for the record to publish.',
      });
    }

    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          '# Baton\nLanes, functions, SES reputation and delivery counters. Alarms notify the alarm topic.',
        width: 24,
        height: 2,
      }),
    );
    for (const watched of props.queues) {
      this.dashboard.addWidgets(
        graph(`${watched.name} queue depth`, [
          watched.queue.metricApproximateNumberOfMessagesVisible({ label: 'visible', period: FIVE_MINUTES }),
          watched.queue.metricApproximateNumberOfMessagesNotVisible({
            label: 'in flight',
            period: FIVE_MINUTES,
          }),
        ]),
        graph(
          `${watched.name} oldest message age (s)`,
          [watched.queue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: FIVE_MINUTES })],
          [{ value: watched.maxMessageAge.toSeconds(), label: 'alarm' }],
        ),
        graph(`${watched.name} dead-letter queue depth`, [
          watched.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            statistic: 'Maximum',
            period: FIVE_MINUTES,
          }),
        ]),
      );
    }
    for (const watched of props.functions) {
      this.dashboard.addWidgets(
        graph(`${watched.name} invocations and errors`, [
          watched.function.metricInvocations({ period: FIVE_MINUTES }),
          watched.function.metricErrors({ period: FIVE_MINUTES }),
          watched.function.metricThrottles({ period: FIVE_MINUTES }),
        ]),
        graph(`${watched.name} duration (ms)`, [
          watched.function.metricDuration({ statistic: 'p50', period: FIVE_MINUTES }),
          watched.function.metricDuration({ statistic: 'p99', period: FIVE_MINUTES }),
          watched.function.metricDuration({ statistic: 'Maximum', period: FIVE_MINUTES }),
        ]),
      );
    }
    this.dashboard.addWidgets(
      graph('SES bounce rate', [bounceMetric], [{ value: bounceRate, label: 'alarm' }]),
      graph('SES complaint rate', [complaintMetric], [{ value: complaintRate, label: 'alarm' }]),
    );
    this.dashboard.addWidgets(
      ...DASHBOARD_COUNTERS.map((metricName) =>
        graph(`${metricName} by stream`, [byStream(metricName, 'Sum', metricName)]),
      ),
      ...LATENCIES.map((metricName) =>
        graph(`${metricName} by stream (p50, p95)`, [
          byStream(metricName, 'p50', 'p50'),
          byStream(metricName, 'p95', 'p95'),
        ]),
      ),
    );
    this.dashboard.addWidgets(
      ...LANES.map((lane) =>
        graph(`${lane}: sent and failed permanently`, [
          senderMetric('messagesSent', lane, FIVE_MINUTES),
          senderMetric('messagesFailed', lane, FIVE_MINUTES),
        ]),
      ),
      graph(
        'Permanent failure rate by stream (hourly)',
        LANES.map((lane) => failureRateOf(lane)),
        [{ value: failureRate, label: 'alarm' }],
      ),
      graph('Sent vs SES events arriving (hourly)', [
        new MathExpression({
          expression: sentTotal,
          usingMetrics: sentByLane,
          period: NO_FEEDBACK_PERIOD,
          label: 'messagesSent (all lanes)',
        }),
        props.feedbackQueue.metricNumberOfMessagesSent({
          statistic: 'Sum',
          period: NO_FEEDBACK_PERIOD,
          label: 'SES events into the feedback queue',
        }),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Abuse guard actions by action and scope', [
        new MathExpression({
          expression: `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="${GuardMetric.action}" ${GuardMetric.actionDimension} ${GuardMetric.scopeDimension}', 'Sum', 60)`,
          label: 'actions',
          period: ONE_MINUTE,
        }),
      ]),
      graph('Abuse guard errors (counting or evaluating failed; mail flowed on)', [
        new MathExpression({
          expression: `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="${GuardMetric.errors}"', 'Sum', 300)`,
          label: 'errors',
          period: FIVE_MINUTES,
        }),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Webhook attempts, deliveries and failed attempts', [
        webhookMetric(WebhookMetric.attempts, 'Sum'),
        webhookMetric(WebhookMetric.delivered, 'Sum'),
        webhookMetric(WebhookMetric.failedAttempts, 'Sum'),
      ]),
      graph(
        'Webhook state change → first attempt (ms, p99)',
        [webhookMetric(WebhookMetric.firstAttemptLatency, 'p99')],
        [{ value: WEBHOOK_FIRST_ATTEMPT_P99_THRESHOLD.toMilliseconds(), label: 'alarm' }],
      ),
      graph('Webhook publish failures', [
        new MathExpression({
          expression: `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="${WebhookMetric.publishFailures}"', 'Sum', 300)`,
          label: 'publish failures',
          period: FIVE_MINUTES,
        }),
      ]),
    );
    if (props.extraWidgets !== undefined && props.extraWidgets.length > 0) {
      this.dashboard.addWidgets(...props.extraWidgets);
    }
    if (props.smtp !== undefined) this.smtpRows(props.smtp);
    if (props.doctor !== undefined) {
      this.dashboard.addWidgets(
        graph('Domain doctor: failing checks by check, regressed checks', [
          new MathExpression({
            expression: `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="${DoctorMetric.checkFailed}" ${DoctorMetric.checkDimension}', 'Sum', 86400)`,
            label: 'failing',
            period: Duration.days(1),
          }),
          props.doctor.metricChecksRegressed(),
        ]),
      );
    }
  }

  private watchSmtp(smtp: SmtpService, action: SnsAction): void {
    for (const [index, group] of smtp.targetGroups.entries()) {
      const port = index === 0 ? 'Starttls' : 'ImplicitTls';
      // Minimum over five minutes: unhealthy the whole time, not a task being replaced.
      this.alarm(`Smtp${port}UnhealthyTasks`, action, {
        metric: group.metrics.unHealthyHostCount({ statistic: 'Minimum', period: FIVE_MINUTES }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        description: `SMTP (${index === 0 ? 587 : 465}): a task has failed its health check for 5 minutes. See the service's events and the smtp log streams.`,
      });
    }
    const [submission] = smtp.targetGroups;
    if (smtp.active && submission !== undefined) {
      this.alarm('SmtpDown', action, {
        metric: submission.metrics.healthyHostCount({ statistic: 'Maximum', period: FIVE_MINUTES }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
        description:
          'SMTP: no healthy task for 5 minutes, so clients cannot submit (they queue and retry). Check the certificate secret and the tasks’ stopped reason.',
      });
    }
    this.alarm('SmtpAuthFailures', action, {
      metric: filled(smtpMetric('smtpAuthFailures'), 'smtpAuthFailures'),
      threshold: SMTP_AUTH_FAILURE_THRESHOLD,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description: `SMTP: ${SMTP_AUTH_FAILURE_THRESHOLD} or more failed AUTH attempts within 5 minutes; someone may be guessing keys (the server logs their source addresses).`,
    });
    this.alarm('SmtpTemporaryFailures', action, {
      metric: filled(smtpMetric('smtpReplies4xx'), 'smtpReplies4xx'),
      threshold: SMTP_TEMPORARY_FAILURE_THRESHOLD,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      description: `SMTP: ${SMTP_TEMPORARY_FAILURE_THRESHOLD} or more 4xx replies within 5 minutes (table or queue unavailable, or keys at their rate or quota). Clients retry; see the server log for which.`,
    });
  }

  private smtpRows(smtp: SmtpService): void {
    const nlb = smtp.loadBalancer.metrics;
    this.dashboard.addWidgets(
      new TextWidget({ markdown: `## SMTP front door (${smtp.hostname})`, width: 24, height: 1 }),
      graph('SMTP connections and messages accepted', [
        smtpMetric('smtpConnections'),
        smtpMetric('smtpMessagesAccepted'),
      ]),
      graph('SMTP refusals by reason', [
        new MathExpression({
          expression: `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="smtpRefusals" reason', 'Sum', 300)`,
          label: 'refusals',
          period: FIVE_MINUTES,
        }),
      ]),
      graph(
        'SMTP 4xx / 5xx replies and AUTH failures',
        [smtpMetric('smtpReplies4xx'), smtpMetric('smtpReplies5xx'), smtpMetric('smtpAuthFailures')],
        [
          { value: SMTP_TEMPORARY_FAILURE_THRESHOLD, label: '4xx alarm' },
          { value: SMTP_AUTH_FAILURE_THRESHOLD, label: 'AUTH alarm' },
        ],
      ),
      graph('SMTP load balancer flows and resets', [
        nlb.activeFlowCount({ statistic: 'Average', period: FIVE_MINUTES }),
        nlb.newFlowCount({ statistic: 'Sum', period: FIVE_MINUTES }),
        nlb.tcpClientResetCount({ statistic: 'Sum', period: FIVE_MINUTES }),
        nlb.tcpTargetResetCount({ statistic: 'Sum', period: FIVE_MINUTES }),
      ]),
      graph(
        'SMTP tasks: healthy and unhealthy targets',
        smtp.targetGroups.flatMap((group, index) => [
          group.metrics.healthyHostCount({
            statistic: 'Minimum',
            period: FIVE_MINUTES,
            label: `healthy (${index === 0 ? 587 : 465})`,
          }),
          group.metrics.unHealthyHostCount({
            statistic: 'Maximum',
            period: FIVE_MINUTES,
            label: `unhealthy (${index === 0 ? 587 : 465})`,
          }),
        ]),
      ),
      graph('SMTP tasks: CPU and memory (%)', [
        smtp.service.metricCpuUtilization({ period: FIVE_MINUTES }),
        smtp.service.metricMemoryUtilization({ period: FIVE_MINUTES }),
      ]),
    );
  }

  private alarm(
    id: string,
    action: SnsAction,
    options: {
      metric: IMetric;
      threshold: number;
      comparisonOperator: ComparisonOperator;
      description: string;
    },
  ): void {
    const alarm = new Alarm(this, `${id}Alarm`, {
      ...options,
      alarmDescription: options.description,
      evaluationPeriods: 1,
      // An idle relay publishes no datapoints; silence is not an incident.
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    this.alarms.push(alarm);
  }
}

/**
 * A sender counter of one lane, with the dimensions the senders emit ({service, stream}: one
 * sender function per lane).
 */
function senderMetric(metricName: string, lane: string, period: Duration): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SENDER_SERVICE, stream: lane },
    statistic: 'Sum',
    period,
  });
}

/** A delivery function metric, with the dimension Powertools gives it ({service}), over five minutes. */
function webhookMetric(metricName: string, statistic: 'Sum' | 'p99'): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: WEBHOOK_SERVICE },
    statistic,
    period: FIVE_MINUTES,
  });
}

/** An SMTP server counter with the dimension Powertools gives it ({service}), summed over five minutes. */
function smtpMetric(metricName: (typeof SMTP_COUNTERS)[number]): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SMTP_SERVICE },
    statistic: 'Sum',
    period: FIVE_MINUTES,
  });
}

/** A counter with no datapoint read as 0 (an idle server publishes nothing). */
function filled(metric: Metric, label: string): MathExpression {
  return new MathExpression({
    expression: 'FILL(m, 0)',
    usingMetrics: { m: metric },
    period: FIVE_MINUTES,
    label,
  });
}

/**
 * failed ÷ (sent + failed) of one lane over an hour, 0 below SEND_FAILURE_MIN_ATTEMPTS attempts
 * (so one failed message in a quiet hour is not "100 %").
 */
function failureRateOf(lane: string): MathExpression {
  // Ids per lane: a graph charting both lanes' rates must not see two metrics under one id.
  const [sent, failed] = [`sent_${lane}`, `failed_${lane}`];
  const attempts = `(FILL(${sent}, 0) + FILL(${failed}, 0))`;
  return new MathExpression({
    expression: `IF(${attempts} >= ${SEND_FAILURE_MIN_ATTEMPTS}, FILL(${failed}, 0) / ${attempts}, 0)`,
    usingMetrics: {
      [sent]: senderMetric('messagesSent', lane, Duration.hours(1)),
      [failed]: senderMetric('messagesFailed', lane, Duration.hours(1)),
    },
    period: Duration.hours(1),
    label: `permanent failure rate (${lane})`,
  });
}

/**
 * Account-level reputation metrics (no dimensions): the ones SES acts on. SES refreshes them a few
 * times an hour at most, so an hourly maximum always has a datapoint while mail flows.
 */
function sesReputation(metricName: string): Metric {
  return new Metric({ namespace: 'AWS/SES', metricName, statistic: 'Maximum', period: Duration.hours(1) });
}

/**
 * One line per stream of a counter (`Sum`) or latency percentile. A SEARCH rather than fixed
 * dimensions because Powertools adds its `service` dimension to every metric: the dimension set is
 * then {service, stream} and depends on which function emits the metric, which the dashboard
 * should not have to know.
 */
function byStream(metricName: string, statistic: 'Sum' | 'p50' | 'p95', label: string): MathExpression {
  return new MathExpression({
    expression: `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="${metricName}" stream', '${statistic}', 300)`,
    label,
    period: FIVE_MINUTES,
  });
}

function graph(
  title: string,
  metrics: readonly IMetric[],
  annotations: readonly HorizontalAnnotation[] = [],
): GraphWidget {
  return new GraphWidget({
    title,
    left: [...metrics],
    leftAnnotations: [...annotations],
    width: 8,
    height: 6,
  });
}

function percent(fraction: number): string {
  return `${Number((fraction * 100).toPrecision(3))} %`;
}

function validate(
  props: MonitoringProps,
  bounceRate: number,
  complaintRate: number,
  failureRate: number,
  failureCount: number,
): void {
  if (!Number.isInteger(failureCount) || failureCount < 1) {
    throw new Error(
      `Monitoring: sendFailureCountThreshold is a whole number of messages, got ${failureCount}`,
    );
  }
  for (const [name, value] of [
    ['bounceRateThreshold', bounceRate],
    ['complaintRateThreshold', complaintRate],
    ['sendFailureRateThreshold', failureRate],
  ] as const) {
    if (!(value > 0 && value < 1)) {
      throw new Error(`Monitoring: ${name} is a fraction between 0 and 1 (0.04 = 4 %), got ${value}`);
    }
  }
  // Names become construct ids, so they must be stable identifiers and unique within their list.
  for (const names of [props.queues.map((q) => q.name), props.functions.map((f) => f.name)]) {
    for (const name of names) {
      if (!/^[A-Z][A-Za-z0-9]*$/.test(name)) throw new Error(`Monitoring: "${name}" must be PascalCase`);
    }
    const duplicate = names.find((name, index) => names.indexOf(name) !== index);
    if (duplicate !== undefined) throw new Error(`Monitoring: duplicate name "${duplicate}"`);
  }
}
