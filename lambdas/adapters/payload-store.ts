import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { optionalEnv } from '../shared/env.ts';
import { PermanentError, TransientError } from '../shared/errors.ts';
import { EnvVar, PAYLOAD_KEY_PREFIX } from '../shared/names.ts';
import { errorName, isTransient } from './aws-errors.ts';

/** The object key of a send job's payload: one object per Baton message id. */
export function payloadKey(messageId: string): string {
  return `${PAYLOAD_KEY_PREFIX}${messageId}`;
}

/**
 * The S3 client for the payload bucket. Endpoint and credentials come from the standard AWS
 * environment (local mode sets AWS_ENDPOINT_URL_S3 to its emulator, and BATON_S3_FORCE_PATH_STYLE,
 * because `<bucket>.127.0.0.1` style host names do not resolve there).
 */
export function createS3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  return new S3Client({ forcePathStyle: optionalEnv(EnvVar.s3ForcePathStyle, env) === 'true' });
}

/**
 * The errors S3 answers for a key that is not there: NoSuchKey, or AccessDenied when the caller may
 * not list the bucket (the senders may not, on purpose), which S3 answers instead of revealing
 * whether the key exists.
 */
const MISSING = new Set(['NoSuchKey', 'NotFound', 'AccessDenied']);

/**
 * The claim-check bucket: send jobs too large for one SQS message (DESIGN §4) are stored here and
 * the queue carries a pointer. Objects are never deleted by code; the bucket's lifecycle rule
 * expires them after the queues could still hold a pointer to them.
 */
export class S3PayloadStore {
  readonly bucket: string;
  readonly #s3: S3Client;

  constructor(s3: S3Client, bucket: string) {
    this.#s3 = s3;
    this.bucket = bucket;
  }

  /** Throws TransientError (worth retrying) or PermanentError, the SDK error kept as `cause`. */
  async put(key: string, bytes: Uint8Array): Promise<void> {
    try {
      await this.#s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentType: 'application/json',
        }),
      );
    } catch (error) {
      throw mapped(error, `storing payload ${key}`);
    }
  }

  /**
   * The stored bytes. A missing object is a PermanentError (retrying cannot bring it back); a
   * throttled or failed request a TransientError.
   */
  async get(key: string): Promise<Uint8Array> {
    try {
      const out = await this.#s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) throw new PermanentError(`payload ${key} has no body`);
      return await out.Body.transformToByteArray();
    } catch (error) {
      if (error instanceof PermanentError) throw error;
      if (!isTransient(error) && MISSING.has(errorName(error))) {
        throw new PermanentError(`payload ${key} is missing (expired or never stored): ${errorName(error)}`, {
          cause: error,
        });
      }
      throw mapped(error, `reading payload ${key}`);
    }
  }
}

function mapped(error: unknown, what: string): Error {
  const message = `${what} failed: ${errorName(error)}`;
  return isTransient(error)
    ? new TransientError(message, { cause: error })
    : new PermanentError(message, { cause: error });
}
