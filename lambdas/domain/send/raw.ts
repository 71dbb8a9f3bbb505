/**
 * Reads the raw form of a send (`{"raw": "<base64 MIME>", "envelope"?: {...}}`, raw-request.ts)
 * into the OutgoingMessage a JSON body becomes, through the SMTP path's `readSubmission`: the same
 * rules apply to a message whichever door it came in by. Field errors name the raw form's parts
 * (`raw`, `envelope.from`, `envelope.to[1]`) or the header at fault (`headers.Subject`).
 */
import type { AddressObject, ParsedMail } from 'mailparser';
import { addressKey, parseAddrSpec } from '../address.ts';
import type { ApiKey } from '../keys/api-key.ts';
import type { OutgoingMessage } from '../message.ts';
import { type FieldError, fail, INVALID_MESSAGE, ProblemError, problem } from '../problem.ts';
import { RAW_SEND_REQUEST } from './raw-request.ts';
import { formatPath, MAX_RECIPIENTS } from './send-request.ts';

/**
 * The SMTP path's reader, loaded on the first raw message: mailparser and its charset tables more
 * than double the api bundle (1.2 → 2.5 MB minified), and an import the bundler keeps lazy is
 * neither evaluated nor held in memory by an api instance that only ever sees JSON.
 */
const submission = () => import('../smtp/submission.ts');

/** What reading a raw body gave: the message, or the refusal and whom it was for (for the guard). */
export type RawRead =
  | { readonly ok: true; readonly message: OutgoingMessage }
  | { readonly ok: false; readonly refusal: ProblemError; readonly recipients: readonly string[] };

type RecipientHeader = 'To' | 'Cc' | 'Bcc';

interface Recipients {
  readonly addresses: readonly string[];
  /** The header each address came from; undefined when the envelope named them. */
  readonly headers?: readonly RecipientHeader[];
}

/**
 * Validates and reads a raw body. A refusal is returned, not thrown, with the recipients it named
 * as far as they could be read, so the caller counts it as rejected (and as a content refusal per
 * recipient for the abuse guard) as a refused JSON body or SMTP message is counted.
 * `maxBytes`: the largest decoded message taken (413 beyond), the entry's job-size limit.
 */
export async function readRawMessage(key: ApiKey, body: unknown, maxBytes: number): Promise<RawRead> {
  let recipients: readonly string[] = envelopeRecipients(body);
  try {
    const { checkEnvelopeSender, readSubmission } = await submission();
    const request = RAW_SEND_REQUEST.safeParse(body);
    if (!request.success) {
      fail(
        'invalid_message',
        INVALID_MESSAGE,
        request.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
      );
    }
    const { envelope } = request.data;
    const raw = Buffer.from(request.data.raw, 'base64');
    if (raw.length > maxBytes) {
      fail(
        'too_large',
        `The message is ${Math.ceil(raw.length / 1024)} KB; the limit is ${Math.floor(maxBytes / 1000)} KB including attachments.`,
      );
    }
    if (envelope !== undefined) checkEnvelopeRecipients(envelope.to);
    if (envelope?.from !== undefined) {
      await renamed(async () => checkEnvelopeSender(key, envelope.from as string), envelopePaths(undefined));
    }
    const found: Recipients = envelope ? { addresses: envelope.to } : await headerRecipients(raw);
    recipients = found.addresses;
    const message = await renamed(
      () => readSubmission(raw, { mailFrom: envelope?.from ?? '', rcptTo: found.addresses }),
      envelopePaths(found.headers),
    );
    return { ok: true, message };
  } catch (error) {
    return { ok: false, refusal: asRefusal(error), recipients };
  }
}

/**
 * `envelope.to` as RCPT TO takes it: plain addresses, as `envelope.from` is one. A named one
 * (`Ana <ana@example.org>`) would match no address the To or Cc header shows, and so be sent as
 * Bcc to someone the headers name.
 */
function checkEnvelopeRecipients(to: readonly string[]): void {
  const errors: FieldError[] = [];
  to.forEach((address, i) => {
    const parsed = parseAddrSpec(address);
    if (!parsed.ok) {
      errors.push({ path: `envelope.to[${i}]`, message: `invalid address: ${parsed.message}`.slice(0, 400) });
    }
  });
  if (errors.length > 0) fail('invalid_message', INVALID_MESSAGE, errors);
}

