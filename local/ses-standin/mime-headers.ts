/** A header as SES reports it in `mail.headers`: unfolded, value untouched otherwise. */
export interface MailHeader {
  readonly name: string;
  readonly value: string;
}

/**
 * Reads the header section of a raw RFC 5322 message. Only the header block is decoded (as UTF-8,
 * which covers SMTPUTF8 headers); the body is never looked at, so 8-bit bodies cost nothing.
 */
export const parseHeaders = (raw: Uint8Array): MailHeader[] => {
  const block = Buffer.from(raw.buffer, raw.byteOffset, headerBlockLength(raw)).toString('utf8');
  const headers: MailHeader[] = [];
  let current: { name: string; value: string } | undefined;
  for (const line of block.split(/\r?\n/)) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && current) {
      // RFC 5322 unfolding: drop the line break, keep the whitespace that follows it.
      current.value += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      // Not a header (e.g. a body with no header section); SES would not list it either.
      current = undefined;
      continue;
    }
    current = { name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() };
    headers.push(current);
  }
  return headers;
};

/** Byte length of the header section: up to the first empty line, or the whole message if none. */
const headerBlockLength = (raw: Uint8Array): number => {
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0x0a) continue;
    if (raw[i + 1] === 0x0a) return i;
    if (raw[i + 1] === 0x0d && raw[i + 2] === 0x0a) return i;
  }
  return raw.length;
};

/** First value of a header, case-insensitive by name as RFC 5322 requires. */
export const headerValue = (headers: readonly MailHeader[], name: string): string | undefined =>
  headers.find((header) => header.name.toLowerCase() === name.toLowerCase())?.value;

/**
 * Splits an address-list header at top-level commas, leaving each mailbox as written (SES reports
 * `commonHeaders.to` entries verbatim, display names and encoded words included). Commas inside
 * quotes, angle brackets or comments do not split.
 */
export const splitAddressList = (value: string): string[] => {
  const parts: string[] = [];
  let depthAngle = 0;
  let depthComment = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const char = value[i];
    if (quoted) {
      if (char === '\\') i++;
      else if (char === '"') quoted = false;
      continue;
    }
    if (char === '"') quoted = true;
    else if (char === '(') depthComment++;
    else if (char === ')' && depthComment > 0) depthComment--;
    else if (char === '<') depthAngle++;
    else if (char === '>' && depthAngle > 0) depthAngle--;
    else if (char === ',' && depthAngle === 0 && depthComment === 0) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts.map((part) => part.trim()).filter((part) => part !== '');
};

/**
 * The addr-spec of a mailbox (`Ana <ana@example.org>` → `ana@example.org`), or undefined when it has
 * none. A group (`undisclosed-recipients:;`) has no addr-spec and yields undefined.
 */
export const addrSpec = (mailbox: string): string | undefined => {
  const angle = /<([^<>]*)>\s*$/.exec(mailbox);
  const candidate = (angle ? angle[1] : mailbox)?.trim() ?? '';
  const at = candidate.lastIndexOf('@');
  if (at <= 0 || at === candidate.length - 1 || /[\s<>,;:"()]/.test(candidate)) return undefined;
  return candidate;
};
