import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { EventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { EnvVar, WebhookPartition } from '../../lambdas/shared/names.ts';
import { partitionAccess, queueSend } from '../iam.ts';
import type { BatonFunction, Workload } from './baton-function.ts';
import { addQueueConsumer } from './queue-consumer.ts';
import type { SecureQueue } from './secure-queue.ts';

export interface WebhookDeliveryProps {
  /** The Webhooks table (Keys.webhooks): endpoints, delivery state, attempts, the replay log. */
  readonly webhooksTable: ITable;
  readonly logRetention: RetentionDays;
  /**
   * Event source mapping maximum concurrency (2..1000): `webhookMaxConcurrency`.
   * @default 10
   */
  readonly maxConcurrency?: number;
  /**
   * Delivery function timeout: a batch's attempts run side by side, each at most 15 s (the issue's
   * endpoint timeout), plus the reads and writes around them.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
}

/** The delivery function's Powertools service name: its logs' `service` and its metrics' dimension. */
export const WEBHOOK_SERVICE = 'baton-webhooks';

/**
 * Partition prefixes of the Webhooks table's items, as Keys.webhooks documents them: a tenant's
 * endpoints (`tenant#<tenant>`) and its produced events (`events#<tenant>`). Producers are confined
 * to these; endpoint state and attempts (`endpoint#<id>`) are the delivery function's and the api's.
 */
export const WEBHOOK_ENDPOINTS_PARTITION_PREFIX = WebhookPartition.endpoints;
export const WEBHOOK_EVENTS_PARTITION_PREFIX = WebhookPartition.events;
/** An endpoint's delivery state (breaker, slots) and its attempts (`endpoint#<id>`). */
export const WEBHOOK_DELIVERY_PARTITION_PREFIX = WebhookPartition.delivery;

/** Deliveries per invocation: attempted side by side, so a batch costs about its slowest endpoint. */
const BATCH_SIZE = 10;

/**
 * Webhook delivery (issue 14): the queue producers put one job per event and endpoint on, and the
 * function that signs and POSTs each job to its endpoint. Retries are new messages the function
 * queues (with a delay, or hidden until due), so a message is received again only after a crash:
 * the default five receives dead-letter it after the fifth crash, not after the fifth failed attempt.
 *
 * Producers get what publishing costs through {@link publishFrom}; the api, which also manages
 * endpoints and serves the logs, through {@link manageFrom}.
 */
/** Receives before a job is dead-lettered: only crashes get there (see the function's requeue). */
export const WEBHOOK_MAX_RECEIVE_COUNT = 5;

export class WebhookDelivery extends Construct {
  readonly queue: SecureQueue;
  readonly handler: BatonFunction;
  readonly eventSourceMapping: EventSourceMapping;
  readonly table: ITable;

  constructor(scope: Construct, id: string, props: WebhookDeliveryProps) {
    super(scope, id);
    this.table = props.webhooksTable;
    // The queue's visibility is six timeouts (180 s at the default), as for every consumer; the
    // longer waits of the retry schedule are the function's own (delays and ChangeMessageVisibility).
    const consumer = addQueueConsumer(this, 'WebhookDelivery', {
      functionId: 'Handler',
      function: {
        entry: 'lambdas/webhooks/handler.ts',
        serviceName: WEBHOOK_SERVICE,
        description: 'Signs and delivers queued webhook events to the tenants’ endpoints, with retries',
        timeout: props.timeout ?? Duration.seconds(30),
        memorySize: 256,
        logRetention: props.logRetention,
      },
      batchSize: BATCH_SIZE,
      maxConcurrency: props.maxConcurrency ?? 10,
      maxReceiveCount: WEBHOOK_MAX_RECEIVE_COUNT,
    });
    this.queue = consumer.queue;
    this.handler = consumer.function;
    this.eventSourceMapping = consumer.eventSourceMapping;

    // A deferral (open breaker, full slots, a wait longer than SQS's delay) is a receive too: near
    // this count the function queues the job afresh instead of letting SQS dead-letter it.
    this.handler.addEnvironment(EnvVar.maxReceiveCount, String(WEBHOOK_MAX_RECEIVE_COUNT));
    this.useTableAndQueue(this.handler);
    // Each statement confined to the partitions it needs (dynamodb:LeadingKeys), the endpoint's
    // delivery state and attempts apart from the tenant's endpoints: no Query or batch write of them.
    this.handler.addToRolePolicy(
      partitionAccess(props.webhooksTable, WEBHOOK_DELIVERY_PARTITION_PREFIX, [
        // Breaker and concurrency slots: read, then replaced whole under a version condition.
        'dynamodb:GetItem',
        // The same, and each attempt, one item of the deliveries log.
        'dynamodb:PutItem',
      ]),
    );
    this.handler.addToRolePolicy(
      partitionAccess(props.webhooksTable, WEBHOOK_ENDPOINTS_PARTITION_PREFIX, [
        // The job's endpoint (and its secrets) is read by key.
        'dynamodb:GetItem',
        // Disabling an endpoint (410, days of failure): a whole put conditional on its version.
        'dynamodb:PutItem',
      ]),
    );
    // The webhook.endpoint.disabled event is published to the tenant's other endpoints as any
    // producer publishes; its retries are new messages on this queue too.
    this.addPublishing(this.handler);
  }

  /**
   * A producer of events (senders, feedback, the SMTP server): finds the tenant's subscribed
   * endpoints (Query of its endpoints' partition), keeps the events in the replay log (batched writes
   * to its events' partition) and queues one job per endpoint. Nothing else of the table.
   */
  publishFrom(workload: Workload): void {
    this.useTableAndQueue(workload);
    this.addPublishing(workload);
  }

  /**
   * The api: publishes like any producer, and serves `/v1/webhooks`: endpoints created, read, listed,
   * updated (a whole put conditional on their version) and deleted; an event read by id and the
   * events since a time, for a replay; the attempts listed by Query. Each confined to its partitions:
   * the api never writes an endpoint's delivery state or attempts.
   */
  manageFrom(workload: Workload): void {
    this.useTableAndQueue(workload);
    this.addPublishing(workload);
    // Listing the endpoints is publishing's Query of the same partition.
    workload.addToRolePolicy(
      partitionAccess(this.table, WEBHOOK_ENDPOINTS_PARTITION_PREFIX, [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:DeleteItem',
      ]),
    );
    workload.addToRolePolicy(
      partitionAccess(this.table, WEBHOOK_EVENTS_PARTITION_PREFIX, ['dynamodb:GetItem', 'dynamodb:Query']),
    );
    // The attempts are listed from the endpoint's partition; its replay budget (an item per hour)
    // is taken there by an atomic update.
    workload.addToRolePolicy(
      partitionAccess(this.table, WEBHOOK_DELIVERY_PARTITION_PREFIX, [
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ]),
    );
  }

  /**
   * What publishing costs (WebhookFanout over DynamoWebhookStore and SqsWebhookQueue): the tenant's
   * endpoints found by a Query of their partition, the events kept by batched writes to the events'
   * partition, one job per endpoint queued. Two statements, each confined to its partitions
   * (dynamodb:LeadingKeys): a producer can neither write an endpoint nor touch a breaker, a
   * concurrency slot or the deliveries log.
   */
  private addPublishing(workload: Workload): void {
    workload.addToRolePolicy(
      partitionAccess(this.table, WEBHOOK_ENDPOINTS_PARTITION_PREFIX, ['dynamodb:Query']),
    );
    workload.addToRolePolicy(
      partitionAccess(this.table, WEBHOOK_EVENTS_PARTITION_PREFIX, ['dynamodb:BatchWriteItem']),
    );
    workload.addToRolePolicy(queueSend([this.queue.queue]));
  }

  private useTableAndQueue(workload: Workload): void {
    workload.addEnvironment(EnvVar.webhooksTable, this.table.tableName);
    workload.addEnvironment(EnvVar.webhookQueueUrl, this.queue.queue.queueUrl);
  }
}
