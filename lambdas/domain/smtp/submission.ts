/**
 * What a message that arrived over SMTP becomes: the same validated OutgoingMessage a POST
 * /v1/messages body becomes, so every rule of the JSON API (addresses, display names, the HTML
 * sanitizer, executable attachments, header and tag rules, List-Unsubscribe) applies once, through
 * `validateSendRequest`. Only where SMTP mail differs are the rules other (no Subject, no body), and
 * where the JSON API names a body field, an SMTP answer names the header or envelope part instead.
 *
 * - Recipients come from the envelope alone (RCPT TO), as with any mail server: one the To header
 *   names is sent as `to`, one the Cc header names as `cc`, any other as `bcc` (Bcc works, and a
 *   Bcc header is never sent). To and Cc are shown as the client wrote them (`shownTo`, `shownCc`),
 *   addresses there that are not envelope recipients included, but never sent to.
 * - Headers the client set survive (Message-ID, Date, In-Reply-To, References, X- headers and other
 *   harmless ones); those that would change routing or authentication are dropped.
 * - `X-Baton-Stream` and `X-Baton-Tags` are Baton's controls, read and never sent.
 */
import {
  type AddressObject,
  type Attachment as ParsedAttachment,
  type ParsedMail,
  simpleParser,
} from 'mailparser';
import { detectExtension } from 'nodemailer/lib/mime-funcs';
import { addressKey, type Mailbox, parseAddrSpec, parseMailbox } from '../address.ts';
import type { ApiKey } from '../keys/api-key.ts';
import type { OutgoingMessage } from '../message.ts';
import { type FieldError, fail, INVALID_MESSAGE, ProblemError } from '../problem.ts';
import {
  isContentType,
  isReservedHeader,
  MAX_HEADER_VALUE,
  MAX_RECIPIENTS,
  validateSendRequest,
} from '../send/send-request.ts';
import { checkSenderDomain, formatMailbox } from '../send/sender-policy.ts';

/** The SMTP envelope: MAIL FROM (empty for `<>`) and the RCPT TO addresses the server accepted. */
export interface Envelope {
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
}

/** Baton's controls, as headers: read, then stripped before sending. */
export const STREAM_HEADER = 'X-Baton-Stream';
export const TAGS_HEADER = 'X-Baton-Tags';
const CONTROL_PREFIX = 'x-baton-';

/**
 * The MIME parts a message may hold, multipart containers included: a message carries at most 100
 * attachments (the JSON API's limit), and a text, an HTML and a few containers beside them. The
 * parser's cost grows with the parts, and a batch of 100 raw messages is read in one request of
 * the api's 10 s: at mailparser's default (1,000) such a batch took about 10 s of parsing alone on
 * a 2-core development machine, about 1.5 s at this limit.
 */
export const MAX_MIME_PARTS = 150;

/**
 * mailparser, set to keep what the client wrote: no text made from HTML or HTML from text, `cid:`
 * links left as they are (not turned into `data:` URLs), and embedded messages and delivery
 * reports kept as attachments, byte for byte.
 */
const PARSER_OPTIONS = {
  maxChildNodes: MAX_MIME_PARTS,
  skipHtmlToText: true,
  skipTextToHtml: true,
  skipImageLinks: true,
  keepCidLinks: true,
  ignoreEmbedded: true,
  keepDeliveryStatus: true,
  checksumAlgo: false,
} as const;

/**
 * Header fields RFC 5322 §3.6 allows once, and Baton's own: a second one is refused, since readers
 * disagree about which of two Subjects or Message-IDs counts (header-injection.json hk-repeated-*).
 */
const ONCE = new Set([
  'from',
  'reply-to',
  'to',
  'cc',
  'subject',
  'date',
  'message-id',
  'in-reply-to',
  'references',
  'list-unsubscribe',
  'x-baton-stream',
  'x-baton-tags',
]);

/**
 * Trace and authentication headers a relay adds or checks, dropped like the reserved ones
 * (`isReservedHeader`: Received, Return-Path, DKIM-Signature, Authentication-Results, Bcc, Sender,
 * Resent-*, Content-*, MIME-Version, X-SES-*, ...): they would vouch for, or route, mail Baton sends.
 */
const DROPPED = new Set([
  'x-received',
  'received-spf',
  'delivered-to',
  'x-original-to',
  'envelope-to',
  'domainkey-signature',
  'x-google-dkim-signature',
]);
const DROPPED_PREFIXES = ['arc-'];

