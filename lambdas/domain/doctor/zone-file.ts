/**
 * A small reader of BIND master files (RFC 1035 §5), enough for the records a sending domain
 * publishes: $ORIGIN, $TTL, `@`, relative and absolute names, an omitted owner (the previous one),
 * optional TTL and class, parentheses across lines, `;` comments, quoted strings with escapes
 * (`\"`, `\\`, `\DDD`). Written here rather than taken from npm: the doctor needs a few dozen lines
 * of it, and reading the user's zone must not depend on a package's idea of which types it knows.
 */
import { dnsName } from './dns.ts';

/** One resource record; names are absolute, lower case, without the trailing dot. */
export interface ZoneRecord {
  readonly name: string;
  readonly ttl: number | undefined;
  readonly type: string;
  /**
   * The record data: for TXT its character-strings (unquoted, unescaped), for MX
   * `[preference, exchange]`, for CNAME/NS/PTR `[target]` (absolute names), else the raw tokens.
   */
  readonly data: readonly string[];
}

/** The zone file cannot be read as one; `line` is 1-based. */
export class ZoneSyntaxError extends Error {
  override readonly name = 'ZoneSyntaxError';
  readonly line: number;

  constructor(line: number, problem: string) {
    super(`zone file line ${line}: ${problem}`);
    this.line = line;
  }
}

interface Token {
  readonly text: string;
  readonly quoted: boolean;
}

interface Entry {
  readonly line: number;
  /** The entry started with blank space: its owner is the previous entry's. */
  readonly ownerOmitted: boolean;
  readonly tokens: readonly Token[];
}

const CLASSES = new Set(['IN', 'CH', 'HS', 'CS']);
// Types whose data holds domain names that may be relative to $ORIGIN.
const NAME_TARGETS = new Set(['CNAME', 'NS', 'PTR', 'DNAME']);

/**
 * Reads a zone file. `origin` is the starting $ORIGIN (a name given on the command line); the file's
 * own $ORIGIN lines replace it.
 */
export function parseZone(text: string, options: { readonly origin?: string } = {}): ZoneRecord[] {
  let origin = options.origin === undefined ? undefined : dnsName(options.origin);
  let defaultTtl: number | undefined;
  let previousOwner: string | undefined;
  const records: ZoneRecord[] = [];
  // Per owner: the line of its first CNAME and of its first other record (RFC 1034 §3.6.2).
  const cnames = new Map<string, number>();
  const others = new Map<string, number>();

  // A byte order mark (Windows editors write one) is not part of the first owner name.
  for (const entry of entries(text.replace(/^\uFEFF/, ''))) {
    const [first, ...rest] = entry.tokens;
    if (first === undefined) continue;
    if (!entry.ownerOmitted && !first.quoted && first.text.startsWith('$')) {
      const directive = first.text.toUpperCase();
      const argument = rest[0]?.text;
      if (directive === '$ORIGIN' && argument !== undefined) origin = absolute(argument, origin, entry.line);
      else if (directive === '$TTL' && argument !== undefined) defaultTtl = ttlValue(argument, entry.line);
      else throw new ZoneSyntaxError(entry.line, `unsupported directive ${first.text}`);
      continue;
    }

    let tokens = entry.tokens;
    let owner: string;
    if (entry.ownerOmitted) {
      if (previousOwner === undefined)
        throw new ZoneSyntaxError(entry.line, 'no owner name before this record');
      owner = previousOwner;
    } else {
      owner =
        first.text === '@' ? requireOrigin(origin, entry.line) : absolute(first.text, origin, entry.line);
      tokens = rest;
    }
    previousOwner = owner;

    // TTL and class come in either order, each optional (RFC 1035 §5.1).
    let ttl = defaultTtl;
    let index = 0;
    for (let seen = 0; seen < 2; seen++) {
      const token = tokens[index];
      if (token === undefined || token.quoted) break;
      if (/^\d/.test(token.text)) ttl = ttlValue(token.text, entry.line);
      else if (CLASSES.has(token.text.toUpperCase())) {
        if (token.text.toUpperCase() !== 'IN')
          throw new ZoneSyntaxError(entry.line, `class ${token.text} is not IN`);
      } else break;
      index++;
    }
    const typeToken = tokens[index];
    if (typeToken === undefined || typeToken.quoted || !/^[A-Za-z][A-Za-z0-9]*$/.test(typeToken.text)) {
      throw new ZoneSyntaxError(entry.line, 'expected a record type');
    }
    const type = typeToken.text.toUpperCase();
    const data = tokens.slice(index + 1);
    records.push({ name: owner, ttl, type, data: recordData(type, data, origin, entry.line) });
    checkCname(owner, type, entry.line, cnames, others);
  }
  return records;
}

