import { en } from 'zod/locales';
import * as z from 'zod/mini';
import { LANES } from '../../shared/names.ts';
import { BIDI_CONTROL, type Mailbox, parseMailbox } from '../address.ts';
import { type Attachment, headerUri, type OutgoingMessage } from '../message.ts';
import { type FieldError, fail, INVALID_MESSAGE } from '../problem.ts';
import { attachmentRefusal } from './content-safety.ts';
import { sanitizeHtml } from './html-sanitizer.ts';

/** SES refuses more than 50 recipients per message (To + Cc + Bcc). */
export const MAX_RECIPIENTS = 50;
/**
 * RFC 5322 limits a line to 998 octets. The composer folds a header at spaces and puts an
 * unbreakable word on a continuation line after one space, so a value of at most 997 characters
 * always fits.
 */
export const MAX_SUBJECT = 997;
export const MAX_HEADER_VALUE = 997;
/** Written as `<url>` on its own continuation line. */
export const MAX_LIST_UNSUBSCRIBE = 990;
export const MAX_USER_TAGS = 10;

/**
 * Headers Baton sets itself, or that would change where mail goes, how it is authenticated or how
 * SES treats it. Matched case-insensitively.
 */
const RESERVED_HEADERS = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'subject',
  'date',
  'message-id',
  'dkim-signature',
  'return-path',
  'reply-to',
  'sender',
  'mime-version',
  'list-unsubscribe',
  'list-unsubscribe-post',
  'x-original-from',
  'received',
  'authentication-results',
  'arc-seal',
  'arc-message-signature',
  'arc-authentication-results',
  // Where replies, read receipts and bounces go: an address here would skip the Reply-To checks
  // (display names showing another domain); a client sets replyTo instead.
  'mail-reply-to',
  'mail-followup-to',
  'disposition-notification-to',
  'return-receipt-to',
  'errors-to',
]);
const RESERVED_HEADER_PREFIXES = ['content-', 'x-ses-', 'resent-'];

/** A header a client may not set through `headers` (any case): Baton writes it, or it routes mail. */
export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return RESERVED_HEADERS.has(lower) || RESERVED_HEADER_PREFIXES.some((p) => lower.startsWith(p));
}

/** The reserved names as one JSON Schema pattern, which has no flags: each letter in both cases. */
const RESERVED_HEADER_PATTERN =
  `^(?:${[...RESERVED_HEADERS].join('|')})$|^(?:${RESERVED_HEADER_PREFIXES.join('|')})`.replace(
    /[a-z]/g,
    (c) => `[${c}${c.toUpperCase()}]`,
  );

// RFC 5322 field name: printable ASCII except colon.
const HEADER_NAME = /^[!-9;-~]{1,100}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: CR, LF and NUL are what header injection uses
const LINE_BREAK_OR_NUL = /[\r\n\u0000\u2028\u2029]/;
const SES_TAG = /^[A-Za-z0-9_-]{1,256}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/**
 * For the OpenAPI document: the base64 alphabet with line breaks anywhere, padding only at the
 * end. (That the length, without white space, is a multiple of 4 is said in words.)
 */
export const BASE64_TEXT_PATTERN = String.raw`^[A-Za-z0-9+/\s]*(?:=\s*){0,2}$`;
const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i;

/** An attachment's content type as the API takes it: `type/subtype`, no parameters. */
export function isContentType(value: string): boolean {
  return CONTENT_TYPE.test(value);
}

// zod/mini, the tree-shakable build of zod 4 (issue 7: zod classic put ~445 KB in the api bundle,
// this ~28 KB). Keep it shakable: `import * as z` (not `import { z }`) and no runtime value read
// through `z.core.…` or `z.locales.…` (types are fine); either pulls in the whole of zod again.
// zod/mini registers no locale, so an issue without a message of ours would read "Invalid input";
// the api shows zod's English message for a bad enum value (stream, disposition: "Invalid option:
// expected one of …"), so English is registered as zod classic registers it: unless a locale is
// configured already.
if (!z.config().localeError) z.config(en());

const mailbox = z.pipe(
  z.string(),
  z.transform((value: string, ctx): Mailbox => {
    const parsed = parseMailbox(value);
    if (!parsed.ok) {
      ctx.issues.push({ code: 'custom', message: `invalid address: ${parsed.message}`, input: value });
      return z.NEVER;
    }
    return parsed.value;
  }),
);

/** A list of addresses; a single string is accepted as a list of one. */
const mailboxes = z.pipe(
  z.pipe(
    z.union([z.string(), z.array(z.unknown())]),
    z.transform((v: string | unknown[]) => (typeof v === 'string' ? [v] : v)),
  ),
  z.array(mailbox),
);