/** Headers read into fields of the message rather than passed on. */
const READ = new Set(['from', 'to', 'cc', 'reply-to', 'subject', 'date', 'message-id', 'list-unsubscribe']);

// A msg-id (RFC 5322 §3.6.4) as Baton passes it on: `<left@right>`, printable ASCII, no specials.
const MESSAGE_ID = /^<[^\s<>@()[\]\\,;:"]+@[^\s<>@()[\]\\,;:"]+>$/;
const PRINTABLE_ASCII = /^[!-~ ]*$/;
const MAX_MESSAGE_ID = 250;
// RFC 5322 §3.3 date-time, obsolete zone names and a trailing comment (`(CET)`) included; the
// comment only in plain characters, since a reader may decode an encoded-word there.
const DATE =
  /^(?:(?:mon|tue|wed|thu|fri|sat|sun),\s*)?\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?\s+(?:[+-]\d{4}|ut|gmt|[ecmp][sd]t|[a-ik-z])(?:\s*\([A-Za-z0-9 +\-:.,/]*\))?$/i;
const MAX_DATE = 100;

interface HeaderField {
  /** As the client wrote it. */
  readonly name: string;
  /** Unfolded, UTF-8 decoded, trimmed; encoded-words not decoded. */
  readonly value: string;
}

/** Where each envelope recipient went in the body, for naming it in an error. */
interface RecipientIndex {
  readonly to: number[];
  readonly cc: number[];
  readonly bcc: number[];
}

/**
 * Raw RFC 5322 bytes as received over SMTP, and their envelope, as the OutgoingMessage the JSON
 * API makes. Throws ProblemError `invalid_message` with one field error per problem, each path
 * naming the header (`headers.Subject`), envelope part (`envelope.rcptTo[1]`) or attachment
 * (`attachments[0].filename`) at fault.
 */
export async function readSubmission(raw: Buffer, envelope: Envelope): Promise<OutgoingMessage> {
  if (envelope.rcptTo.length === 0) {
    fail('invalid_message', INVALID_MESSAGE, [
      { path: 'envelope.rcptTo', message: 'at least one recipient (RCPT TO) is required' },
    ]);
  }
  if (envelope.rcptTo.length > MAX_RECIPIENTS) {
    fail('invalid_message', INVALID_MESSAGE, [
      { path: 'envelope.rcptTo', message: `at most ${MAX_RECIPIENTS} recipients (RCPT TO) per message` },
    ]);
  }
  let parsed: ParsedMail;
  try {
    parsed = await simpleParser(utf8Headers(raw), PARSER_OPTIONS);
  } catch (error) {
    // The parser's own words may quote the message; an SMTP reply must not.
    const tooManyParts = error instanceof Error && error.message === 'Max allowed child nodes exceeded';
    fail('invalid_message', INVALID_MESSAGE, [
      {
        path: '(message)',
        message: `the message could not be read as MIME (RFC 5322 / RFC 2045)${tooManyParts ? `: it has more than ${MAX_MIME_PARTS} parts` : ''}`,
      },
    ]);
  }

  const errors: FieldError[] = [];
  const fields = headerFields(parsed, errors);
  const first = (name: string) => fields.get(name)?.[0];

  const from = fromOf(parsed, envelope, errors);
  const shownTo = shown(parsed.to, 'To', errors);
  const shownCc = shown(parsed.cc, 'Cc', errors);
  const { body: recipients, index } = recipientsOf(envelope, shownTo, shownCc);

  const tags = tagsOf(first('x-baton-tags'), errors);
  const stream = first('x-baton-stream')?.value.toLowerCase();
  const listUnsubscribe = listUnsubscribeOf(first('list-unsubscribe'), errors);
  const attachments = parsed.attachments.map(attachmentOf);
  const text = parsed.text;
  const html = typeof parsed.html === 'string' ? parsed.html : undefined;

  const body = {
    ...(from.mailbox ? { from: from.mailbox } : {}),
    ...recipients,
    replyTo: addressesOf(parsed.replyTo).map(formatMailbox),
    subject: parsed.subject ?? '',
    // A message with nothing in it is sent with an empty text part, as the client sent it.
    ...(text === undefined && html === undefined && attachments.length === 0 ? { text: '' } : {}),
    ...(text !== undefined ? { text } : {}),
    ...(html !== undefined ? { html } : {}),
    attachments,
    headers: customHeaders(fields, errors),
    ...(tags ? { tags } : {}),
    ...(stream !== undefined ? { stream } : {}),
    ...(listUnsubscribe !== undefined ? { listUnsubscribe } : {}),
  };

  let message: OutgoingMessage | undefined;
  try {
    message = validateSendRequest(body, { subjectOptional: true, bodyOptional: true });
  } catch (error) {
    if (!(error instanceof ProblemError) || error.problem.code !== 'invalid_message') throw error;
    const found = (error.problem.errors ?? [])
      // "from is required" when the From header could not be read: that error is said already.
      .filter((e) => from.mailbox !== undefined || e.path !== 'from')
      .map((e) => ({ ...e, path: smtpPath(e.path, index, from.path) }));
    errors.push(...found);
  }
  if (errors.length > 0 || message === undefined) fail('invalid_message', INVALID_MESSAGE, replyable(errors));

  const messageId = messageIdOf(first('message-id'));
  const date = dateOf(first('date'));
  return {
    ...message,
    attachments: message.attachments.map((a, i) => {
      const charset = charsetOf(parsed.attachments[i]);
      return charset && a.contentType?.startsWith('text/') ? { ...a, charset } : a;
    }),
    ...(messageId ? { messageId } : {}),
    ...(date ? { date } : {}),
    shownTo: shownTo.map((s) => s.mailbox),
    shownCc: shownCc.map((s) => s.mailbox),
  };
}