/**
 * Without an envelope, the recipients are the message's To, Cc and Bcc headers, each address once
 * (readSubmission sends those the To and Cc headers do not show as Bcc, and never sends a Bcc
 * header). Only the header block is parsed here; readSubmission reads the whole message.
 */
async function headerRecipients(raw: Buffer): Promise<Recipients> {
  const [{ simpleParser }, { addressesOf }] = await Promise.all([import('mailparser'), submission()]);
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
  // The header block with its last line break, without the body.
  const head = end < 0 ? raw : raw.subarray(0, end + (end === crlf ? 2 : 1));
  let parsed: ParsedMail;
  try {
    parsed = await simpleParser(head, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  } catch {
    fail('invalid_message', INVALID_MESSAGE, [
      { path: 'raw', message: 'the message could not be read as MIME (RFC 5322 / RFC 2045)' },
    ]);
  }
  const seen = new Set<string>();
  const addresses: string[] = [];
  const headers: RecipientHeader[] = [];
  const add = (header: RecipientHeader, value: AddressObject | AddressObject[] | undefined) => {
    for (const { address } of addressesOf(value)) {
      if (!address) continue;
      const key = addressKey(address);
      if (seen.has(key)) continue;
      seen.add(key);
      addresses.push(address);
      headers.push(header);
    }
  };
  add('To', parsed.to);
  add('Cc', parsed.cc);
  add('Bcc', parsed.bcc);
  if (addresses.length === 0) {
    fail('invalid_message', INVALID_MESSAGE, [
      {
        path: 'envelope.to',
        message: 'the message has no To, Cc or Bcc recipient; name the recipients in envelope.to',
      },
    ]);
  }
  if (addresses.length > MAX_RECIPIENTS) {
    fail('invalid_message', INVALID_MESSAGE, [
      {
        path: 'headers',
        message: `the To, Cc and Bcc headers name ${addresses.length} recipients; at most ${MAX_RECIPIENTS} per message`,
      },
    ]);
  }
  return { addresses, headers };
}

/**
 * readSubmission's SMTP paths as the raw form names them: MAIL FROM is `envelope.from`, RCPT TO
 * `envelope.to` (or, without an envelope, the header that named the recipient), the unreadable
 * message `raw`.
 */
function envelopePaths(headers: readonly RecipientHeader[] | undefined): (path: string) => string {
  return (path) => {
    if (path === '(message)') return 'raw';
    if (path.startsWith('envelope.mailFrom')) return `envelope.from${path.slice('envelope.mailFrom'.length)}`;
    const recipient = /^envelope\.rcptTo(?:\[(\d+)\])?(.*)$/.exec(path);
    if (!recipient) return path;
    const [, at, rest = ''] = recipient;
    if (headers === undefined) return at === undefined ? `envelope.to${rest}` : `envelope.to[${at}]${rest}`;
    const header = at === undefined ? undefined : headers[Number(at)];
    return header === undefined ? 'headers' : `headers.${header}`;
  };
}

async function renamed<T>(step: () => Promise<T>, rename: (path: string) => string): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw renamedError(error, rename);
  }
}

function renamedError(error: unknown, rename: (path: string) => string): unknown {
  if (!(error instanceof ProblemError) || error.problem.errors === undefined) return error;
  const { code, detail, errors } = error.problem;
  const seen = new Set<string>();
  const named: FieldError[] = [];
  for (const e of errors) {
    const path = rename(e.path);
    const id = `${path}\u0000${e.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    named.push({ path, message: e.message });
  }
  return new ProblemError(problem(code, detail, named), { ...error.headers });
}

/**
 * Anything reading threw: a problem as it is; any other error is the parser failing on the
 * message, which is the client's to fix (422), never Baton's fault (500). Its own words may quote
 * the message, so they are not passed on.
 */
function asRefusal(error: unknown): ProblemError {
  if (error instanceof ProblemError) return error;
  return new ProblemError(
    problem('invalid_message', INVALID_MESSAGE, [
      { path: 'raw', message: 'the message could not be read as MIME (RFC 5322 / RFC 2045)' },
    ]),
  );
}

/** The envelope's recipients as the body gives them, before anything is validated. */
function envelopeRecipients(body: unknown): string[] {
  const to = (body as { envelope?: { to?: unknown } } | null)?.envelope?.to;
  return Array.isArray(to)
    ? to.filter((t): t is string => typeof t === 'string').slice(0, MAX_RECIPIENTS)
    : [];
}
