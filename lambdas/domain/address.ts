import { domainToASCII } from 'node:url';

/**
 * Email addresses as SES accepts them (DESIGN §2): a 7-bit ASCII dot-atom local part and a domain
 * in punycode. Quoted local parts, comments, groups, source routes and IP literals are refused:
 * parsers disagree about where such addresses route, which is how relays get tricked into
 * delivering to someone else.
 */

export interface Mailbox {
  /** Display name, Unicode allowed (the MIME composer encodes it). */
  readonly name?: string;
  /** `local@domain`, local part as given, domain lower-case punycode. */
  readonly address: string;
}

export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly message: string };

const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
const DOT_ATOM = new RegExp(`^${ATEXT}+(\\.${ATEXT}+)*$`);
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
// Controls (C0, DEL, C1), line and paragraph separators and bidi overrides: none belongs in a
// header, and a bidi override makes a name show other text than it has.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** Bidi embeddings, overrides and isolates: text that shows other than it is (`invoice\u202Efdp.zip`). */
export const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/;
const MAX_ADDRESS = 254;

function bad(message: string): ParseResult<never> {
  return { ok: false, message };
}

/**
 * Only spaces and tabs are trimmed: a line break at either end is refused like anywhere else in
 * a header value, not silently dropped.
 */
function trimBlanks(value: string): string {
  return value.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** Parses `local@domain` or `Display Name <local@domain>`. */
export function parseMailbox(input: string): ParseResult<Mailbox> {
  const text = trimBlanks(input);
  if (UNSAFE.test(text)) return bad('must not contain control characters or line breaks');
  if (text === '') return bad('must not be empty');
  if (text.endsWith('>')) {
    const open = text.lastIndexOf('<');
    if (open < 0) return bad('has a ">" without a matching "<"');
    const name = parseDisplayName(text.slice(0, open).trim());
    if (!name.ok) return name;
    const spec = parseAddrSpec(text.slice(open + 1, -1));
    if (!spec.ok) return spec;
    return {
      ok: true,
      value: name.value === '' ? { address: spec.value } : { name: name.value, address: spec.value },
    };
  }
  const spec = parseAddrSpec(text);
  return spec.ok ? { ok: true, value: { address: spec.value } } : spec;
}

function parseDisplayName(raw: string): ParseResult<string> {
  if (raw === '') return { ok: true, value: '' };
  if (raw.startsWith('"')) {
    if (raw.length < 2 || !raw.endsWith('"')) return bad('display name has an unterminated quote');
    const inner = raw.slice(1, -1);
    if (/["\\]/.test(inner)) return bad('display name must not contain quotes or backslashes');
    return writableName(inner.trim());
  }
  // Unquoted, these characters start a second address, a group or a comment.
  if (/[<>",;:()[\]\\]/.test(raw)) {
    return bad('display name with special characters must be quoted, e.g. "Name, Inc." <a@example.com>');
  }
  return writableName(raw);
}

/** An RFC 2047 encoded-word: `=?charset?B|Q?text?=`. */
const ENCODED_WORD = /=\?[^?\s]*\?[bq]\?[^?\s]*\?=/i;
/** Characters that make a phrase an address list, a group or a second mailbox. */
const ADDRESS_SPECIALS = /[()<>[\]@,;:\\"]/;

/**
 * A name is written into a header by the composer: ASCII names as a quoted string, others as
 * RFC 2047 encoded-words. Both must read back as this one name. An encoded-word in the name
 * itself is refused: a reader decodes it (quoted or not) into text nobody checked. A non-ASCII
 * name with address specials is refused too: inside encoded-words they are safe for a parser
 * that follows RFC 2047, but many clients decode a header before they split it into mailboxes,
 * and then `Zé <u@evil.example>, y` is two addresses and `Zé (` hides the real one in a comment.
 */
function writableName(name: string): ParseResult<string> {
  if (ENCODED_WORD.test(name))
    return bad(
      'display name must be plain text, not an RFC 2047 encoded-word (send Unicode; Baton encodes it)',
    );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: 7-bit check
  if (/[^\u0000-\u007f]/.test(name) && ADDRESS_SPECIALS.test(name)) {
    return bad('display name with non-ASCII characters must not contain ( ) < > [ ] @ , ; : \\ or "');
  }
  return boundedName(name);
}

/** Long names are legal but must still fold into 998-octet header lines. */
export const MAX_DISPLAY_NAME = 256;

function boundedName(name: string): ParseResult<string> {
  if (name.length > MAX_DISPLAY_NAME)
    return bad(`display name must be at most ${MAX_DISPLAY_NAME} characters`);
  return { ok: true, value: name };
}

/** Validates a bare `local@domain` and returns it with the domain in lower-case punycode. */
export function parseAddrSpec(raw: string): ParseResult<string> {
  const text = trimBlanks(raw);
  if (UNSAFE.test(text)) return bad('must not contain control characters or line breaks');
  if (text === '') return bad('must not be empty');
  if (text.includes('@[')) return bad('IP address literals are not accepted as a domain');
  if (/[\s<>()",;:\\[\]]/.test(text)) {
    return bad('must be a plain address like name@example.com (no spaces, quotes, comments or brackets)');
  }
  const at = text.lastIndexOf('@');
  if (at < 0) return bad('must contain "@"');
  const local = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (local === '') return bad('local part (before "@") must not be empty');
  if (local.includes('@')) return bad('must contain exactly one "@"');
  if (local.length > 64) return bad('local part must be at most 64 characters');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: 7-bit check
  if (/[^\u0000-\u007f]/.test(local))
    return bad('local part must be 7-bit ASCII (SES does not accept SMTPUTF8)');
  if (!DOT_ATOM.test(local)) {
    return bad(
      "local part must be a dot-atom: letters, digits and !#$%&'*+/=?^_`{|}~- separated by single dots",
    );
  }
  const ascii = asciiDomain(domain);
  if (!ascii.ok) return ascii;
  const address = `${local}@${ascii.value}`;
  if (address.length > MAX_ADDRESS) return bad(`must be at most ${MAX_ADDRESS} characters`);
  return { ok: true, value: address };
}

/** Converts a (possibly internationalised) domain to lower-case punycode and checks its shape. */
export function asciiDomain(domain: string): ParseResult<string> {
  if (domain === '') return bad('domain (after "@") must not be empty');
  if (domain.startsWith('[')) return bad('IP address literals are not accepted as a domain');
  if (domain.endsWith('.')) return bad('domain must not end with a dot');
  const ascii = domainToASCII(domain);
  if (ascii === '') return bad('domain is not a valid hostname');
  const labels = ascii.split('.');
  if (labels.length < 2) return bad('domain must have at least two labels, e.g. example.com');
  if (ascii.length > 253) return bad('domain must be at most 253 characters');
  if (!labels.every((label) => LABEL.test(label))) return bad('domain has an invalid label');
  const tld = labels[labels.length - 1] ?? '';
  if (/^[0-9]+$/.test(tld)) return bad('domain must not be an IP address');
  return { ok: true, value: ascii };
}

/**
 * The key an address is compared and suppressed under: trimmed, lower-cased (SES compares
 * addresses case-insensitively) and with the domain in punycode. Undefined when it is not an
 * address at all.
 */
export function normaliseAddress(input: string): string | undefined {
  const parsed = parseAddrSpec(input);
  return parsed.ok ? parsed.value.toLowerCase() : undefined;
}

/**
 * The key an address is compared and looked up under, also when it does not parse (a pseudonym
 * `erased:…`, a redacted capture): normalised if it is an address, else lower-cased.
 */
export function addressKey(address: string): string {
  return normaliseAddress(address) ?? address.toLowerCase();
}

export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** True when `domain` is one of `allowed` or a subdomain of one (SES verifies subdomains with the parent). */
export function domainAllowed(domain: string, allowed: readonly string[]): boolean {
  const d = domain.toLowerCase();
  return allowed.some((a) => {
    const base = a.toLowerCase();
    return d === base || d.endsWith(`.${base}`);
  });
}

/** An address as a display name shows it: the text it occupies and what it reads as. */
export interface ShownAddress {
  /** Where it is in the name and how long (in the name as given). */
  readonly start: number;
  readonly end: number;
  /** `local@domain`, domain in lower-case punycode (or as written, lower-cased, when it is not a hostname). */
  readonly address: string;
  readonly domain: string;
}

/**
 * What reads as an address: a word (or nothing: `(@paypal.com)` and the tail of
 * `orders@example.com@paypal.com` read as that domain too), an at sign (maybe with spaces around
 * it) and a host name whose last label starts with a letter (underscores, hyphens anywhere,
 * combining marks and spaces before a dot included: a reader reads past them), an IPv4 address or
 * an address literal. A space after a dot ends it (`Ana @ home. Call me` is prose). Run on the
 * name as a reader sees it (`shownForm`), so full-width and small at signs, look-alike full stops
 * and invisible characters change nothing.
 */
const SHOWN_ADDRESS =
  /[^\s@<>()[\]"',;:]*\s*@\s*((?:[\p{L}\p{N}\p{M}_-]+\s*\.)+\p{L}[\p{L}\p{N}\p{M}_-]*|\d{1,3}(?:\.\d{1,3}){3}|\[[^\]\s]*\])/gu;

/**
 * The addresses a display name shows a reader (`"support@paypal.com" <noreply@tenant>`), so a
 * sender policy can refuse a name that impersonates another domain and a rewrite can leave them out.
 */
export function addressesShownIn(name: string): ShownAddress[] {
  const { text, offsets } = shownForm(name);
  const found: ShownAddress[] = [];
  for (const match of text.matchAll(SHOWN_ADDRESS)) {
    const written = match[1] ?? '';
    const ascii = asciiDomain(written);
    const domain = ascii.ok ? ascii.value : written.toLowerCase();
    const local = match[0].slice(0, match[0].indexOf('@')).trim();
    const start = offsets[match.index] ?? 0;
    const end = offsets[match.index + match[0].length] ?? name.length;
    found.push({ start, end, address: `${local}@${domain}`, domain });
  }
  return found;
}

/**
 * What a reader takes for a full stop in a host name: the ideographic ones (IDNA reads them so),
 * the characters Unicode's confusables list (UTS #39) maps to `.` that NFKC leaves alone (Syriac,
 * Arabic-Indic zeros, Lisu, Vai, Kharoshthi) and the middle dots (`paypal·com`).
 */
const SHOWN_DOTS =
  /[\u3002\uff61\u0701\u0702\u0660\u06f0\ua4f8\ua60e\u{10a50}\u{1d16d}\u00b7\u0387\u2219\u22c5\u2e31\u16eb\u30fb\u2027]/gu;

/** Characters nothing shows: format characters and the rest of Unicode's default-ignorables (fillers, joiners). */
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
/** Characters that show as blank space without being whitespace (braille blank). */
const BLANKS = /\u2800/g;

/**
 * `name` as a reader sees it, with where each character of it came from: NFKC per character
 * (`＠` and `﹫` are `@`, `．` is `.`), look-alike full stops as dots (`SHOWN_DOTS`), blank
 * symbols as spaces and invisible characters gone.
 */
function shownForm(name: string): { text: string; offsets: number[] } {
  let text = '';
  const offsets: number[] = [];
  let at = 0;
  for (const char of name) {
    const shown = INVISIBLE.test(char)
      ? ''
      : char.normalize('NFKC').replace(SHOWN_DOTS, '.').replace(BLANKS, ' ');
    for (let i = 0; i < shown.length; i++) offsets.push(at);
    text += shown;
    at += char.length;
  }
  offsets.push(at);
  return { text, offsets };
}