/**
 * The envelope sender (MAIL FROM) against the key's sender policy, as `from` is checked: refused
 * (ProblemError `forbidden`) outside the key's domains unless the policy rewrites. The null sender
 * (`<>`, an empty string) passes: the From header then decides, and it is checked when the message
 * is accepted. SES never sees the envelope sender (it sends from the From address, bounces to
 * itself), so this is the relay's allowlist of who may submit, not an address that is used.
 */
export function checkEnvelopeSender(key: ApiKey, mailFrom: string): void {
  if (mailFrom === '') return;
  const parsed = parseAddrSpec(mailFrom);
  if (!parsed.ok) {
    fail('invalid_message', INVALID_MESSAGE, [
      { path: 'envelope.mailFrom', message: printable(`invalid address: ${parsed.message}`, 400) },
    ]);
  }
  checkSenderDomain(key, parsed.value);
}

/**
 * The message with its top-level header block in UTF-8. Headers are ASCII, encoded-words or (with
 * SMTPUTF8) UTF-8; a legacy mailer that writes ISO-8859-1 bytes straight into a Subject or a name
 * sends bytes that are no UTF-8, which a reader shows as U+FFFD. Such a block is read as
 * windows-1252 (ISO-8859-1's superset for every printable byte) instead. The body, whose parts
 * name their own charsets, is left as it is.
 */
function utf8Headers(raw: Buffer): Buffer {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
  const head = end < 0 ? raw : raw.subarray(0, end);
  if (!head.some((b) => b >= 0x80)) return raw;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head);
    return raw;
  } catch {
    const transcoded = Buffer.from(new TextDecoder('windows-1252').decode(head), 'utf8');
    return end < 0 ? transcoded : Buffer.concat([transcoded, raw.subarray(end)]);
  }
}

/**
 * The top-level header fields by lower-case name, in order. A line without a colon, and a header
 * that may appear once but appears more often, are errors.
 */
function headerFields(parsed: ParsedMail, errors: FieldError[]): Map<string, HeaderField[]> {
  const fields = new Map<string, HeaderField[]>();
  parsed.headerLines.forEach(({ key, line }, i) => {
    const colon = line.indexOf(':');
    if (key === '' || colon < 0) {
      errors.push({ path: 'headers', message: `header line ${i + 1} has no ":"; it is not a header field` });
      return;
    }
    const value = Buffer.from(line.slice(colon + 1).replace(/\r?\n(?=[ \t])/g, ''), 'latin1')
      .toString('utf8')
      .trim();
    const list = fields.get(key) ?? [];
    list.push({ name: line.slice(0, colon).trim(), value });
    fields.set(key, list);
  });
  for (const [key, list] of fields) {
    if (ONCE.has(key) && list.length > 1) {
      const name = list[0]?.name ?? key;
      errors.push({
        path: `headers.${name}`,
        message: `${name} appears ${list.length} times; a message has at most one`,
      });
    }
  }
  return fields;
}

/**
 * The headers passed on as they are: every one not read into a field, not one of Baton's controls
 * and not dropped. Values are decoded (RFC 2047) so the composer writes them again as the client
 * meant them; the JSON API's header rules then apply to name and value.
 */
