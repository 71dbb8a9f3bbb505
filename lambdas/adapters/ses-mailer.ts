import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import type { Mailer, OutboundMail } from '../domain/ports.ts';
import { PermanentError, SendingPausedError, TransientError } from '../shared/errors.ts';
import { errorName, isTransient } from './aws-errors.ts';

export function createSesClient(): SESv2Client {
  return new SESv2Client({});
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

/**
 * SES v2 SendEmail with raw content. This is the only code that knows SES exception names: it
 * maps them to TransientError (retry with backoff), PermanentError (fail the recipients, no retry)
 * or SendingPausedError (hand the batch back, alarm).
 */
export class SesMailer implements Mailer {
  readonly #ses: SESv2Client;
  readonly #configurationSet: string;

  constructor(ses: SESv2Client, configurationSet: string) {
    this.#ses = ses;
    this.#configurationSet = configurationSet;
  }

  async send(mail: OutboundMail): Promise<string> {
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
      );
      if (!out.MessageId) throw new TransientError('SES answered without a message id');
      return out.MessageId;
    } catch (error) {
      if (error instanceof TransientError) throw error;
      const name = errorName(error);
      const words = PERMANENT[name];
      const detail = error instanceof Error && error.message ? `: ${error.message.slice(0, 300)}` : '';
      if (words) throw new PermanentError(`${words}${detail}`, { cause: error });
      if (STOP.has(name))
        throw new SendingPausedError(`SES sending is paused for the account (${name})`, { cause: error });
      if (isTransient(error))
        throw new TransientError(`SES is unavailable or throttling (${name})`, { cause: error });
      throw new PermanentError(`SES refused the message (${name})${detail}`, { cause: error });
    }
  }
}
