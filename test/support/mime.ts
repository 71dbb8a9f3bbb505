/**
 * Just enough RFC 5322 / RFC 2047 reading to check what the MIME composer wrote: the top-level
 * header block, unfolded header values and decoded encoded-words (UTF-8, Q or B).
 */

import { decodeWords as decodeEncodedWords } from '../../lambdas/domain/smtp/submission.ts';

/** The top-level header block (everything before the first empty line), CRLFs kept. */
export function headerBlock(raw: Uint8Array | string): string {
  const text = typeof raw === 'string' ? raw : Buffer.from(raw).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  return end < 0 ? text : text.slice(0, end + 2);
}

/** The physical lines of a raw message, split on CRLF. */
export function linesOf(raw: Uint8Array | string): string[] {
  const text = typeof raw === 'string' ? raw : Buffer.from(raw).toString('latin1');
  return text.split('\r\n');
}

/** The longest line in octets, CRLF excluded (RFC 5322 §2.1.1 allows at most 998). */
export function longestLine(raw: Uint8Array | string): number {
  return Math.max(...linesOf(raw).map((line) => Buffer.byteLength(line, 'latin1')));
}

/** Every value of a top-level header (case-insensitive name), unfolded (CRLF before WSP removed). */
export function headerValues(raw: Uint8Array | string, name: string): string[] {
  const fields: string[] = [];
  for (const line of headerBlock(raw).split('\r\n')) {
    if (line === '') continue;
    if (/^[ \t]/.test(line) && fields.length > 0) fields[fields.length - 1] += line;
    else fields.push(line);
  }
  const prefix = `${name.toLowerCase()}:`;
  return fields
    .filter((f) => f.toLowerCase().startsWith(prefix))
    .map((f) => f.slice(prefix.length).replace(/^[ \t]+/, ''));
}

/** The single value of a top-level header; fails loudly when it is absent or repeated. */
export function headerValue(raw: Uint8Array | string, name: string): string {
  const values = headerValues(raw, name);
  if (values.length !== 1) throw new Error(`expected one ${name} header, found ${values.length}`);
  return values[0] as string;
}

const ENCODED_WORD = /=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=/g;

/** The encoded-words (RFC 2047 §2) in a header value. */
export function encodedWords(value: string): string[] {
  return [...value.matchAll(ENCODED_WORD)].map((m) => m[0]);
}

/**
 * Decodes RFC 2047 encoded-words as a reader does (Baton's own decoder, `decodeWords` in
 * lambdas/domain/smtp/submission.ts: whitespace between adjacent encoded-words dropped, §6.2, and
 * their bytes joined before decoding, since a composer may split a character's bytes). Every word
 * must be UTF-8: that is what the composer writes.
 */
export function decodeWords(value: string): string {
  for (const m of value.matchAll(ENCODED_WORD)) {
    if ((m[1] ?? '').toLowerCase() !== 'utf-8') throw new Error(`unexpected charset in ${m[0]}`);
  }
  return decodeEncodedWords(value);
}
