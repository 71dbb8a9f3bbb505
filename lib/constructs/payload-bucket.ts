import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DEAD_LETTER_RETENTION } from './secure-queue.ts';

/**
 * How long a payload is kept. A pointer to it lives at most as long as the lane queue's message:
 * since SQS keeps the original enqueue time when it dead-letters a message, that is the lane DLQs'
 * retention in all. One more day covers S3 rounding expiry to the next midnight UTC, so a parked
 * message can still be redriven and sent on its last day.
 */
export const PAYLOAD_RETENTION = Duration.days(DEAD_LETTER_RETENTION.toDays() + 1);

export interface PayloadBucketProps {
  /**
   * How long a stored payload is kept before S3 deletes it. Must outlive every queue message that
   * can point at it (the lane DLQs' retention), or a redriven message finds its payload gone.
   * @default PAYLOAD_RETENTION (the DLQ retention plus a day: 15 days)
   */
  readonly expiration?: Duration;
}

const NO_ACCESS_LOG_REASON =
  'The bucket holds only transient claim-check payloads of queued send jobs, written by the api ' +
  'function and read by the senders (IAM-scoped to payloads/*), keyed by Baton message ids whose ' +
  'acceptance and sending are already recorded in the message timeline and the function logs. ' +
  'Server access logs would add a second bucket to duplicate that trail; enable CloudTrail S3 ' +
  'data events where object-level audit is required.';

/**
 * The claim-check bucket: send jobs too large for one SQS message are stored here and the lane
 * queue carries a pointer (DESIGN §4, sizes). Secure defaults written once: SSE-S3, TLS-only
 * bucket policy, every public access blocked, no ACLs, and a lifecycle rule that deletes payloads
 * once no queue can point at them any more, so bodies are kept no longer than SQS would keep them.
 *
 * SSE-S3 rather than a customer managed key, as for the queues: it costs nothing and needs no key
 * policy, and a KMS key would add a KMS call to every put and get without keeping the bodies from
 * anyone who may read the bucket.
 *
 * Retained on stack deletion: deleting a non-empty bucket fails the stack deletion, and emptying
 * it on delete needs a custom-resource function with broad S3 rights. A retained bucket empties
 * itself through the lifecycle rule; delete it by hand afterwards.
 */
export class PayloadBucket extends Construct {
  readonly bucket: Bucket;
  readonly expiration: Duration;

  constructor(scope: Construct, id: string, props: PayloadBucketProps = {}) {
    super(scope, id);
    this.expiration = props.expiration ?? PAYLOAD_RETENTION;
    validate(this.expiration);

    this.bucket = new Bucket(this, 'Bucket', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'ExpirePayloads',
          expiration: this.expiration,
          // Jobs above 8 MiB (SMTP's large messages) are uploaded in parts; a writer that died
          // mid-upload cannot abort (it lacks the right), so its parts go after a day.
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
    Validations.of(this.bucket).acknowledge({ id: 'AwsSolutions-S1', reason: NO_ACCESS_LOG_REASON });
  }
}

function validate(expiration: Duration): void {
  const days = expiration.toDays({ integral: false });
  if (!Number.isInteger(days) || days < 1) {
    throw new Error(`PayloadBucket: expiration must be a whole number of days (at least 1), got ${days}`);
  }
}