// DNSSEC records sign a CNAME and live beside it (RFC 2181 §10.1, RFC 4035 §2.5).
const BESIDE_CNAME = new Set(['RRSIG', 'NSEC', 'NSEC3', 'KEY', 'SIG', 'NXT']);

/**
 * A name with a CNAME has no other data (RFC 1034 §3.6.2, RFC 2181 §10.1): BIND refuses such a zone
 * ("CNAME and other data"), and where a server serves it anyway, a lookup of the name follows the
 * CNAME and never sees the other records (an apex CNAME hides the SPF, MX and NS of the domain).
 */
function checkCname(
  owner: string,
  type: string,
  line: number,
  cnames: Map<string, number>,
  others: Map<string, number>,
): void {
  if (BESIDE_CNAME.has(type)) return;
  const shown = owner === '' ? '.' : owner;
  if (type === 'CNAME') {
    const earlier = cnames.get(owner);
    if (earlier !== undefined)
      throw new ZoneSyntaxError(
        line,
        `a second CNAME at ${shown} (the first is on line ${earlier}): a name has one`,
      );
    const other = others.get(owner);
    if (other !== undefined)
      throw new ZoneSyntaxError(
        line,
        `CNAME and other data at ${shown} (line ${other}): a name with a CNAME can have no other record (RFC 1034 §3.6.2)`,
      );
    cnames.set(owner, line);
    return;
  }
  const cname = cnames.get(owner);
  if (cname !== undefined)
    throw new ZoneSyntaxError(
      line,
      `${type} beside the CNAME at ${shown} (line ${cname}): a name with a CNAME can have no other record (RFC 1034 §3.6.2)`,
    );
  if (!others.has(owner)) others.set(owner, line);
}

function recordData(
  type: string,
  data: readonly Token[],
  origin: string | undefined,
  line: number,
): string[] {
  const texts = data.map((token) => token.text);
  if (data.length === 0) throw new ZoneSyntaxError(line, `${type} record without data`);
  if (type === 'TXT' || type === 'SPF') {
    // A character-string is at most 255 bytes (RFC 1035 §3.3): BIND refuses a longer one, which is
    // how a DKIM key or a long SPF record pasted as one string fails to publish.
    const long = texts.find((t) => Buffer.byteLength(t, 'latin1') > 255);
    if (long !== undefined)
      throw new ZoneSyntaxError(
        line,
        `a TXT string of ${Buffer.byteLength(long, 'latin1')} bytes: at most 255 each (RFC 1035 §3.3); split it into several quoted strings, "..." "...", which are joined`,
      );
    return texts;
  }
  const name = (token: string): string =>
    token === '@' ? requireOrigin(origin, line) : absolute(token, origin, line);
  if (NAME_TARGETS.has(type)) {
    if (texts.length !== 1) throw new ZoneSyntaxError(line, `${type} takes one name`);
    return [name(texts[0] as string)];
  }
  if (type === 'MX') {
    const [preference, exchange] = texts;
    if (
      texts.length !== 2 ||
      preference === undefined ||
      exchange === undefined ||
      !/^\d+$/.test(preference)
    ) {
      throw new ZoneSyntaxError(line, 'MX takes a preference and an exchange');
    }
    return [preference, exchange === '.' ? '' : name(exchange)];
  }
  return texts;
}