function customHeaders(
  fields: ReadonlyMap<string, HeaderField[]>,
  errors: FieldError[],
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, list] of fields) {
    const field = list[0];
    if (field === undefined || READ.has(key) || dropped(key)) continue;
    if (key.startsWith(CONTROL_PREFIX)) {
      if (key !== STREAM_HEADER.toLowerCase() && key !== TAGS_HEADER.toLowerCase()) {
        errors.push({
          path: `headers.${field.name}`,
          message: `unknown Baton header; Baton reads ${STREAM_HEADER} and ${TAGS_HEADER}`,
        });
      }
      continue;
    }
    if (list.length > 1) {
      errors.push({
        path: `headers.${field.name}`,
        message: `${field.name} appears ${list.length} times; Baton passes each header on once`,
      });
      continue;
    }
    headers[field.name] =
      key === 'references'
        ? references(field.value)
        : key === 'in-reply-to'
          ? field.value.replace(/\s+/g, ' ')
          : decodeWords(field.value);
  }
  return headers;
}

function dropped(key: string): boolean {
  return isReservedHeader(key) || DROPPED.has(key) || DROPPED_PREFIXES.some((p) => key.startsWith(p));
}

/**
 * References, on one line of at most MAX_HEADER_VALUE characters: a long thread keeps its first
 * message id and as many of the latest as fit, as mail and news clients trim it.
 */
function references(value: string): string {
  const ids = value.split(/\s+/).filter((id) => id !== '');
  if (ids.join(' ').length <= MAX_HEADER_VALUE) return ids.join(' ');
  const [head = '', ...rest] = ids;
  const tail: string[] = [];
  let length = head.length;
  for (let i = rest.length - 1; i >= 0; i--) {
    const id = rest[i] as string;
    if (length + 1 + id.length > MAX_HEADER_VALUE) break;
    tail.unshift(id);
    length += 1 + id.length;
  }
  return [head, ...tail].join(' ');
}

/** From the From header (one mailbox), or from the envelope sender when there is none. */
function fromOf(
  parsed: ParsedMail,
  envelope: Envelope,
  errors: FieldError[],
): { mailbox?: string; path: string } {
  const path = 'headers.From';
  if (parsed.from === undefined) {
    if (envelope.mailFrom === '') {
      errors.push({
        path,
        message: 'the message has no From header and the envelope sender (MAIL FROM) is empty',
      });
      return { path };
    }
    return { mailbox: envelope.mailFrom, path: 'envelope.mailFrom' };
  }
  const [mailbox, ...more] = addressesOf(parsed.from);
  if (mailbox === undefined || more.length > 0 || parsed.from.value.some((a) => a.group !== undefined)) {
    errors.push({ path, message: 'must hold exactly one address' });
    return { path };
  }
  return { mailbox: formatMailbox(mailbox), path };
}

interface Shown {
  readonly mailbox: Mailbox;
  readonly key: string;
}

/** The To or Cc header's mailboxes (groups opened), checked with the API's address rules. */
function shown(
  header: AddressObject | AddressObject[] | undefined,
  name: string,
  errors: FieldError[],
): Shown[] {
  const out: Shown[] = [];
  for (const m of addressesOf(header)) {
    const parsed = parseMailbox(formatMailbox(m));
    if (parsed.ok) out.push({ mailbox: parsed.value, key: addressKey(parsed.value.address) });
    else errors.push({ path: `headers.${name}`, message: `invalid address: ${parsed.message}` });
  }
  return out;
}

/** The mailboxes of an address header, group members included, as mailparser read them. */
export function addressesOf(header: AddressObject | AddressObject[] | undefined): Mailbox[] {
  const objects = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out: Mailbox[] = [];
  const add = (entries: ReadonlyArray<{ name: string; address?: string; group?: unknown[] }>) => {
    for (const e of entries) {
      if (Array.isArray(e.group)) add(e.group as typeof entries);
      else out.push(e.name ? { name: e.name, address: e.address ?? '' } : { address: e.address ?? '' });
    }
  };
  for (const o of objects) add(o.value);
  return out;
}

