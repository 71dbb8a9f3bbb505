import { Duration, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface SecureQueueProps {
  /**
   * How long a received message stays invisible. Lambda recommends at least six times the
   * consuming function's timeout (plus the batching window), so a retried batch never overlaps a
   * slow one still running.
   */
  readonly visibilityTimeout: Duration;
  /**
   * Receives before a message moves to the dead-letter queue. Below 5, a burst of throttling
   * (Lambda or SES) can dead-letter healthy messages.
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * How long the source queue keeps a message.
   * @default QUEUE_RETENTION (4 days, the SQS default)
   */
  readonly retentionPeriod?: Duration;
  /**
   * How long the dead-letter queue keeps a message. Must be longer than `retentionPeriod`: SQS keeps
   * a message's original enqueue time when it is dead-lettered, so an equal retention would expire
   * it almost at once.
   * @default DEAD_LETTER_RETENTION (14 days, the SQS maximum)
   */
  readonly deadLetterRetentionPeriod?: Duration;
}

const MIN_RECEIVE_COUNT = 5;

/** Why a dead-letter queue has no dead-letter queue of its own (cdk-nag Serverless-SQSRedrivePolicy). */
export const DEAD_LETTER_QUEUE_REDRIVE_REASON =
  'This is the dead-letter queue itself: nothing consumes it, so no receive count can ever be ' +
  'exceeded. Its messages stay until an operator inspects and redrives them to the source queue, ' +
  "within a retention longer than the source queue's; Baton alarms on any message in it " +
  '(Monitoring: <name>DeadLetters).';

/** How long a queue keeps a message unless told otherwise: the SQS default. */
export const QUEUE_RETENTION = Duration.days(4);
/**
 * How long a dead-letter queue keeps a message unless told otherwise: the SQS maximum. SQS keeps a
 * message's original enqueue time when it dead-letters it, so this is also the longest any message
 * of a Baton queue lives in all.
 */
export const DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * A queue and its dead-letter queue with the defaults every Baton queue needs written once:
 * server-side encryption, a TLS-only queue policy, and a DLQ that outlives the source queue, so a
 * message that keeps failing is parked where an operator can redrive it instead of being dropped.
 */
export class SecureQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: SecureQueueProps) {
    super(scope, id);
    const maxReceiveCount = props.maxReceiveCount ?? MIN_RECEIVE_COUNT;
    const retentionPeriod = props.retentionPeriod ?? QUEUE_RETENTION;
    const deadLetterRetentionPeriod = props.deadLetterRetentionPeriod ?? DEAD_LETTER_RETENTION;
    validate(props, maxReceiveCount, retentionPeriod, deadLetterRetentionPeriod);

    // SQS-managed SSE costs nothing and needs no key policy for SNS or Lambda; a customer managed
    // key would add KMS calls to every receive without protecting against anyone who can read the queue.
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: deadLetterRetentionPeriod,
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'Serverless-SQSRedrivePolicy',
      reason: DEAD_LETTER_QUEUE_REDRIVE_REASON,
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod,
      visibilityTimeout: props.visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });
  }
}

function validate(
  props: SecureQueueProps,
  maxReceiveCount: number,
  retentionPeriod: Duration,
  deadLetterRetentionPeriod: Duration,
): void {
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < MIN_RECEIVE_COUNT || maxReceiveCount > 1000) {
    throw new Error(
      `SecureQueue: maxReceiveCount must be an integer from ${MIN_RECEIVE_COUNT} to 1000, got ${maxReceiveCount}`,
    );
  }
  const visibility = props.visibilityTimeout.toSeconds();
  if (visibility < 0 || visibility > 43_200) {
    throw new Error(`SecureQueue: visibilityTimeout must be 0 to 12 hours, got ${visibility} s`);
  }
  if (deadLetterRetentionPeriod.toSeconds() <= retentionPeriod.toSeconds()) {
    throw new Error(
      `SecureQueue: deadLetterRetentionPeriod (${deadLetterRetentionPeriod.toHumanString()}) must be longer than ` +
        `retentionPeriod (${retentionPeriod.toHumanString()}), or dead-lettered messages expire almost at once`,
    );
  }
}