function requireOrigin(origin: string | undefined, line: number): string {
  if (origin === undefined)
    throw new ZoneSyntaxError(line, 'relative name with no $ORIGIN (add $ORIGIN or pass the domain)');
  return origin;
}

/** An absolute, lower-case name without the trailing dot. */
function absolute(name: string, origin: string | undefined, line: number): string {
  const lower = name.toLowerCase();
  if (lower === '.') return '';
  if (lower.endsWith('.')) return lower.slice(0, -1);
  const base = requireOrigin(origin, line);
  return base === '' ? lower : `${lower}.${base}`;
}

const TTL_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds, or BIND's units (`1h30m`, `2d`). */
function ttlValue(text: string, line: number): number {
  if (/^\d+$/.test(text)) return Number(text);
  const parts = [...text.toLowerCase().matchAll(/(\d+)([smhdw])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text.toLowerCase()) {
    throw new ZoneSyntaxError(line, `"${text}" is not a TTL`);
  }
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * (TTL_UNITS[unit as string] ?? 0), 0);
}

/** Splits the text into entries (one per logical line: parentheses join lines) of tokens. */
function* entries(text: string): Generator<Entry> {
  let line = 1;
  let startLine = 1;
  let tokens: Token[] = [];
  let depth = 0;
  let ownerOmitted = false;
  let atLineStart = true;
  let i = 0;

  const flush = function* (): Generator<Entry> {
    if (tokens.length > 0) yield { line: startLine, ownerOmitted, tokens };
    tokens = [];
  };

  while (i < text.length) {
    const char = text[i] as string;
    if (char === '\n') {
      line++;
      i++;
      if (depth === 0) {
        yield* flush();
        atLineStart = true;
      }
      continue;
    }
    if (atLineStart) {
      atLineStart = false;
      startLine = line;
      ownerOmitted = char === ' ' || char === '\t';
    }
    if (char === ' ' || char === '\t' || char === '\r') {
      i++;
    } else if (char === ';') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (char === '(') {
      depth++;
      i++;
    } else if (char === ')') {
      if (depth === 0) throw new ZoneSyntaxError(line, 'unbalanced ")"');
      depth--;
      i++;
    } else if (char === '"') {
      const quoteLine = line;
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new ZoneSyntaxError(quoteLine, 'unterminated quoted string');
        const c = text[i] as string;
        if (c === '"') {
          i++;
          break;
        }
        if (c === '\\') {
          const [escaped, length] = readEscape(text, i + 1, line);
          value += escaped;
          i += 1 + length;
          continue;
        }
        if (c === '\n') line++;
        value += c;
        i++;
      }
      tokens.push({ text: value, quoted: true });
    } else {
      let value = '';
      while (i < text.length && !' \t\r\n;()"'.includes(text[i] as string)) {
        if (text[i] === '\\') {
          const [escaped, length] = readEscape(text, i + 1, line);
          value += escaped;
          i += 1 + length;
        } else {
          value += text[i];
          i++;
        }
      }
      tokens.push({ text: value, quoted: false });
    }
  }
  if (depth > 0) throw new ZoneSyntaxError(startLine, 'unbalanced "(": missing ")"');
  yield* flush();
}

/** `\DDD` is the byte with that decimal value, `\X` is X itself. */
function readEscape(text: string, at: number, line: number): [string, number] {
  const digits = /^\d{3}/.exec(text.slice(at, at + 3));
  if (digits !== null) {
    const code = Number(digits[0]);
    if (code > 255) throw new ZoneSyntaxError(line, `escape \\${digits[0]} is above 255`);
    return [String.fromCharCode(code), 3];
  }
  const next = text[at];
  if (next === undefined || next === '\n') throw new ZoneSyntaxError(line, 'escape at the end of a line');
  return [next, 1];
}
