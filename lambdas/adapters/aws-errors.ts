import { TransientError } from '../shared/errors.ts';

/** What the SDK v3 puts on service errors; network failures have no `$metadata.httpStatusCode`. */
interface SdkErrorShape {
  readonly name?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number; readonly requestId?: string };
  readonly $retryable?: unknown;
}

export function errorName(error: unknown): string {
  return typeof error === 'object' && error !== null && typeof (error as SdkErrorShape).name === 'string'
    ? ((error as SdkErrorShape).name as string)
    : 'UnknownError';
}

/** A DynamoDB conditional write (or update) whose condition did not hold. */
export function isConditionFailed(error: unknown): boolean {
  return errorName(error) === 'ConditionalCheckFailedException';
}

/** Node's code for a failure below HTTP (`ECONNREFUSED`, `ENOTFOUND`...); '' when there is none. */
export function errorCode(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : '';
}

export function httpStatus(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null
    ? (error as SdkErrorShape).$metadata?.httpStatusCode
    : undefined;
}

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'RequestThrottled',
  'SlowDown',
]);

/** The service said it is throttling (by name: SES answers some of these with a 400). */
export function isThrottling(error: unknown): boolean {
  return THROTTLING.has(errorName(error));
}

/** The AWS request id of an answer, when there was one. */
export function requestId(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null
    ? (error as SdkErrorShape).$metadata?.requestId
    : undefined;
}

/**
 * True for failures worth retrying: throttling, a 5xx, or no HTTP answer at all (connection
 * reset, timeout, DNS). The SDK has already retried these a few times by the time we see them.
 */
export function isTransient(error: unknown): boolean {
  const name = errorName(error);
  if (THROTTLING.has(name)) return true;
  const status = httpStatus(error);
  if (status === undefined) return true;
  return status >= 500 || status === 429;
}

/** Wraps an unexpected AWS failure: transient ones become TransientError, others are rethrown. */
export function rethrow(error: unknown, what: string): never {
  if (isTransient(error)) throw new TransientError(`${what} failed: ${errorName(error)}`, { cause: error });
  throw error;
}
