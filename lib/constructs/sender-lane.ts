import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { EventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import {
  EnvVar,
  HELD_INDEX_PREFIX,
  HELD_PAYLOAD_PREFIX,
  LANES,
  type Lane,
  PAYLOAD_KEY_PREFIX,
  SENDER_SERVICE,
} from '../../lambdas/shared/names.ts';
import { acknowledgeObjectKeys, objectAccess, partitionAccess, tableAccess } from '../iam.ts';
import type { BatonFunction } from './baton-function.ts';
import { addQueueConsumer } from './queue-consumer.ts';
import type { SecureQueue } from './secure-queue.ts';

export interface SenderLaneProps {
  /** The lane this sender drains; becomes `BATON_LANE`. */
  readonly lane: Lane;
  readonly messagesTable: ITable;
  readonly suppressionsTable: ITable;
  readonly statsTable: ITable;
  /** The job's key is read before each send: the abuse guard's state is denormalised onto it. */
  readonly apiKeysTable: ITable;
  /** The abuse guard's table: the sender writes only its held-mail index (a message held at send). */
  readonly guardTable: ITable;
  /** Where jobs too large for a queue message are stored (claim check); the sender reads them. */
  readonly payloadBucket: IBucket;
  /** Name of the SES configuration set every send names (events flow back through it). */
  readonly configurationSetName: string;
  /** `ses:SendEmail` / `ses:SendRawEmail` on the identity and the configuration set. */
  readonly sendPolicy: PolicyStatement;
  /** Recipients per second this lane's function may use in total (its share of the SES rate). */
  readonly sendRate: number;
  /** Event source mapping maximum concurrency (2..1000). */
  readonly maxConcurrency: number;
  readonly logRetention: RetentionDays;
  /**
   * Sender timeout: long enough to send a whole batch of the largest message at the lane's paced rate
   * (`laneSendPlans` sizes it); the sender hands back what it cannot send before it.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * Records per invocation (1..10), no more than the sender can send within its timeout.
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * Receives before a message is dead-lettered. Higher than the feedback queue's because a send can
   * fail transiently for a while (SES throttling, a claim held by a crashed instance) before it is
   * worth an operator's attention.
   * @default 10
   */
  readonly maxReceiveCount?: number;
  /**
   * How long the poller may wait to fill a batch. Small, because it adds directly to the latency of
   * a lone password reset.
   * @default Duration.seconds(1)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * The sender function's memory in MB. A job is held, composed and base64-encoded for SES at
   * about eight times its size: the API's 6.5 MB jobs fit the default, the SMTP front door's 25 MB
   * messages need 512 (the stack sets it with `smtp=true`).
   * @default 256
   */
  readonly memorySize?: number;
}

/**
 * How much longer than the timeout a claim protects an attempt: 120 s at the 30 s timeout, as before.
 * Shorter than the queue's visibility timeout (six timeouts), so the retry of a dead attempt finds the
 * claim expired.
 */
const CLAIM_LEASE_BEYOND_TIMEOUT = Duration.seconds(90);

/** A sender's memory when SMTP takes 25 MB messages (see {@link SenderLaneProps.memorySize}). */
export const SMTP_SENDER_MEMORY_MB = 512;

/**
 * The sender's bundle-time constants. Deployed, SES Easy DKIM signs and the sender never does, so its
 * bundle leaves out mailauth's signer (lambdas/domain/delivery/dkim.ts, with iconv-lite, joi, tldts and more:
 * about 1.1 MB of a 2 MB bundle). `loadDkimSigner` (lambdas/sender/app.ts) imports the signer in a
 * branch this define makes dead, and throws a ConfigurationError naming BATON_DKIM_KEY_FILE instead:
 * a key configured on a deployed sender fails its init, it never sends unsigned. Run from source
 * (local mode, tests) the variable is unset and the sender signs with mailauth.
 */
export const SENDER_BUNDLE_DEFINE: Readonly<Record<string, string>> = {
  'process.env.BATON_DKIM_SIGNER': JSON.stringify('omitted'),
};

/**
 * One delivery lane: its queue and DLQ, its sender function and the event source mapping between
 * them. Lanes are separate so a large campaign never delays a password reset (DESIGN §1): each has
 * its own backlog, retries and concurrency.
 */
export class SenderLane extends Construct {
  readonly lane: Lane;
  readonly queue: SecureQueue;
  readonly sender: BatonFunction;
  readonly eventSourceMapping: EventSourceMapping;

  constructor(scope: Construct, id: string, props: SenderLaneProps) {
    super(scope, id);
    validate(props);
    this.lane = props.lane;

    const maxReceiveCount = props.maxReceiveCount ?? 10;
    const timeout = props.timeout ?? Duration.seconds(30);
    const consumer = addQueueConsumer(this, 'SenderLane', {
      functionId: 'Sender',
      function: {
        entry: 'lambdas/sender/handler.ts',
        serviceName: SENDER_SERVICE,
        description: `Sends queued ${props.lane} messages through SES`,
        timeout,
        ...(props.memorySize !== undefined ? { memorySize: props.memorySize } : {}),
        logRetention: props.logRetention,
        define: SENDER_BUNDLE_DEFINE,
        environment: {
          [EnvVar.messagesTable]: props.messagesTable.tableName,
          [EnvVar.suppressionsTable]: props.suppressionsTable.tableName,
          [EnvVar.statsTable]: props.statsTable.tableName,
          [EnvVar.apiKeysTable]: props.apiKeysTable.tableName,
          [EnvVar.guardTable]: props.guardTable.tableName,
          [EnvVar.configurationSet]: props.configurationSetName,
          [EnvVar.lane]: props.lane,
          [EnvVar.maxSendRate]: String(props.sendRate),
          [EnvVar.maxConcurrency]: String(props.maxConcurrency),
          [EnvVar.maxReceiveCount]: String(maxReceiveCount),
          // A live attempt, paced for up to the whole timeout, never loses its claim.
          [EnvVar.claimLeaseSeconds]: String(timeout.toSeconds() + CLAIM_LEASE_BEYOND_TIMEOUT.toSeconds()),
          [EnvVar.payloadBucket]: props.payloadBucket.bucketName,
        },
      },
      maxReceiveCount,
      batchSize: props.batchSize ?? 10,
      maxBatchingWindow: props.maxBatchingWindow ?? Duration.seconds(1),
      maxConcurrency: props.maxConcurrency,
    });
    this.queue = consumer.queue;
    this.sender = consumer.function;
    this.eventSourceMapping = consumer.eventSourceMapping;

    // Claim (conditional update) and status updates on the message record.
    this.sender.addToRolePolicy(
      tableAccess(props.messagesTable, [
        'dynamodb:GetItem',
        // Status writes replace the whole record, conditional on its version (and the claim).
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
      ]),
    );
    // One BatchGet per message checks every recipient (and erasure tombstones) against the list.
    this.sender.addToRolePolicy(tableAccess(props.suppressionsTable, ['dynamodb:BatchGetItem']));
    this.sender.addToRolePolicy(tableAccess(props.statsTable, ['dynamodb:UpdateItem']));
    // The guard's re-check reads the job's key by id: never a write, a scan or another table's item.
    this.sender.addToRolePolicy(tableAccess(props.apiKeysTable, ['dynamodb:GetItem']));
    this.sender.addToRolePolicy(props.sendPolicy);
    // No s3:ListBucket: a missing payload then reads as AccessDenied, which the adapter treats as
    // missing, and the sender cannot enumerate other messages' payloads.
    this.sender.addToRolePolicy(objectAccess(props.payloadBucket, PAYLOAD_KEY_PREFIX, ['s3:GetObject']));
    acknowledgeObjectKeys(
      this.sender.role,
      props.payloadBucket,
      PAYLOAD_KEY_PREFIX,
      'Payload objects are named per message at run time (payloads/<message id>); the sender may ' +
        'only get objects under that prefix of the payload bucket, never list; it puts and deletes only held jobs (payloads/held/).',
    );
    // The abuse guard (issue 13): the job's key carries the guard's state (read, cached); a message
    // the guard holds when its turn comes is kept, its job under payloads/held/ and an entry in the
    // held-mail index. GetItem there: keeping a message kept already repairs its entry. DeleteItem
    // and DeleteObject: a duplicate delivery that took the message between the keep and the record
    // write removes the entry it kept (domain/delivery/guard-hold.ts).
    this.sender.addToRolePolicy(
      partitionAccess(props.guardTable, HELD_INDEX_PREFIX, [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:DeleteItem',
      ]),
    );
    this.sender.addToRolePolicy(
      objectAccess(props.payloadBucket, HELD_PAYLOAD_PREFIX, ['s3:PutObject', 's3:DeleteObject']),
    );
    acknowledgeObjectKeys(
      this.sender.role,
      props.payloadBucket,
      HELD_PAYLOAD_PREFIX,
      'Held jobs are named per message at run time (payloads/held/<message id>.json); the sender may ' +
        'only put and delete objects under that prefix, to keep the job of a message the abuse guard ' +
        'holds (and remove it when a duplicate delivery took the message meanwhile).',
    );
  }
}

/** SQS's longest visibility timeout: a sender cannot put a message away for longer. */
const MAX_VISIBILITY = Duration.hours(12);

/**
 * Sets how long this lane's sender waits for SES's evidence after a SendEmail whose answer was
 * lost, before it sends again (the feedback path's {@link FeedbackProcessor.confirmationWindow}).
 * The wait costs one receive: the sender puts the message away for exactly that long.
 */
export function waitForSesEvidence(lane: SenderLane, window: Duration): void {
  if (window.toSeconds() > MAX_VISIBILITY.toSeconds()) {
    throw new Error(
      `SenderLane: a confirmation window of ${window.toSeconds()} s exceeds SQS's 12 h visibility limit`,
    );
  }
  lane.sender.function.addEnvironment(EnvVar.confirmationWindowSeconds, String(window.toSeconds()));
}

function validate(props: SenderLaneProps): void {
  if (!LANES.includes(props.lane)) {
    throw new Error(`SenderLane: unknown lane "${props.lane}", expected one of ${LANES.join(', ')}`);
  }
  if (!(props.sendRate > 0)) {
    throw new Error(`SenderLane: sendRate must be greater than 0, got ${props.sendRate}`);
  }
  const batchSize = props.batchSize ?? 10;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
    throw new Error(`SenderLane: batchSize must be an integer from 1 to 10, got ${batchSize}`);
  }
}
