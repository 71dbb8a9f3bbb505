import { domainOf } from '../../lambdas/domain/address.ts';
import type { SesCommonHeaders, SesMail } from './events.ts';
import { addrSpec, headerValue, type MailHeader, parseHeaders, splitAddressList } from './mime-headers.ts';
import { SesApiError } from './ses-api-error.ts';

/** SES v2 limits (https://docs.aws.amazon.com/ses/latest/dg/quotas.html). */
export const MAX_RECIPIENTS = 50;
/** 40 MB for the whole MIME message as SES receives it (attachments already base64 in the MIME). */
export const MAX_RAW_MESSAGE_BYTES = 40 * 1024 * 1024;
// From the MessageTag docs: names and values are 1-256 of [A-Za-z0-9_-]; anything else is refused.
const TAG_PATTERN = /^[A-Za-z0-9_-]{1,256}$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

export interface EmailTag {
  readonly name: string;
  readonly value: string;
}

/** A SendEmail request that passed SES's checks. */
export interface SendEmailRequestData {
  /** The message exactly as the caller sent it (decoded `Content.Raw.Data`). */
  readonly raw: Buffer;
  readonly headers: MailHeader[];
  /** `mail.source` as SES reports it: `FromEmailAddress`, else the From header, verbatim. */
  readonly source: string;
  /** addr-spec of the source; its domain is the identity SES checks. */
  readonly sourceAddress: string;
  /** The destinations as given (display names included). */
  readonly destination: string[];
  /** addr-spec of each destination, same order; what events name (`mail.destination`, recipients). */
  readonly recipients: string[];
  readonly tags: EmailTag[];
  readonly configurationSet: string | undefined;
}

const badRequest = (message: string): SesApiError => new SesApiError('BadRequestException', message);

/**
 * Validates a SendEmail body (restJson1, already JSON-parsed) the way SES v2 does for raw content.
 * Throws {@link SesApiError}; error messages never include the message body.
 */
export const parseSendEmailRequest = (body: unknown): SendEmailRequestData => {
  if (!isRecord(body)) throw badRequest('The request body must be a JSON object.');
  const content = body.Content;
  if (!isRecord(content)) throw badRequest('Content is required.');
  if (content.Simple !== undefined || content.Template !== undefined) {
    // Baton builds (and DKIM-signs) MIME itself; a Simple/Template send would be a bug in the sender.
    throw badRequest(
      'The SES stand-in accepts raw content only (Content.Raw); Simple and Template are not supported.',
    );
  }
  const data = isRecord(content.Raw) ? content.Raw.Data : undefined;
  if (typeof data !== 'string' || data.length === 0) throw badRequest('Content.Raw.Data is required.');
  if (!BASE64_PATTERN.test(data)) throw badRequest('Content.Raw.Data is not valid base64.');
  const raw = Buffer.from(data, 'base64');
  if (raw.length > MAX_RAW_MESSAGE_BYTES) {
    throw new SesApiError(
      'MessageRejected',
      `Message length is more than ${MAX_RAW_MESSAGE_BYTES} bytes long: '${raw.length}'.`,
    );
  }
  const headers = parseHeaders(raw);

  const fromEmailAddress = optionalString(body.FromEmailAddress, 'FromEmailAddress');
  const source = fromEmailAddress ?? headerValue(headers, 'From');
  if (source === undefined || source === '') throw badRequest("Missing required header 'From'.");
  // A From header may list several mailboxes (then Sender names the real one); SES checks the first.
  const sourceAddress = addrSpec(splitAddressList(source)[0] ?? '');
  if (sourceAddress === undefined) throw badRequest("Missing final '@domain'");

  const destination = destinationsOf(body.Destination, headers);
  if (destination.length === 0) {
    throw badRequest('At least one destination is required (Destination, or To/Cc/Bcc headers).');
  }
  if (destination.length > MAX_RECIPIENTS) throw badRequest(`Recipient count exceeds ${MAX_RECIPIENTS}.`);
  const recipients = destination.map((entry) => {
    const address = addrSpec(entry);
    if (address === undefined) throw badRequest("Missing final '@domain'");
    return address;
  });

  return {
    raw,
    headers,
    source,
    sourceAddress,
    destination,
    recipients,
    tags: tagsOf(body.EmailTags),
    configurationSet: optionalString(body.ConfigurationSetName, 'ConfigurationSetName'),
  };
};