/** Each envelope recipient as `to`, `cc` or `bcc`, by whether the To or Cc header shows it. */
function recipientsOf(
  envelope: Envelope,
  shownTo: readonly Shown[],
  shownCc: readonly Shown[],
): { body: { to: string[]; cc: string[]; bcc: string[] }; index: RecipientIndex } {
  const inTo = new Set(shownTo.map((s) => s.key));
  const inCc = new Set(shownCc.map((s) => s.key));
  const body = { to: [] as string[], cc: [] as string[], bcc: [] as string[] };
  const index: RecipientIndex = { to: [], cc: [], bcc: [] };
  envelope.rcptTo.forEach((address, i) => {
    const key = addressKey(address);
    const kind = inTo.has(key) ? 'to' : inCc.has(key) ? 'cc' : 'bcc';
    body[kind].push(address);
    index[kind].push(i);
  });
  return { body, index };
}

/** `name=value, name2=value2`; undefined when absent or not in that form (then an error says why). */
function tagsOf(field: HeaderField | undefined, errors: FieldError[]): Record<string, string> | undefined {
  if (field === undefined) return undefined;
  const path = `headers.${field.name}`;
  const tags: Record<string, string> = {};
  let ok = true;
  for (const item of field.value.split(',')) {
    const entry = item.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      errors.push({ path, message: `each tag must be written name=value (got "${printable(entry)}")` });
      ok = false;
      continue;
    }
    const name = entry.slice(0, eq).trim();
    if (Object.hasOwn(tags, name)) {
      errors.push({ path, message: `tag ${printable(name)} is given twice` });
      ok = false;
    }
    tags[name] = entry.slice(eq + 1).trim();
  }
  return ok ? tags : undefined;
}

/**
 * The https URL of a List-Unsubscribe header: Baton sends RFC 8058 one-click unsubscribe (that URL
 * with List-Unsubscribe-Post), so a mailto: beside it is left out. A header without one is refused:
 * dropping it would send the mail without the unsubscribe link its sender meant it to have.
 */
function listUnsubscribeOf(field: HeaderField | undefined, errors: FieldError[]): string | undefined {
  if (field === undefined) return undefined;
  const uris = [...field.value.matchAll(/<([^>]*)>/g)].map((m) => (m[1] ?? '').trim());
  const https = uris.find((u) => /^https:/i.test(u));
  if (https === undefined) {
    errors.push({
      path: `headers.${field.name}`,
      message:
        'List-Unsubscribe must hold an https:// URL (RFC 8058 one-click unsubscribe); Baton does not send mailto: or http: unsubscribe links',
    });
  }
  return https;
}

/** The client's Message-ID when it is one Baton can pass on; otherwise Baton makes its own. */
function messageIdOf(field: HeaderField | undefined): string | undefined {
  const value = field?.value;
  if (value === undefined || value.length > MAX_MESSAGE_ID || !PRINTABLE_ASCII.test(value)) return undefined;
  return MESSAGE_ID.test(value) ? value : undefined;
}

/** The client's Date, as written, when it is an RFC 5322 date; otherwise Baton dates the message. */
function dateOf(field: HeaderField | undefined): string | undefined {
  const value = field?.value.replace(/\s+/g, ' ');
  if (value === undefined || value.length > MAX_DATE || !PRINTABLE_ASCII.test(value)) return undefined;
  return DATE.test(value) && Number.isFinite(Date.parse(value)) ? value : undefined;
}

/**
 * One attachment as the JSON API takes it. Inline parts (an image the HTML shows through `cid:`)
 * stay inline with their Content-ID; one without a file name is named after its type.
 */
function attachmentOf(a: ParsedAttachment, i: number): Record<string, string> {
  // A type the client wrote wrong ("pdf") is no reason to refuse the mail: the bytes go as they
  // are, typed as bytes (the executable checks read the name and the bytes all the same).
  const contentType = isContentType(a.contentType) ? a.contentType : 'application/octet-stream';
  const cid = a.cid?.trim();
  const inline =
    cid !== undefined &&
    cid !== '' &&
    (a.contentDisposition === 'inline' || (a.related === true && a.contentDisposition !== 'attachment'));
  return {
    filename: a.filename ?? `attachment-${i + 1}.${extensionOf(contentType)}`,
    contentType,
    content: a.content.toString('base64'),
    disposition: inline ? 'inline' : 'attachment',
    ...(cid ? { contentId: cid } : {}),
  };
}

