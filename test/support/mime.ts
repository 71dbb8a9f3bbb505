/**
 * Just enough RFC 5322 / RFC 2047 reading to check what the MIME composer wrote: the top-level
 * header block, unfolded header values and decoded encoded-words (UTF-8, Q or B).
 */

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
 * Decodes RFC 2047 encoded-words. Whitespace between adjacent encoded-words is dropped (§6.2) and
 * their bytes are joined before UTF-8 decoding, since a composer may split a character's bytes.
 */
export function decodeWords(value: string): string {
  let out = '';
  let pending: number[] = [];
  let last = 0;
  const flush = () => {
    if (pending.length > 0) out += Buffer.from(pending).toString('utf8');
    pending = [];
  };
  for (const m of value.matchAll(ENCODED_WORD)) {
    const [word, charset = '', encoding = '', text = ''] = m;
    if (charset.toLowerCase() !== 'utf-8') throw new Error(`unexpected charset in ${word}`);
    const between = value.slice(last, m.index);
    if (!(pending.length > 0 && /^[ \t]*$/.test(between))) {
      flush();
      out += between;
    }
    pending.push(...(encoding.toUpperCase() === 'B' ? Buffer.from(text, 'base64') : qDecode(text)));
    last = m.index + word.length;
  }
  flush();
  return out + value.slice(last);
}

function qDecode(text: string): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    const hex = text.slice(i + 1, i + 3);
    if (ch === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(ch === '_' ? 0x20 : ch.charCodeAt(0));
    }
  }
  return bytes;
}
