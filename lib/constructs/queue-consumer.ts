import { Duration, Validations } from 'aws-cdk-lib';
import { EventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { queueConsume } from '../iam.ts';
import { BatonFunction, type BatonFunctionProps } from './baton-function.ts';
import { SecureQueue } from './secure-queue.ts';

export interface QueueConsumerProps {
  /** Construct id of the function (`Sender`, `Handler`, `Worker`); the queue is `Queue`, the mapping `EventSource`. */
  readonly functionId: string;
  readonly function: BatonFunctionProps;
  /**
   * Receives before a message moves to the dead-letter queue.
   * @default SecureQueue's default (5)
   */
  readonly maxReceiveCount?: number;
  /** Records per invocation. */
  readonly batchSize: number;
  /**
   * How long the poller may wait to fill a batch (0 to 300 s).
   * @default - none (Lambda's default: no wait)
   */
  readonly maxBatchingWindow?: Duration;
  /** Event source mapping maximum concurrency (2..1000). */
  readonly maxConcurrency: number;
}

/**
 * Why a queue consumer has no Lambda dead-letter queue (cdk-nag Serverless-LambdaDLQ). Exported for
 * the infra tests.
 */
export const QUEUE_CONSUMER_DLQ_REASON =
  'A function DeadLetterConfig only receives failed asynchronous invocations, and this function is ' +
  'only ever invoked synchronously by its SQS event source mapping. A failed record returns to the ' +
  "queue and, after maxReceiveCount receives, moves to the queue's own dead-letter queue, which is " +
  'alarmed; a function DLQ would stay empty and add a queue and an sqs:SendMessage grant.';

/**
 * Why the event source mapping has no on-failure destination (cdk-nag
 * Serverless-LambdaEventSourceMappingDestination). Exported for the infra tests.
 */
export const QUEUE_CONSUMER_DESTINATION_REASON =
  'Lambda supports on-failure destinations only for stream and Kafka event sources (Kinesis, ' +
  'DynamoDB Streams, MSK, self-managed Kafka), not for SQS. For an SQS source the failure ' +
  "destination is the queue's redrive policy: a record that keeps failing (reported per item " +
  'through ReportBatchItemFailures) is moved to the alarmed dead-letter queue.';

/** What {@link addQueueConsumer} builds. */
export interface QueueConsumer {
  readonly queue: SecureQueue;
  readonly function: BatonFunction;
  readonly eventSourceMapping: EventSourceMapping;
}

/**
 * The visibility timeout of a consumer's queue, following Lambda's guidance: at least six times the
 * function timeout plus the batching window. Exported so settings derived from it (the feedback
 * queue's receives, the senders' confirmation window) use the same number.
 */
export function consumerVisibilityTimeout(timeout: Duration, maxBatchingWindow?: Duration): Duration {
  return Duration.seconds(6 * timeout.toSeconds() + (maxBatchingWindow?.toSeconds() ?? 0));
}

/**
 * A queue (with its DLQ) drained by a Baton function, wired the way every Baton consumer is: the
 * visibility timeout sized from the function timeout, partial batch failures reported, a concurrency
 * cap, and a role that may receive, delete and change visibility on that queue only.
 *
 * A function rather than a construct: the resources are created directly in `scope`, under the ids
 * the lane, feedback and erasure constructs always gave them, so their logical ids (and the queues
 * they name) stay where they are. `owner` prefixes validation errors.
 */
export function addQueueConsumer(scope: Construct, owner: string, props: QueueConsumerProps): QueueConsumer {
  validate(owner, props);
  const queue = new SecureQueue(scope, 'Queue', {
    visibilityTimeout: consumerVisibilityTimeout(props.function.timeout, props.maxBatchingWindow),
    ...(props.maxReceiveCount === undefined ? {} : { maxReceiveCount: props.maxReceiveCount }),
  });
  const fn = new BatonFunction(scope, props.functionId, props.function);

  // A bare mapping rather than SqsEventSource, which would also grant sqs:GetQueueUrl through
  // grantConsumeMessages; the role gets exactly the actions the poller uses.
  const eventSourceMapping = new EventSourceMapping(scope, 'EventSource', {
    target: fn.function,
    eventSourceArn: queue.queue.queueArn,
    batchSize: props.batchSize,
    ...(props.maxBatchingWindow === undefined ? {} : { maxBatchingWindow: props.maxBatchingWindow }),
    reportBatchItemFailures: true,
    maxConcurrency: props.maxConcurrency,
  });
  fn.addToRolePolicy(queueConsume(queue.queue));
  Validations.of(fn.function).acknowledge({ id: 'Serverless-LambdaDLQ', reason: QUEUE_CONSUMER_DLQ_REASON });
  Validations.of(eventSourceMapping).acknowledge({
    id: 'Serverless-LambdaEventSourceMappingDestination',
    reason: QUEUE_CONSUMER_DESTINATION_REASON,
  });
  return { queue, function: fn, eventSourceMapping };
}

function validate(owner: string, props: QueueConsumerProps): void {
  const { maxConcurrency } = props;
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 2 || maxConcurrency > 1000) {
    throw new Error(`${owner}: maxConcurrency must be an integer from 2 to 1000, got ${maxConcurrency}`);
  }
  const window = props.maxBatchingWindow?.toSeconds() ?? 0;
  if (window < 0 || window > 300) {
    throw new Error(`${owner}: maxBatchingWindow must be 0 to 300 seconds, got ${window}`);
  }
}