/** The address lists' schema, by name for the OpenAPI document (it describes their items). */
export { mailboxes as ADDRESS_LIST };

// A regex, not a refine, so the OpenAPI document's schema says it too (a `pattern`).
const HEADER_SAFE = new RegExp(`^[^${LINE_BREAK_OR_NUL.source.slice(1, -1)}]*$`);
const headerSafe = (what: string) =>
  z.string().check(z.regex(HEADER_SAFE, `${what} must not contain CR, LF or NUL`));

const attachment = z
  .strictObject({
    filename: headerSafe('filename').check(
      z.minLength(1, 'filename must not be empty'),
      z.maxLength(255, 'filename must be at most 255 characters'),
      z.refine((v: string) => !/[/\\]/.test(v), 'filename must not contain a path'),
      // A right-to-left override shows `invoice\u202Efdp.zip` as `invoicepiz.pdf`. (Other controls
      // are harmless: the composer percent-encodes them, RFC 2231.)
      z.refine(
        (v: string) => !BIDI_CONTROL.test(v),
        'filename must not contain bidi override or isolate characters',
      ),
    ),
    contentType: z.optional(
      z.string().check(z.regex(CONTENT_TYPE, 'contentType must look like type/subtype')),
    ),
    content: z
      .pipe(
        z.string().check(z.meta({ pattern: BASE64_TEXT_PATTERN })),
        z.transform((v: string) => v.replace(/\s+/g, '')),
      )
      .check(z.refine((v: string) => v.length % 4 === 0 && BASE64.test(v), 'content must be base64')),
    disposition: z._default(z.enum(['attachment', 'inline']), 'attachment'),
    contentId: z.nullish(
      z.string().check(z.regex(/^[!-;=?-~]{1,250}$/, 'contentId must be printable ASCII without "<" or ">"')),
    ),
  })
  .check(
    // For the OpenAPI document: an inline attachment needs a contentId (crossFieldErrors checks it).
    z.meta({
      anyOf: [
        { not: { required: ['disposition'], properties: { disposition: { const: 'inline' } } } },
        nonEmpty('contentId', { type: 'string', minLength: 1 }),
      ],
    }),
  );

const sendRequestFields = (options: Pick<SendRequestOptions, 'subjectOptional'>) => ({
  from: mailbox,
  to: z.optional(mailboxes),
  cc: z.optional(mailboxes),
  bcc: z.optional(mailboxes),
  replyTo: z.optional(mailboxes),
  subject: headerSafe('subject').check(
    ...(options.subjectOptional ? [] : [z.minLength(1, 'subject must not be empty')]),
    z.maxLength(MAX_SUBJECT, `subject must be at most ${MAX_SUBJECT} characters`),
  ),
  text: z.optional(z.string()),
  html: z.optional(z.string()),
  attachments: z.optional(z.array(attachment).check(z.maxLength(100, 'at most 100 attachments'))),
  headers: z.optional(
    z.record(z.string(), z.string()).check(
      // For the OpenAPI document: what headerErrors checks.
      z.meta({
        propertyNames: {
          type: 'string',
          pattern: HEADER_NAME.source,
          not: { pattern: RESERVED_HEADER_PATTERN },
        },
        additionalProperties: { type: 'string', maxLength: MAX_HEADER_VALUE, pattern: HEADER_SAFE.source },
      }),
    ),
  ),
  tags: z.optional(
    z.record(z.string(), z.string()).check(
      // For the OpenAPI document: what tagErrors checks.
      z.meta({
        maxProperties: MAX_USER_TAGS,
        propertyNames: { type: 'string', pattern: SES_TAG.source, not: { pattern: '^(baton_|ses)' } },
        additionalProperties: { type: 'string', pattern: SES_TAG.source },
      }),
    ),
  ),
  stream: z.optional(z.enum(LANES)),
  listUnsubscribe: z.optional(
    z.pipe(
      z.string().check(
        z.refine((v: string) => !LINE_BREAK_OR_NUL.test(v), 'listUnsubscribe must not contain CR, LF or NUL'),
        z.refine(isHttpsUrl, 'listUnsubscribe must be an https:// URL (RFC 8058 one-click unsubscribe)'),
        // Counted as written, percent-encoded: the header line must still fit.
        z.refine(
          (v: string) => (headerUri(v) ?? v).length <= MAX_LIST_UNSUBSCRIBE,
          `listUnsubscribe must be at most ${MAX_LIST_UNSUBSCRIBE} characters`,
        ),
      ),
      // Kept encoded (see headerUri): the header gets one URI, whatever the client wrote.
      z.transform((v: string) => headerUri(v) ?? v),
    ),
  ),
});