// A charset name (RFC 2978): what IANA registers, never a quote, space or semicolon.
const CHARSET = /^[A-Za-z0-9][A-Za-z0-9!#$%&'+^_`{}~.:-]{0,39}$/;

/** The charset the part's Content-Type declares, when it is a name that can stand in a header. */
function charsetOf(a: ParsedAttachment | undefined): string | undefined {
  const type = a?.headers.get('content-type') as { params?: Record<string, unknown> } | undefined;
  const charset = type?.params?.charset;
  return typeof charset === 'string' && CHARSET.test(charset) ? charset : undefined;
}

/** The usual file extension of a type; `bin` for bytes (the lookup answers `*` for octet-stream). */
function extensionOf(contentType: string): string {
  const extension = detectExtension(contentType);
  return /^[a-z0-9]{1,10}$/i.test(extension) ? extension : 'bin';
}

/** A JSON API path as an SMTP client knows the thing: the header or envelope part it came from. */
function smtpPath(path: string, index: RecipientIndex, fromPath: string): string {
  const recipient = /^(to|cc|bcc)\[(\d+)\](.*)$/.exec(path);
  if (recipient) {
    const [, kind = 'to', at = '0', rest = ''] = recipient;
    return `envelope.rcptTo[${index[kind as keyof RecipientIndex][Number(at)] ?? at}]${rest}`;
  }
  const [head = '', ...rest] = path.split(/(?=[.[])/);
  const tail = rest.join('');
  switch (head) {
    case 'to':
    case 'cc':
    case 'bcc':
      return 'envelope.rcptTo';
    case 'from':
      return fromPath + tail;
    case 'replyTo':
      return 'headers.Reply-To';
    case 'subject':
      return 'headers.Subject';
    case 'text':
    case 'html':
      return 'body';
    case 'stream':
      return `headers.${STREAM_HEADER}`;
    case 'tags':
      return `headers.${TAGS_HEADER}${tail}`;
    case 'listUnsubscribe':
      return 'headers.List-Unsubscribe';
    default:
      return path;
  }
}

/**
 * Each error once, path and words in printable ASCII: the SMTP server answers with them, and a
 * header name or a content type the client wrote must not put a control character, let alone a
 * line break, into a reply line.
 */
function replyable(errors: readonly FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors
    .map((e) => ({ path: printable(e.path, 200), message: printable(e.message, 400) }))
    .filter((e) => {
      const key = `${e.path}\u0000${e.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/** Client text quoted in an error: printable ASCII (anything else a `?`), at most `max` characters. */
function printable(text: string, max = 40): string {
  const clean = text.replace(/[^ -~]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** An RFC 2047 encoded-word: `=?charset?B|Q?text?=` (an RFC 2231 language suffix allowed). */
const ENCODED_WORD = /=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bq])\?([^?\s]*)\?=/gi;

/**
 * Decodes the RFC 2047 encoded-words of an unstructured header value (any charset the runtime's
 * TextDecoder knows; a word in another is left as it is). Whitespace between two encoded-words is
 * dropped (§6.2), and adjacent words in one charset are joined before decoding, since a composer may
 * split a character's bytes between them.
 */
export function decodeWords(value: string): string {
  let out = '';
  let last = 0;
  // Bytes as chunks, joined once: spreading a word's bytes into an array (`push(...bytes)`) passes
  // each as an argument, and a 200 KB word overflows the stack.
  let pending: { charset: string; bytes: Uint8Array[] } | undefined;
  const flush = () => {
    if (pending) out += decode(pending.charset, Buffer.concat(pending.bytes));
    pending = undefined;
  };
  for (const m of value.matchAll(ENCODED_WORD)) {
    const [word, charset = '', encoding = '', text = ''] = m;
    const between = value.slice(last, m.index);
    last = m.index + word.length;
    const bytes =
      encoding.toUpperCase() === 'B' ? Buffer.from(text, 'base64') : Uint8Array.from(qBytes(text));
    if (!knownCharset(charset)) {
      flush();
      out += between + word;
      continue;
    }
    const adjacent = pending !== undefined && /^[ \t]*$/.test(between);
    if (!adjacent) {
      flush();
      out += between;
    }
    if (pending && pending.charset.toLowerCase() === charset.toLowerCase()) pending.bytes.push(bytes);
    else {
      flush();
      pending = { charset, bytes: [bytes] };
    }
  }
  flush();
  return out + value.slice(last);
}

function knownCharset(charset: string): boolean {
  try {
    new TextDecoder(charset);
    return true;
  } catch {
    return false;
  }
}

function decode(charset: string, bytes: Uint8Array): string {
  return new TextDecoder(charset).decode(bytes);
}

function qBytes(text: string): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    const hex = text.slice(i + 1, i + 3);
    if (ch === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(ch === '_' ? 0x20 : ch.charCodeAt(0) & 0xff);
    }
  }
  return bytes;
}
