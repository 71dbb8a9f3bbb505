import { SESv2Client, type SESv2ClientConfig, SendEmailCommand } from '@aws-sdk/client-sesv2';
import type { Mailer, OutboundMail } from '../domain/ports.ts';
import { PermanentError, SendingPausedError, TransientError, UncertainSendError } from '../shared/errors.ts';
import { errorCode, errorName, httpStatus, isThrottling, requestId } from './aws-errors.ts';

/**
 * How long one SendEmail may wait for SES's answer. SES answers in well under a second; without a
 * bound (the SDK sets none) a call that hangs runs into the Lambda timeout, and the invocation's
 * other records come back unannounced, a last-receive one reaching the dead-letter queue `sending`.
 * 15 s leaves half of the shortest sender timeout (30 s) to record the attempt uncertain.
 */
export const SES_REQUEST_TIMEOUT_MS = 15_000;

/**
 * One attempt per SendEmail: the SDK's own retries (3 by default) would resend after a 5xx or a
 * timeout, when SES may already have taken the message. Baton's retry, which first waits for SES's
 * evidence (`sendJob`), is the only one. A call that outlasts `requestTimeoutMs` fails (the SDK
 * otherwise only warns) and is mapped like a lost answer: SES may have taken the message.
 */
export function createSesClient(
  config: SESv2ClientConfig = {},
  requestTimeoutMs = SES_REQUEST_TIMEOUT_MS,
): SESv2Client {
  return new SESv2Client({
    ...config,
    maxAttempts: 1,
    // Options for the SDK's own Node handler (no handler of our own, so no extra dependency).
    requestHandler: { requestTimeout: requestTimeoutMs, throwOnRequestTimeout: true },
  });
}

/** SES says no to this message for good; the reason is shown on the recipients. */
const PERMANENT: Readonly<Record<string, string>> = {
  MessageRejected: 'SES rejected the message',
  MailFromDomainNotVerifiedException: 'the MAIL FROM domain is not verified in SES',
  BadRequestException: 'SES refused the request as invalid',
  NotFoundException: 'an SES resource the message needs (identity or configuration set) does not exist',
};

/** The account cannot send anything right now; retrying one message is pointless. */
const STOP = new Set(['SendingPausedException', 'AccountSuspendedException']);

/** The request never left this host: nothing reached SES (no route, no such host, refused). */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

/**
 * SES v2 SendEmail with raw content. This is the only code that knows SES exception names: it
 * maps them to TransientError (SES kept nothing: retry with backoff), UncertainSendError (a 5xx,
 * a reset or a timeout after the request went out: SES may have kept it), PermanentError (fail the
 * recipients, no retry) or SendingPausedError (hand the batch back, alarm).
 */
export class SesMailer implements Mailer {
  readonly #ses: SESv2Client;
  readonly #configurationSet: string;

  constructor(ses: SESv2Client, configurationSet: string) {
    this.#ses = ses;
    this.#configurationSet = configurationSet;
  }

  async send(mail: OutboundMail): Promise<string> {
    const left = mail.answerBy === undefined ? undefined : mail.answerBy - Date.now();
    // Nothing was sent: the invocation has no time left to learn the answer.
    if (left !== undefined && left <= 0)
      throw new TransientError('no time left in this invocation to call SES');
    try {
      const out = await this.#ses.send(
        new SendEmailCommand({
          FromEmailAddress: mail.from,
          Destination: {
            ToAddresses: [...mail.to],
            CcAddresses: [...mail.cc],
            BccAddresses: [...mail.bcc],
          },
          Content: { Raw: { Data: mail.raw } },
          ConfigurationSetName: this.#configurationSet,
          EmailTags: Object.entries(mail.tags).map(([Name, Value]) => ({ Name, Value })),
        }),
        // Cut off before the invocation's deadline: an abandoned call is a lost answer (recorded
        // uncertain), a killed invocation records nothing.
        left === undefined ? {} : { abortSignal: AbortSignal.timeout(left) },
      );
      if (!out.MessageId)
        throw new UncertainSendError('SES answered 200 without a message id; it may have taken the message', {
          ...(out.$metadata.requestId ? { requestId: out.$metadata.requestId } : {}),
        });
      return out.MessageId;
    } catch (error) {
      if (error instanceof TransientError) throw error;
      const name = errorName(error);
      const words = PERMANENT[name];
      const detail = error instanceof Error && error.message ? `: ${error.message.slice(0, 300)}` : '';
      if (words) throw new PermanentError(`${words}${detail}`, { cause: error });
      if (STOP.has(name))
        throw new SendingPausedError(`SES sending is paused for the account (${name})`, { cause: error });
      const status = httpStatus(error);
      // Throttling is decided before SES takes anything: proven not sent.
      if (isThrottling(error) || status === 429)
        throw new TransientError(`SES is unavailable or throttling (${name})`, { cause: error });
      if (status === undefined && NOT_SENT_CODES.has(errorCode(error)))
        throw new TransientError(`SES is unreachable (${errorCode(error)})`, { cause: error });
      if (status === undefined || status >= 500) {
        const id = requestId(error);
        throw new UncertainSendError(
          `SES's answer was lost (${name}${status ? ` ${status}` : ''}); it may have taken the message`,
          { cause: error, ...(id ? { requestId: id } : {}) },
        );
      }
      throw new PermanentError(`SES refused the message (${name})${detail}`, { cause: error });
    }
  }
}
