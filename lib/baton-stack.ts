import { Aws, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { GraphWidget } from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { LANES, type Lane, REGION_OUTPUT, Route, SENDING_DOMAINS_OUTPUT } from '../lambdas/shared/names.ts';
import { type BatonConfig, eventSourceConcurrency, laneSendPlans } from './config.ts';
import { ApiHandler } from './constructs/api-handler.ts';
import { DataTables } from './constructs/data-tables.ts';
import { DomainDoctor } from './constructs/domain-doctor.ts';
import { Erasure } from './constructs/erasure.ts';
import { FeedbackProcessor } from './constructs/feedback-processor.ts';
import { BatonHttpApi } from './constructs/http-api.ts';
import { type MonitoredQueue, Monitoring } from './constructs/monitoring.ts';
import { NotificationKey } from './constructs/notification-key.ts';
import { PayloadBucket } from './constructs/payload-bucket.ts';
import type { SecureQueue } from './constructs/secure-queue.ts';
import { SenderLane, SMTP_SENDER_MEMORY_MB, waitForSesEvidence } from './constructs/sender-lane.ts';
import { SesSending } from './constructs/ses-sending.ts';
import { SmtpService } from './constructs/smtp-service.ts';
import { WebhookDelivery } from './constructs/webhook-delivery.ts';

export interface BatonStackProps extends StackProps {
  /** Validated settings (see `resolveConfig` / `configFromContext`). */
  readonly config: BatonConfig;
}

/**
 * How old the oldest queued message may get before an operator is paged: a password reset that
 * waits five minutes is already an incident, a newsletter that waits an hour is not yet.
 */
export const MAX_MESSAGE_AGE: Readonly<Record<Lane | 'feedback' | 'erasure' | 'webhooks', Duration>> = {
  transactional: Duration.minutes(5),
  broadcast: Duration.hours(1),
  // Feedback lag delays suppressions, so bounced addresses keep being mailed meanwhile.
  feedback: Duration.minutes(15),
  // A step is queued the moment the previous one stops; one that waits an hour is stuck.
  erasure: Duration.hours(1),
  // SQS counts a message in flight as it counts a visible one, and a webhook retry is hidden on
  // purpose until it is due: up to SQS's 12 h after a delay of up to 15 min. Anything younger is a
  // retry waiting its turn; falling behind on new events is the WebhookFirstAttemptLatency alarm's.
  webhooks: Duration.hours(13),
};

const LANE_IDS: Readonly<Record<Lane, string>> = { transactional: 'Transactional', broadcast: 'Broadcast' };

/**
 * Baton: HTTP API → lane queues → senders → SES → feedback (DESIGN §1). Composition only: each
 * concern lives in its construct, and this class wires them together and publishes the outputs
 * that `README`, local mode and operators read.
 */
export class BatonStack extends Stack {
  readonly config: BatonConfig;
  readonly tables: DataTables;
  readonly notificationKey: NotificationKey;
  readonly payloads: PayloadBucket;
  readonly ses: SesSending;
  readonly lanes: Readonly<Record<Lane, SenderLane>>;
  readonly feedback: FeedbackProcessor;
  readonly erasure: Erasure;
  readonly webhooks: WebhookDelivery;
  readonly api: ApiHandler;
  readonly httpApi: BatonHttpApi;
  readonly monitoring: Monitoring;
  /** The SMTP front door, with `-c smtp=true`. */
  readonly smtp: SmtpService | undefined;
  /** The daily domain doctor, with `-c doctorSchedule=true`. */
  readonly doctor: DomainDoctor | undefined;

  constructor(scope: Construct, id: string, props: BatonStackProps) {
    const { config, ...stackProps } = props;
    super(scope, id, { description: 'Baton: serverless email relay on Amazon SES', ...stackProps });
    this.config = config;

    this.tables = new DataTables(this, 'Tables');
    const notificationKey = new NotificationKey(this, 'NotificationKey');
    this.notificationKey = notificationKey;
    // Claim check: jobs larger than one SQS message wait here while their pointer is queued.
    this.payloads = new PayloadBucket(this, 'Payloads');
    this.ses = new SesSending(this, 'Ses', {
      domains: config.domains,
      importDomains: config.importDomains,
      mailFromSubdomain: config.mailFromSubdomain,
      sandboxRecipients: config.sandboxRecipients,
      notificationKey,
    });
    const concurrency = eventSourceConcurrency(config);
    this.webhooks = new WebhookDelivery(this, 'Webhooks', {
      webhooksTable: this.tables.webhooks,
      logRetention: config.logRetentionDays,
      maxConcurrency: concurrency.webhooks,
    });

    const lanes: Partial<Record<Lane, SenderLane>> = {};
    for (const plan of laneSendPlans(config)) {
      lanes[plan.lane] = new SenderLane(this, `${LANE_IDS[plan.lane]}Lane`, {
        lane: plan.lane,
        messagesTable: this.tables.messages,
        suppressionsTable: this.tables.suppressions,
        statsTable: this.tables.stats,
        apiKeysTable: this.tables.apiKeys,
        guardTable: this.tables.guard,
        payloadBucket: this.payloads.bucket,
        configurationSetName: this.ses.configurationSet.configurationSetName,
        sendPolicy: this.ses.sendPolicy(),
        sendRate: plan.sendRate,
        maxConcurrency: plan.maxConcurrency,
        batchSize: plan.batchSize,
        timeout: Duration.seconds(plan.timeoutSeconds),
        logRetention: config.logRetentionDays,
        // SMTP takes messages of up to 25 MB (the API 6 MB): their sender needs the room.
        ...(config.smtp ? { memorySize: SMTP_SENDER_MEMORY_MB } : {}),
      });
    }
    this.lanes = completeLanes(lanes);

    this.feedback = new FeedbackProcessor(this, 'Feedback', {
      topic: this.ses.feedbackTopic,
      messagesTable: this.tables.messages,
      suppressionsTable: this.tables.suppressions,
      statsTable: this.tables.stats,
      apiKeysTable: this.tables.apiKeys,
      guardTable: this.tables.guard,
      logRetention: config.logRetentionDays,
      maxConcurrency: concurrency.feedback,
    });
    for (const lane of LANES) waitForSesEvidence(this.lanes[lane], this.feedback.confirmationWindow);

    this.api = new ApiHandler(this, 'Api', {
      apiKeysTable: this.tables.apiKeys,
      messagesTable: this.tables.messages,
      suppressionsTable: this.tables.suppressions,
      statsTable: this.tables.stats,
      idempotencyTable: this.tables.idempotency,
      guardTable: this.tables.guard,
      laneQueues: {
        transactional: this.lanes.transactional.queue.queue,
        broadcast: this.lanes.broadcast.queue.queue,
      },
      payloadBucket: this.payloads.bucket,
      retentionDays: config.retentionDays,
      logRetention: config.logRetentionDays,
    });

    // Erasure: the secret every function that checks suppressions reads (a tombstone is found by
    // the HMAC of the address), and the worker that finishes erasures the api could not.
    this.erasure = new Erasure(this, 'Erasure', {
      messagesTable: this.tables.messages,
      logRetention: config.logRetentionDays,
      maxConcurrency: concurrency.erasure,
    });
    this.erasure.useSecret(this.api.handler);
    this.erasure.continueFrom(this.api.handler);
    for (const lane of LANES) this.erasure.useSecret(this.lanes[lane].sender);
    // Feedback writes suppressions: those of an erased address must land on its tombstone.
    this.erasure.useSecret(this.feedback.handler);

    // Webhook events are produced where the state changes: the api (which also manages endpoints),
    // the senders and feedback; the SMTP server below, which runs the api's accept path.
    this.webhooks.manageFrom(this.api.handler);
    for (const lane of LANES) this.webhooks.publishFrom(this.lanes[lane].sender);
    this.webhooks.publishFrom(this.feedback.handler);

    this.httpApi = new BatonHttpApi(this, 'HttpApi', {
      handler: this.api.handler.function,
      routes: Object.values(Route),
      rateLimit: config.apiRateLimit,
      burstLimit: config.apiBurstLimit,
      logRetention: config.logRetentionDays,
    });

    // The SMTP front door runs the api's accept path, so it reads what the api reads.
    this.smtp = config.smtp
      ? new SmtpService(this, 'Smtp', {
          api: this.api,
          apiKeysTable: this.tables.apiKeys,
          hostname: config.smtpHostname,
          certificateSecret: config.smtpCertificateSecret,
          certificateKey: config.smtpCertificateKey,
          maxTasks: config.smtpMaxTasks,
          logRetention: config.logRetentionDays,
        })
      : undefined;
    if (this.smtp !== undefined) {
      this.erasure.useSecret(this.smtp);
      this.erasure.continueFrom(this.smtp);
      this.webhooks.publishFrom(this.smtp);
    }

    this.doctor = config.doctorSchedule
      ? new DomainDoctor(this, 'Doctor', {
          identities: this.ses.identities,
          guardTable: this.tables.guard,
          logRetention: config.logRetentionDays,
        })
      : undefined;

    const stage = this.httpApi.stage;
    this.monitoring = new Monitoring(this, 'Monitoring', {
      notificationKey,
      alarmEmail: config.alarmEmail,
      feedbackQueue: this.feedback.queue.queue,
      queues: [
        ...LANES.map((lane) => watched(LANE_IDS[lane], this.lanes[lane].queue, MAX_MESSAGE_AGE[lane])),
        watched('Feedback', this.feedback.queue, MAX_MESSAGE_AGE.feedback),
        watched('Erasure', this.erasure.queue, MAX_MESSAGE_AGE.erasure),
        watched('Webhooks', this.webhooks.queue, MAX_MESSAGE_AGE.webhooks),
      ],
      functions: [
        { name: 'Api', function: this.api.handler.function },
        ...LANES.map((lane) => ({
          name: `${LANE_IDS[lane]}Sender`,
          function: this.lanes[lane].sender.function,
        })),
        { name: 'Feedback', function: this.feedback.handler.function },
        { name: 'Erasure', function: this.erasure.worker.function },
        { name: 'Webhooks', function: this.webhooks.handler.function },
        ...(this.doctor === undefined ? [] : [{ name: 'Doctor', function: this.doctor.handler.function }]),
      ],
      smtp: this.smtp,
      doctor: this.doctor,
      extraWidgets: [
        new GraphWidget({
          title: 'HTTP API requests',
          left: [stage.metricCount(), stage.metricClientError(), stage.metricServerError()],
          width: 8,
          height: 6,
        }),
        new GraphWidget({
          title: 'HTTP API latency (ms)',
          left: [
            stage.metricLatency({ statistic: 'p99' }),
            stage.metricIntegrationLatency({ statistic: 'p99' }),
          ],
          width: 8,
          height: 6,
        }),
      ],
    });

    this.outputs();
  }

  private outputs(): void {
    const output = (id: string, value: string, description: string): void => {
      new CfnOutput(this, id, { value, description });
    };
    output('ApiUrl', this.httpApi.url, 'Base URL of the Baton HTTP API');
    output(REGION_OUTPUT, Aws.REGION, 'Region the stack (and SES) runs in');
    output('ApiKeysTableName', this.tables.apiKeys.tableName, 'DynamoDB table of API keys');
    output('MessagesTableName', this.tables.messages.tableName, 'DynamoDB table of messages');
    output('SuppressionsTableName', this.tables.suppressions.tableName, 'DynamoDB table of suppressions');
    output('StatsTableName', this.tables.stats.tableName, 'DynamoDB table of daily counters');
    output('GuardTableName', this.tables.guard.tableName, 'DynamoDB table of the abuse guard');
    output(
      'WebhooksTableName',
      this.tables.webhooks.tableName,
      'DynamoDB table of webhook endpoints, delivery attempts and the replay log',
    );
    output('WebhookQueueUrl', this.webhooks.queue.queue.queueUrl, 'Webhook delivery queue');
    output(
      'TransactionalQueueUrl',
      this.lanes.transactional.queue.queue.queueUrl,
      'Transactional lane queue',
    );
    output('BroadcastQueueUrl', this.lanes.broadcast.queue.queue.queueUrl, 'Broadcast lane queue');
    output(
      'PayloadBucketName',
      this.payloads.bucket.bucketName,
      'S3 bucket holding send jobs too large for a queue message (claim check)',
    );
    output('FeedbackTopicArn', this.ses.feedbackTopic.topicArn, 'SNS topic SES publishes events to');
    output('ConfigurationSetName', this.ses.configurationSet.configurationSetName, 'SES configuration set');
    output('DashboardName', this.monitoring.dashboard.dashboardName, 'CloudWatch dashboard');
    // What `npm run keys -- create --stack` checks a key's domains against.
    output(
      SENDING_DOMAINS_OUTPUT,
      this.ses.domains.join(','),
      'SES identities Baton sends from (keys may name these and their subdomains)',
    );
    if (this.smtp !== undefined) {
      const dnsName = this.smtp.loadBalancer.loadBalancerDnsName;
      output('SmtpLoadBalancerDnsName', dnsName, 'DNS name of the SMTP load balancer (ports 587 and 465)');
      output(
        'SmtpDnsRecord',
        `${this.smtp.hostname} CNAME ${dnsName}`,
        'DNS record to publish so SMTP clients reach the front door (the certificate must cover the name)',
      );
      output(
        'SmtpCertificateSecret',
        this.config.smtpCertificateSecret ??
          'none: no task runs until -c smtpCertificateSecret=<secret with {"certificate","privateKey"}> is deployed',
        'Secrets Manager secret the SMTP server reads its TLS certificate and key from',
      );
    }
    // The DNS records the operator must publish before SES verifies a created identity and signs
    // with it. The primary's keep the names a one-domain stack always had; the others are numbered
    // in the order of `domains` (outputs are not resources: renumbering replaces nothing).
    this.ses.identities.forEach(({ domain, created }, index) => {
      if (created === undefined) return;
      const prefix = index === 0 ? '' : `Domain${index + 1}`;
      created.identity.dkimRecords.forEach((record, n) => {
        output(
          `${prefix}DkimRecord${n + 1}`,
          `${record.name} CNAME ${record.value}`,
          `DKIM record to publish for ${domain}`,
        );
      });
      output(
        `${prefix}MailFromMxRecord`,
        `${created.mailFromDomain} MX 10 feedback-smtp.${Aws.REGION}.amazonses.com`,
        `MAIL FROM MX record to publish for ${domain} (plus TXT "v=spf1 include:amazonses.com ~all")`,
      );
    });
  }
}

function watched(name: string, queue: SecureQueue, maxMessageAge: Duration): MonitoredQueue {
  return { name, queue: queue.queue, deadLetterQueue: queue.deadLetterQueue, maxMessageAge };
}

function completeLanes(lanes: Partial<Record<Lane, SenderLane>>): Record<Lane, SenderLane> {
  const { transactional, broadcast } = lanes;
  if (transactional === undefined || broadcast === undefined) {
    throw new Error(`BatonStack: a send plan is missing for a lane (expected ${LANES.join(', ')})`);
  }
  return { transactional, broadcast };
}
