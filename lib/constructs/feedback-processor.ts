import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { EventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { SqsSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import {
  confirmationWindowSeconds,
  feedbackReceivesFor,
  SES_EVENT_ALLOWANCE_SECONDS,
} from '../../lambdas/shared/event-path.ts';
import { EnvVar, Keys } from '../../lambdas/shared/names.ts';
import { guardAccess, guardKeyAccess, indexQuery, tableAccess } from '../iam.ts';
import type { BatonFunction } from './baton-function.ts';
import { addQueueConsumer, consumerVisibilityTimeout } from './queue-consumer.ts';
import type { SecureQueue } from './secure-queue.ts';

export interface FeedbackProcessorProps {
  /** The SNS topic SES publishes configuration-set events to. */
  readonly topic: ITopic;
  readonly messagesTable: ITable;
  readonly suppressionsTable: ITable;
  readonly statsTable: ITable;
  /** The abuse guard writes its decisions onto the keys (a key's, or every key of a tenant). */
  readonly apiKeysTable: ITable;
  /** The abuse guard's table: feedback counts bounces and complaints there, once per event. */
  readonly guardTable: ITable;
  readonly logRetention: RetentionDays;
  /**
   * Feedback function timeout.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * Event source mapping maximum concurrency. A bounce storm is absorbed by the queue rather than
   * by a burst of functions writing to the same hot message and stats items.
   * @default 5
   */
  readonly maxConcurrency?: number;
  /**
   * Buffering before an invocation: feedback is not latency-critical, fuller batches are cheaper.
   * @default Duration.seconds(5)
   */
  readonly maxBatchingWindow?: Duration;
}

const BATCH_SIZE = 10;

/**
 * The SES feedback path: SNS topic → SQS queue (with DLQ) → feedback function (DESIGN §6: a queue
 * buffers bounce storms and gives retries and a DLQ, with no HTTPS subscription to confirm).
 */
export class FeedbackProcessor extends Construct {
  readonly queue: SecureQueue;
  readonly handler: BatonFunction;
  readonly eventSourceMapping: EventSourceMapping;
  /**
   * How long after an ambiguous SendEmail SES's evidence can still be on its way through this path
   * in normal operation: the senders wait this long before they send again (event-path.ts).
   */
  readonly confirmationWindow: Duration;

  constructor(scope: Construct, id: string, props: FeedbackProcessorProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.seconds(30);
    const maxBatchingWindow = props.maxBatchingWindow ?? Duration.seconds(5);
    const visibility = consumerVisibilityTimeout(timeout, maxBatchingWindow);
    // Derived from the race window: an event for a message Baton cannot find is retried until the
    // race window has passed, so its last receive classifies it orphaned instead of dead-lettering
    // it as a transient failure (5 receives of 185 s ended at about 12 min, inside the 15 min).
    const maxReceiveCount = feedbackReceivesFor(visibility.toSeconds());
    this.confirmationWindow = Duration.seconds(
      confirmationWindowSeconds({
        publishSeconds: SES_EVENT_ALLOWANCE_SECONDS,
        batchingWindowSeconds: maxBatchingWindow.toSeconds(),
        visibilitySeconds: visibility.toSeconds(),
      }),
    );
    const consumer = addQueueConsumer(this, 'FeedbackProcessor', {
      functionId: 'Handler',
      function: {
        entry: 'lambdas/feedback/handler.ts',
        serviceName: 'baton-feedback',
        description: 'Applies SES delivery, bounce and complaint events to messages and suppressions',
        timeout,
        logRetention: props.logRetention,
        environment: {
          [EnvVar.messagesTable]: props.messagesTable.tableName,
          [EnvVar.suppressionsTable]: props.suppressionsTable.tableName,
          [EnvVar.statsTable]: props.statsTable.tableName,
          [EnvVar.apiKeysTable]: props.apiKeysTable.tableName,
          [EnvVar.guardTable]: props.guardTable.tableName,
        },
      },
      maxReceiveCount,
      batchSize: BATCH_SIZE,
      maxBatchingWindow,
      maxConcurrency: props.maxConcurrency ?? 5,
    });
    this.queue = consumer.queue;
    this.handler = consumer.function;
    this.eventSourceMapping = consumer.eventSourceMapping;
    // Raw delivery: the queue body is the SES event itself rather than an SNS envelope around it.
    // The subscription also writes the queue policy statement admitting this topic only.
    // SNS drops an event it cannot deliver (a client-side error such as a queue policy or queue
    // that no longer admits it is never retried), and a lost bounce is an address Baton keeps
    // mailing. The subscription therefore dead-letters into the feedback DLQ: already alarmed, and
    // admitting this topic only; the feedback function reads the events with or without an SNS
    // envelope, so an operator redrives them to the feedback queue like any other.
    props.topic.addSubscription(
      new SqsSubscription(this.queue.queue, {
        rawMessageDelivery: true,
        deadLetterQueue: this.queue.deadLetterQueue,
      }),
    );

    this.handler.addToRolePolicy(
      tableAccess(props.messagesTable, [
        'dynamodb:GetItem',
        // Status writes replace the whole record, conditional on its version.
        'dynamodb:PutItem',
      ]),
    );
    // Query on the GSI maps an SES message id to the Baton id when the message tag is missing.
    this.handler.addToRolePolicy(indexQuery(props.messagesTable, Keys.messages.sesMessageIdIndex));
    // Suppressions (with tombstones) and the soft-bounce counters: read, then conditional writes.
    this.handler.addToRolePolicy(
      tableAccess(props.suppressionsTable, ['dynamodb:GetItem', 'dynamodb:PutItem']),
    );
    this.handler.addToRolePolicy(tableAccess(props.statsTable, ['dynamodb:UpdateItem']));
    // The abuse guard: counts feedback, evaluates the scopes, applies decisions to the keys.
    this.handler.addToRolePolicy(guardAccess(props.guardTable));
    this.handler.addToRolePolicy(guardKeyAccess(props.apiKeysTable));
  }
}