/** A JSON Schema: `field` is there, and (a list) not empty. */
function nonEmpty(field: string, list: Record<string, unknown>): Record<string, unknown> {
  const value = list.type === 'array' ? { anyOf: [{ type: 'string' }, list] } : list;
  return { required: [field], properties: { [field]: value } };
}

/** The JSON API's schema (the OpenAPI document's too), and the one without a required subject. */
export const SEND_REQUEST = z.strictObject(sendRequestFields({})).check(
  // For the OpenAPI document: the rules across fields that crossFieldErrors checks.
  z.meta({
    allOf: [
      { anyOf: ['to', 'cc', 'bcc'].map((field) => nonEmpty(field, { type: 'array', minItems: 1 })) },
      { anyOf: ['text', 'html'].map((field) => nonEmpty(field, { type: 'string', minLength: 1 })) },
      {
        anyOf: [
          { not: { required: ['stream'], properties: { stream: { const: 'broadcast' } } } },
          { required: ['listUnsubscribe'] },
        ],
      },
    ],
  }),
);
const SUBJECT_OPTIONAL = z.strictObject(sendRequestFields({ subjectOptional: true }));

function isHttpsUrl(value: string): boolean {
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}

/** `['to', 0]` → `to[0]`, the path format of DESIGN §2. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(body)' : out;
}

/**
 * Where a message that arrived over SMTP needs other rules than a JSON body, every other rule
 * being the same (lambdas/domain/smtp/submission.ts). Each relaxes a rule; none adds one.
 */
export interface SendRequestOptions {
  /** RFC 5322 makes Subject optional, and a printer or a monitoring box often sends none. */
  readonly subjectOptional?: boolean;
  /** Mail that is only an attachment (a scanner's PDF), or that has no body at all, is normal SMTP mail. */
  readonly bodyOptional?: boolean;
}

/**
 * Validates a POST /v1/messages body. Every problem is reported at once (422 with one entry per
 * failing path), so a client fixes its request in one round trip. Size is not checked here: the
 * encoded job's size decides the 413 (accept.ts), so a large but valid message is never a 422.
 * `options` is for the SMTP submission only; the JSON API passes none.
 */
export function validateSendRequest(input: unknown, options: SendRequestOptions = {}): OutgoingMessage {
  const sendRequest = options.subjectOptional ? SUBJECT_OPTIONAL : SEND_REQUEST;
  const oversized = oversizedLists(input);
  if (oversized.length > 0) {
    fail('invalid_message', INVALID_MESSAGE, oversized);
  }
  // reportInput: zod 4 leaves `issue.input` out otherwise, and "is required" vs "must be a string" needs it.
  const parsed = sendRequest.safeParse(input, { reportInput: true });
  const errors: FieldError[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      errors.push({ path: formatPath(issue.path), message: describeIssue(issue) });
    }
    // Cross-field rules still run on what did parse, so all failures come back together.
    if (typeof input === 'object' && input !== null)
      errors.push(...crossFieldErrors(input as Record<string, unknown>, options));
    fail('invalid_message', INVALID_MESSAGE, dedupe(errors));
  }
  const body = parsed.data;
  errors.push(...crossFieldErrors(body, options));
  if (errors.length > 0) fail('invalid_message', INVALID_MESSAGE, errors);

  const message: OutgoingMessage = {
    from: body.from,
    to: body.to ?? [],
    cc: body.cc ?? [],
    bcc: body.bcc ?? [],
    replyTo: body.replyTo ?? [],
    subject: body.subject,
    ...(body.text !== undefined ? { text: body.text } : {}),
    // The queued job carries the sanitized HTML only (DESIGN §4); the response does not say what went.
    ...(body.html !== undefined ? { html: sanitizeHtml(body.html) } : {}),
    attachments: (body.attachments ?? []).map(toAttachment),
    headers: body.headers ?? {},
    tags: body.tags ?? {},
    stream: body.stream ?? 'transactional',
    ...(body.listUnsubscribe !== undefined ? { listUnsubscribe: body.listUnsubscribe } : {}),
  };
  return message;
}

