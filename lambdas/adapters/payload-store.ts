import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
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
 * Payloads larger than this are uploaded in parts of this size. S3 takes one PutObject of up to
 * 5 GB, but local mode's S3 (fauxqs) takes no request above 11 MiB, and a job from the SMTP entry
 * can be 40 MB; one way of writing serves both. Parts (at least 5 MiB, S3's minimum but for the
 * last) are written one after another, so a large job is in memory once, not once per part.
 */
export const PART_BYTES = 8 * 1024 * 1024;

/** The object is not there (never stored, expired, or deleted): retrying cannot bring it back. */
export class PayloadMissingError extends PermanentError {
  override readonly name = 'PayloadMissingError';
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

  /**
   * Throws TransientError (worth retrying) or PermanentError, the SDK error kept as `cause`. A
   * multipart upload that fails half way is not aborted (that needs a right the writers do not
   * have): no object is made, and the bucket's lifecycle rule removes the parts after a day.
   */
  async put(key: string, bytes: Uint8Array): Promise<void> {
    try {
      if (bytes.byteLength <= PART_BYTES) {
        await this.#s3.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: bytes,
            ContentType: 'application/json',
          }),
        );
        return;
      }
      const { UploadId } = await this.#s3.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: 'application/json' }),
      );
      const parts: Array<{ ETag: string | undefined; PartNumber: number }> = [];
      for (let start = 0; start < bytes.byteLength; start += PART_BYTES) {
        const PartNumber = parts.length + 1;
        const { ETag } = await this.#s3.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId,
            PartNumber,
            Body: bytes.subarray(start, start + PART_BYTES),
          }),
        );
        parts.push({ ETag, PartNumber });
      }
      await this.#s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: parts },
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
        throw new PayloadMissingError(
          `payload ${key} is missing (expired or never stored): ${errorName(error)}`,
          {
            cause: error,
          },
        );
      }
      throw mapped(error, `reading payload ${key}`);
    }
  }

  /**
   * Deletes the object; a missing one is no error (S3 answers a delete of a missing key with
   * success). Only the held jobs are ever deleted by code (the api's role may delete nothing else).
   */
  async delete(key: string): Promise<void> {
    try {
      await this.#s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      throw mapped(error, `deleting payload ${key}`);
    }
  }
}

function mapped(error: unknown, what: string): Error {
  const message = `${what} failed: ${errorName(error)}`;
  return isTransient(error)
    ? new TransientError(message, { cause: error })
    : new PermanentError(message, { cause: error });
}
