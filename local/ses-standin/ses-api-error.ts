/**
 * An error answered the way SES v2 (restJson1) answers it: the `x-amzn-errortype` header carries the
 * shape name, which the AWS SDK v3 reads before the body and maps to its exception class
 * (`MessageRejected`, `TooManyRequestsException`, ...), and the body carries `{"message": "..."}`.
 */
export class SesApiError extends Error {
  readonly errorType: SesErrorType;
  readonly statusCode: number;

  constructor(errorType: SesErrorType, message: string) {
    super(message);
    this.name = 'SesApiError';
    this.errorType = errorType;
    this.statusCode = STATUS_BY_TYPE[errorType];
  }
}

/** The SendEmail/GetAccount error shapes of the SES v2 model, plus the catch-alls a service returns. */
export type SesErrorType =
  | 'BadRequestException'
  | 'MessageRejected'
  | 'TooManyRequestsException'
  | 'SendingPausedException'
  | 'AccountSuspendedException'
  | 'LimitExceededException'
  | 'MailFromDomainNotVerifiedException'
  | 'NotFoundException'
  | 'UnknownOperationException'
  | 'InternalFailure';

// Status codes from the SES v2 Smithy model (`@httpError`); the SDK only uses them for `$fault`
// and retry decisions (429 and 5xx are retried), so they matter for the soak test.
const STATUS_BY_TYPE: Record<SesErrorType, number> = {
  BadRequestException: 400,
  MessageRejected: 400,
  TooManyRequestsException: 429,
  SendingPausedException: 400,
  AccountSuspendedException: 400,
  LimitExceededException: 400,
  MailFromDomainNotVerifiedException: 400,
  NotFoundException: 404,
  UnknownOperationException: 404,
  InternalFailure: 500,
};