function toAttachment(a: z.infer<typeof attachment>): Attachment {
  return {
    filename: a.filename,
    content: a.content,
    disposition: a.disposition,
    ...(a.contentType ? { contentType: a.contentType } : {}),
    ...(a.contentId ? { contentId: a.contentId } : {}),
  };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_type') {
    return issue.input === undefined ? 'is required' : `must be ${article(issue.expected)}`;
  }
  return issue.message;
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.path}\u0000${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Far more than any limit allows (50 recipients, 10 tags, a few headers). */
const MAX_LIST_ITEMS = 1_000;
const LISTS = ['to', 'cc', 'bcc', 'replyTo', 'headers', 'tags'] as const;

/**
 * Lists and maps longer than {@link MAX_LIST_ITEMS}, refused before zod checks them: zod checks
 * every item before a list's length and gathers one issue per bad item with a spread, so a 6 MB
 * body of a million items took longer than the api function's 10 s and then overflowed the stack.
 */
function oversizedLists(input: unknown): FieldError[] {
  if (!isRecord(input)) return [];
  return LISTS.flatMap((field) => {
    const value = input[field];
    const items = Array.isArray(value) ? value.length : isRecord(value) ? Object.keys(value).length : 0;
    return items > MAX_LIST_ITEMS
      ? [{ path: field, message: `must hold at most ${MAX_LIST_ITEMS} items` }]
      : [];
  });
}

/** Rules that span fields, checked on the raw body so they report even when other fields fail. */
function crossFieldErrors(body: Record<string, unknown>, options: SendRequestOptions): FieldError[] {
  const errors: FieldError[] = [];
  const count = (v: unknown) => (Array.isArray(v) ? v.length : typeof v === 'string' ? 1 : 0);
  const recipients = count(body.to) + count(body.cc) + count(body.bcc);
  if (recipients === 0) errors.push({ path: 'to', message: 'at least one of to, cc or bcc is required' });
  if (recipients > MAX_RECIPIENTS) {
    errors.push({ path: 'to', message: `at most ${MAX_RECIPIENTS} recipients in to, cc and bcc together` });
  }
  const hasText = typeof body.text === 'string' && body.text !== '';
  const hasHtml = typeof body.html === 'string' && body.html !== '';
  if (!hasText && !hasHtml && !options.bodyOptional)
    errors.push({ path: 'text', message: 'at least one of text or html is required' });
  if (body.stream === 'broadcast' && body.listUnsubscribe === undefined) {
    errors.push({ path: 'listUnsubscribe', message: 'broadcast mail must carry listUnsubscribe (RFC 8058)' });
  }
  if (isRecord(body.headers)) errors.push(...headerErrors(body.headers));
  if (isRecord(body.tags)) errors.push(...tagErrors(body.tags));
  if (Array.isArray(body.attachments)) {
    body.attachments.forEach((a, i) => {
      if (!isRecord(a)) return;
      if (a.disposition === 'inline' && (typeof a.contentId !== 'string' || a.contentId === '')) {
        errors.push({ path: `attachments[${i}].contentId`, message: 'inline attachments need a contentId' });
      }
      const refusal = attachmentRefusal(a);
      if (refusal) errors.push({ path: `attachments[${i}].${refusal.field}`, message: refusal.message });
    });
  }
  return errors;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function headerErrors(headers: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const path = `headers.${name}`;
    if (!HEADER_NAME.test(name))
      errors.push({ path, message: 'header name must be printable ASCII without ":"' });
    else if (isReservedHeader(name)) {
      errors.push({ path, message: `header ${name} is reserved and cannot be set through headers` });
    }
    if (typeof value === 'string' && LINE_BREAK_OR_NUL.test(value)) {
      errors.push({ path, message: 'header value must not contain CR, LF or NUL' });
    }
    if (typeof value === 'string' && value.length > MAX_HEADER_VALUE) {
      errors.push({ path, message: `header value must be at most ${MAX_HEADER_VALUE} characters` });
    }
  }
  return errors;
}

function tagErrors(tags: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const entries = Object.entries(tags);
  if (entries.length > MAX_USER_TAGS) errors.push({ path: 'tags', message: `at most ${MAX_USER_TAGS} tags` });
  for (const [name, value] of entries) {
    const path = `tags.${name}`;
    if (!SES_TAG.test(name)) errors.push({ path, message: 'tag name must be 1-256 of A-Z a-z 0-9 _ -' });
    else if (name.startsWith('baton_') || name.startsWith('ses')) {
      errors.push({ path, message: 'tag names starting with "baton_" or "ses" are reserved' });
    }
    if (typeof value === 'string' && !SES_TAG.test(value)) {
      errors.push({ path, message: 'tag value must be 1-256 of A-Z a-z 0-9 _ -' });
    }
  }
  return errors;
}
