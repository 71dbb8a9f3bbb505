import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { EventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { EnvVar, ERASURE_SERVICE } from '../../lambdas/shared/names.ts';
import { queueSend, secretRead, tableAccess } from '../iam.ts';
import type { BatonFunction, Workload } from './baton-function.ts';
import { addQueueConsumer } from './queue-consumer.ts';
import type { SecureQueue } from './secure-queue.ts';

export interface ErasureProps {
  /** The table whose records an erasure scans and rewrites. */
  readonly messagesTable: ITable;
  readonly logRetention: RetentionDays;
  /**
   * Worker timeout. Each step scans until 20 s before it, then queues the rest as the next step.
   * @default Duration.minutes(2)
   */
  readonly timeout?: Duration;
  /**
   * How many steps run at once, account-wide. Each one scans the Messages table with 8 parallel
   * segments, so this bounds the read load erasures put beside live traffic.
   * @default 2 (the least an SQS event source allows)
   */
  readonly maxConcurrency?: number;
}

/**
 * Why the secret is never rotated (cdk-nag AwsSolutions-SMG4). Exported for the infra tests.
 */
export const NO_ROTATION_REASON =
  'The erasure secret keys the HMAC that stands in for erased addresses: their suppression ' +
  'tombstones are found by recomputing it from the address. A rotated secret would orphan every ' +
  'tombstone, and erased addresses would be mailed again; it is generated once per deployment, ' +
  'readable only by the Baton functions, and retained if the stack is deleted.';

/** Below this a step has no time left to scan once its 20 s margin is taken off. */
const MIN_TIMEOUT_SECONDS = 60;

/**
 * Recipient erasure (DESIGN §2): the per-deployment secret that erased addresses are replaced by an
 * HMAC under, and the queue and worker that carry on an erasure the api function could not finish
 * in its request (a full scan of the Messages table; there is no index by recipient).
 */
export class Erasure extends Construct {
  /** Generated at deployment, 64 alphanumeric characters; never rotated, retained on stack deletion. */
  readonly secret: Secret;
  readonly queue: SecureQueue;
  readonly worker: BatonFunction;
  readonly eventSourceMapping: EventSourceMapping;

  constructor(scope: Construct, id: string, props: ErasureProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.minutes(2);
    validate(timeout);

    const consumer = addQueueConsumer(this, 'Erasure', {
      functionId: 'Worker',
      function: {
        entry: 'lambdas/erasure/handler.ts',
        serviceName: ERASURE_SERVICE,
        description: 'Continues recipient erasures: scans and rewrites message records, a step at a time',
        timeout,
        logRetention: props.logRetention,
        environment: { [EnvVar.messagesTable]: props.messagesTable.tableName },
      },
      // One job per invocation: a step uses the whole invocation's time budget, so a second job in
      // the batch would only wait for it. Failures are still reported per item.
      batchSize: 1,
      maxConcurrency: props.maxConcurrency ?? 2,
    });
    this.queue = consumer.queue;
    this.worker = consumer.function;
    this.eventSourceMapping = consumer.eventSourceMapping;

    this.secret = new Secret(this, 'Secret', {
      description:
        'Baton erasure key: erased addresses are replaced by an HMAC under it. Never rotate or delete it.',
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      // Losing it would orphan every tombstone (see NO_ROTATION_REASON), like losing the table.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.secret).acknowledge({ id: 'AwsSolutions-SMG4', reason: NO_ROTATION_REASON });

    this.useSecret(this.worker);
    // Each step queues the next one (the scan positions) on its own queue.
    this.continueFrom(this.worker);
    this.worker.addToRolePolicy(
      tableAccess(props.messagesTable, [
        // There is no index by recipient: the tenant's records are found by a parallel scan.
        'dynamodb:Scan',
        // Rewrites replace the whole record, conditional on its version; a conflict re-reads it.
        'dynamodb:PutItem',
        'dynamodb:GetItem',
      ]),
    );
  }

  /** Gives `fn` the secret's ARN (`BATON_ERASURE_SECRET_ARN`) and the right to read its value. */
  useSecret(fn: Workload): void {
    fn.addEnvironment(EnvVar.erasureSecretArn, this.secret.secretArn);
    fn.addToRolePolicy(secretRead(this.secret));
  }

  /** Lets `fn` hand the rest of an erasure to the worker (`BATON_ERASURE_QUEUE_URL`). */
  continueFrom(fn: Workload): void {
    fn.addEnvironment(EnvVar.erasureQueueUrl, this.queue.queue.queueUrl);
    fn.addToRolePolicy(queueSend([this.queue.queue]));
  }
}

function validate(timeout: Duration): void {
  const seconds = timeout.toSeconds();
  if (seconds < MIN_TIMEOUT_SECONDS || seconds > 900) {
    throw new Error(`Erasure: timeout must be ${MIN_TIMEOUT_SECONDS} to 900 seconds, got ${seconds}`);
  }
}