/**
 * SES v2 takes the envelope recipients from `Destination` when given, else (raw content only) from
 * the message's To, Cc and Bcc headers.
 */
const destinationsOf = (value: unknown, headers: readonly MailHeader[]): string[] => {
  if (value !== undefined && value !== null) {
    if (!isRecord(value)) throw badRequest('Destination must be an object.');
    const listed = ['ToAddresses', 'CcAddresses', 'BccAddresses'].flatMap((field) =>
      stringList(value[field], `Destination.${field}`),
    );
    if (listed.length > 0) return listed;
  }
  return ['To', 'Cc', 'Bcc'].flatMap((name) =>
    headers
      .filter((header) => header.name.toLowerCase() === name.toLowerCase())
      .flatMap((header) => splitAddressList(header.value)),
  );
};

const tagsOf = (value: unknown): EmailTag[] => {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw badRequest('EmailTags must be a list.');
  return value.map((tag: unknown) => {
    const name = isRecord(tag) ? tag.Name : undefined;
    const tagValue = isRecord(tag) ? tag.Value : undefined;
    if (typeof name !== 'string' || !TAG_PATTERN.test(name)) {
      throw badRequest(
        `Invalid tag name <${String(name)}>: only alphanumeric ASCII characters, '_', and '-' are allowed.`,
      );
    }
    if (typeof tagValue !== 'string' || !TAG_PATTERN.test(tagValue)) {
      throw badRequest(
        `Invalid tag value <${String(tagValue)}> for tag <${name}>: only alphanumeric ASCII characters, '_', and '-' are allowed.`,
      );
    }
    return { name, value: tagValue };
  });
};

export interface MailContext {
  readonly sesMessageId: string;
  readonly acceptedAt: Date;
  readonly region: string;
  readonly accountId: string;
}

/** The `mail` object every event of this message carries. */
export const buildMail = (request: SendEmailRequestData, context: MailContext): SesMail => {
  const fromDomain = domainOf(request.sourceAddress);
  const tags: Record<string, string[]> = {};
  if (request.configurationSet !== undefined) tags['ses:configuration-set'] = [request.configurationSet];
  tags['ses:source-ip'] = ['127.0.0.1'];
  tags['ses:from-domain'] = [fromDomain];
  tags['ses:caller-identity'] = ['baton-local'];
  for (const { name, value } of request.tags) {
    const values = tags[name];
    if (values) values.push(value);
    else tags[name] = [value];
  }
  return {
    timestamp: context.acceptedAt.toISOString(),
    source: request.source,
    sourceArn: `arn:aws:ses:${context.region}:${context.accountId}:identity/${fromDomain}`,
    sendingAccountId: context.accountId,
    messageId: context.sesMessageId,
    // Bare addresses, as in every real sample, even when the request gave display names.
    destination: [...request.recipients],
    headersTruncated: false,
    headers: request.headers,
    commonHeaders: commonHeadersOf(request.headers),
    tags,
  };
};

const commonHeadersOf = (headers: readonly MailHeader[]): SesCommonHeaders => {
  const list = (name: string): string[] | undefined => {
    const value = headerValue(headers, name);
    return value === undefined ? undefined : splitAddressList(value);
  };
  const entries: Array<[keyof SesCommonHeaders, string | string[] | undefined]> = [
    ['from', list('From')],
    ['replyTo', list('Reply-To')],
    ['sender', list('Sender')],
    ['to', list('To')],
    ['cc', list('Cc')],
    ['bcc', list('Bcc')],
    ['returnPath', headerValue(headers, 'Return-Path')],
    ['date', headerValue(headers, 'Date')],
    ['messageId', headerValue(headers, 'Message-ID')],
    ['subject', headerValue(headers, 'Subject')],
  ];
  return Object.fromEntries(entries.filter(([, value]) => value !== undefined));
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const optionalString = (value: unknown, field: string): string | undefined => {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`${field} must be a string.`);
  return value;
};

const stringList = (value: unknown, field: string): string[] => {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string')) {
    throw badRequest(`${field} must be a list of strings.`);
  }
  return value;
};
