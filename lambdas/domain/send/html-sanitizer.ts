/**
 * HTML sanitizing for message bodies (DESIGN §4 "content safety"), on js-xss (`xss`).
 *
 * Why js-xss: it adds about 20 KB to the api bundle (sanitize-html pulls htmlparser2 and postcss,
 * about 190 KB; DOMPurify needs a DOM, about 480 KB with linkedom), it is maintained, and its model
 * fits mail: it rebuilds every allowed tag from its name and attributes, always double-quoted with
 * `"`, `<` and `>` escaped, and escapes every other `<`. So the only markup a mail client ever sees
 * is an allowlisted tag with checked attributes, whatever its own parser makes of the rest; a
 * parser differential (the mXSS family) can only turn markup into text, never text into markup.
 *
 * What is configured here: the allowlist of email HTML (tables with their presentational
 * attributes, inline styles, `<style>` blocks, legacy `font`/`center`), URL schemes per attribute,
 * the CSS that is stripped, and which removed elements lose their content too (`script`, `svg`,
 * `iframe`, ...). HTML comments, conditional comments included, are removed.
 */

import { FilterXSS, type IFilterXSSOptions, type IWhiteList } from 'xss';

/** Attributes every allowed element may carry. `aria-*` is allowed too (see `onTagAttr`). */
const GLOBAL = ['style', 'class', 'id', 'dir', 'lang', 'title', 'role', 'align', 'valign'];
const CELL = [
  'width',
  'height',
  'bgcolor',
  'background',
  'colspan',
  'rowspan',
  'nowrap',
  'scope',
  'headers',
  'abbr',
];

const ELEMENT_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = {
  html: ['xmlns', 'xmlns:v', 'xmlns:o', 'xml:lang'],
  head: [],
  body: [
    'bgcolor',
    'background',
    'text',
    'link',
    'vlink',
    'alink',
    'leftmargin',
    'topmargin',
    'marginwidth',
    'marginheight',
  ],
  title: [],
  // No http-equiv (see `onTag`): MIME carries the charset, and `refresh` redirects.
  meta: ['name', 'content', 'charset'],
  a: ['href', 'target', 'name', 'rel'],
  img: ['src', 'alt', 'width', 'height', 'border', 'hspace', 'vspace', 'usemap'],
  map: ['name'],
  area: ['shape', 'coords', 'href', 'alt', 'target'],
  table: [
    'width',
    'height',
    'border',
    'cellpadding',
    'cellspacing',
    'bgcolor',
    'background',
    'frame',
    'rules',
    'summary',
  ],
  caption: [],
  colgroup: ['span', 'width'],
  col: ['span', 'width'],
  thead: ['bgcolor'],
  tbody: ['bgcolor'],
  tfoot: ['bgcolor'],
  tr: ['bgcolor', 'height'],
  td: CELL,
  th: CELL,
  font: ['color', 'face', 'size'],
  center: [],
  div: ['width', 'height', 'bgcolor'],
  span: [],
  p: [],
  br: ['clear'],
  hr: ['width', 'size', 'noshade', 'color'],
  h1: [],
  h2: [],
  h3: [],
  h4: [],
  h5: [],
  h6: [],
  ul: ['type'],
  ol: ['type', 'start', 'reversed'],
  li: ['type', 'value'],
  dl: [],
  dt: [],
  dd: [],
  blockquote: ['cite'],
  q: ['cite'],
  del: ['cite', 'datetime'],
  ins: ['cite', 'datetime'],
  time: ['datetime'],
  details: ['open'],
  ...Object.fromEntries(
    [
      'b',
      'strong',
      'i',
      'em',
      'u',
      's',
      'strike',
      'small',
      'big',
      'sub',
      'sup',
      'tt',
      'code',
      'kbd',
      'samp',
      'var',
      'pre',
      'abbr',
      'address',
      'cite',
      'dfn',
      'mark',
      'bdi',
      'bdo',
      'wbr',
      'nobr',
      'article',
      'section',
      'header',
      'footer',
      'nav',
      'aside',
      'main',
      'figure',
      'figcaption',
      'summary',
    ].map((tag) => [tag, []]),
  ),
};

const WHITE_LIST: IWhiteList = Object.fromEntries(
  Object.entries(ELEMENT_ATTRIBUTES).map(([tag, attrs]) => [tag, [...GLOBAL, ...attrs]]),
);

/**
 * Removed together with everything inside them: their content is code, a nested document or
 * markup in another namespace (SVG, MathML), never text meant for the reader.
 */
const STRIP_WITH_CONTENT = new Set([
  'script',
  'template',
  'iframe',
  'frame',
  'frameset',
  'noframes',
  'noembed',
  'object',
  'applet',
  'svg',
  'math',
  'xml',
  'textarea',
  'select',
]);

const URL_ATTRIBUTES = new Set(['href', 'src', 'background', 'cite', 'usemap']);
/** The only schemes a link or image may use (DESIGN §4); everything else is refused. */
const URL_SCHEMES = new Set(['http', 'https', 'mailto', 'tel', 'cid']);

/** `javascript:` and its relatives, in any attribute; matched on `skeleton`. */
const SCRIPT_URL = /(?:java|vb|live)script:|mocha:/;
/**
 * CSS that runs code or loads more of it: IE's `expression()` and `behavior` (HTC), Firefox's
 * `-moz-binding` (XBL), script URLs in `url()`, and `@import` (a stylesheet we cannot check).
 * `scroll-behavior` and `overscroll-behavior` are harmless layout properties.
 */
const DANGEROUS_CSS =
  /expression|javascript|vbscript|livescript|mocha:|-moz-binding|(?<!scroll-)behavior|@import/;

/**
 * js-xss parses a tag's attributes in time proportional to its length times its unquoted
 * whitespace, so a crafted tag of a few dozen KB costs seconds of CPU. Tags past these budgets
 * keep their name but lose their attributes; real email HTML stays far below them (a typical
 * tag costs a few hundred units, a 1 MB template a few million in all).
 */
const MAX_TAG_COST = 2_000_000;
const MAX_DOCUMENT_COST = 20_000_000;

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL and other C0 controls are what is removed
const CONTROL_CHARS = /[\u0000-\u0008\u000B\u000E-\u001F\u007F]/g;
const DOCTYPE = /^<!doctype[^<>]*>$/i;
/** What browsers read as the start of a tag (`<` then a letter, `/`, `!` or `?`); other `<` is text. */
const TAG_LIKE = /^[a-z!?]/;

type Mode =
  | { readonly kind: 'normal' }
  | { readonly kind: 'strip'; readonly tag: string; readonly start: number; depth: number }
  | { readonly kind: 'style'; readonly start: number };

interface Range {
  readonly start: number;
  readonly end: number;
  readonly kind: 'strip' | 'style';
}

/**
 * Returns `html` without active content: no scripts, event handlers, script URLs, embedded
 * documents, forms or code-running CSS; ordinary email HTML comes out with its structure, inline
 * styles and presentational attributes.
 */
export function sanitizeHtml(html: string): string {
  // Widened on purpose: the callbacks below change it, which flow analysis cannot see.
  let mode = { kind: 'normal' } as Mode;
  let spent = 0;
  const ranges: Range[] = [];

  const options: IFilterXSSOptions = {
    whiteList: WHITE_LIST,
    css: false,
    allowCommentTag: false,
    // Only `<` can start markup; escaping `>` too would break CSS child selectors in `<style>`.
    escapeHtml: (text) => text.replace(/</g, '&lt;'),
    onTag(tag, source, info) {
      const position = info.position ?? 0;
      const closing = info.isClosing === true;
      if (mode.kind === 'strip') {
        if (tag === mode.tag && !selfClosing(tag, source)) mode.depth += closing ? -1 : 1;
        if (mode.depth === 0) {
          ranges.push({ start: mode.start, end: position, kind: 'strip' });
          mode = { kind: 'normal' };
        }
        return '';
      }
      if (mode.kind === 'style') {
        // Inside <style> a browser reads raw text up to </style>: any tag here is CSS garbage.
        if (tag !== 'style' || !closing) return '';
        ranges.push({ start: mode.start, end: position, kind: 'style' });
        mode = { kind: 'normal' };
        return '</style>';
      }
      if (STRIP_WITH_CONTENT.has(tag)) {
        if (!closing && !selfClosing(tag, source)) mode = { kind: 'strip', tag, start: position, depth: 1 };
        return '';
      }
      if (tag === 'style') {
        if (closing) return '';
        mode = { kind: 'style', start: position + '<style>'.length };
        return '<style>';
      }
      if (tag === '!doctype') return DOCTYPE.test(source) ? source : '';
      // A `http-equiv` meta (refresh, set-cookie, content-security-policy) goes whole, so no
      // orphaned `content="0;url=..."` is left behind; charset and viewport metas stay.
      if (tag === 'meta' && /\shttp-equiv\s*=/i.test(source)) return '';
      if (info.isWhite === true && !closing) {
        const cost = attributeCost(source);
        if (cost > MAX_TAG_COST || spent + cost > MAX_DOCUMENT_COST) return `<${tag}>`;
        spent += cost;
      }
      return undefined;
    },
    onIgnoreTag(tag) {
      return TAG_LIKE.test(tag) ? '' : undefined;
    },
    onTagAttr(tag, name, value, isWhiteAttr) {
      if (!isWhiteAttr && !/^aria-[a-z]+$/.test(name)) return '';
      let safe: string | undefined;
      if (URL_ATTRIBUTES.has(name)) safe = safeUrl(tag, name, value);
      else {
        const decoded = decodeOnce(value, 'html').replace(CONTROL_CHARS, '');
        safe = name === 'style' ? sanitizeCss(decoded).trim() : decoded;
      }
      if (safe === undefined || (name === 'style' && safe === '')) return '';
      if (SCRIPT_URL.test(skeleton(safe))) return '';
      return `${name}="${escapeAttribute(safe)}"`;
    },
  };

  const filtered = new FilterXSS(options).process(html.replace(CONTROL_CHARS, ''));
  // An unclosed <script> or <style> runs to the end of the document in a browser too.
  if (mode.kind === 'strip') ranges.push({ start: mode.start, end: filtered.length, kind: 'strip' });
  if (mode.kind === 'style') ranges.push({ start: mode.start, end: filtered.length, kind: 'style' });

  let out = '';
  let at = 0;
  for (const range of ranges) {
    out += filtered.slice(at, range.start);
    if (range.kind === 'style') out += sanitizeCss(filtered.slice(range.start, range.end));
    at = range.end;
  }
  return out + filtered.slice(at);
}

/**
 * Removes the declarations (or rules, selectors, at-rules) that run code or load from a scheme
 * links may not use (`url(file://…)` and `url(\\host\…)` make a desktop client open an SMB
 * share, with the reader's credentials); everything else is left as written. Comments go first,
 * so none can hide a token across the pieces checked one by one. Works for a `style` attribute and
 * for the content of a `<style>` block alike.
 */
export function sanitizeCss(css: string): string {
  const parts = css.replace(/\/\*[\s\S]*?(?:\*\/|$)/g, '').split(/([;{}])/);
  return parts
    .map((part, i) => {
      if (i % 2 === 1) return part;
      const seen = skeleton(part);
      // URLs also as written, for a renderer that ignores CSS escapes (then `\\host` is a share).
      const written = part.toLowerCase().replace(/[\s\p{Cc}\p{Cf}]/gu, '');
      const seenUrls = cssUrls(seen);
      const writtenUrls = cssUrls(written);
      if (seenUrls === undefined || writtenUrls === undefined) return '';
      const urls = [...seenUrls, ...writtenUrls];
      return DANGEROUS_CSS.test(seen) || urls.some((url) => !schemeAllowed(url, true)) ? '' : part;
    })
    .join('');
}

/**
 * The URLs a declaration loads: every `url()` argument (inside `image-set()` too), and, when it
 * calls a function that reads strings as URLs (`image-set()`, `image()`, `src()`,
 * `cross-fade()`), every string in it, wherever the function's arguments end. Such a call that
 * reads `var()` gives undefined (refuse it): the custom property was judged as a plain string.
 */
function cssUrls(seen: string): string[] | undefined {
  const urls = [...seen.matchAll(/url\(([^)]*)/g)].map(([, args = '']) => args.replace(/^["']|["']$/g, ''));
  if (/(?:image-set|image|src|cross-fade)\(/.test(seen)) {
    if (seen.includes('var(')) return undefined;
    for (const [, text = ''] of seen.matchAll(/["']([^"']*)["']/g)) urls.push(text);
  }
  return urls;
}

/**
 * What a browser could make of `value` once entities and CSS escapes are decoded, reduced to what
 * a check needs: lowercase, NFKC (old IE read full-width letters as ASCII), without whitespace,
 * controls and invisible format characters, and without named character references (so
 * `java&Tab;script:` still reads `javascript:`).
 */
function skeleton(value: string): string {
  return (decodeFully(value, 'lenient') ?? value)
    .replace(/&[a-z][a-z0-9]*;/gi, '')
    .replace(/\\(?:([0-9a-f]{1,6})\s?|([\s\S]))/gi, (_, hex: string | undefined, char: string | undefined) =>
      hex !== undefined ? codePoint(Number.parseInt(hex, 16)) : (char ?? ''),
    )
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s\p{Cc}\p{Cf}]/gu, '');
}

function codePoint(n: number): string {
  return Number.isInteger(n) && n > 0 && n <= 0x10ffff && (n < 0xd800 || n > 0xdfff)
    ? String.fromCodePoint(n)
    : '\uFFFD';
}

/**
 * The named character references that stand for ASCII (HTML's table, exact case): the only ones
 * that can spell a scheme, a colon or a slash. Others decode to letters no scheme may contain.
 */
const ASCII_REFERENCES: Readonly<Record<string, string>> = {
  Tab: '\t',
  NewLine: '\n',
  excl: '!',
  quot: '"',
  QUOT: '"',
  num: '#',
  dollar: '$',
  percnt: '%',
  amp: '&',
  AMP: '&',
  apos: "'",
  lpar: '(',
  rpar: ')',
  ast: '*',
  midast: '*',
  plus: '+',
  comma: ',',
  period: '.',
  sol: '/',
  colon: ':',
  semi: ';',
  lt: '<',
  LT: '<',
  equals: '=',
  gt: '>',
  GT: '>',
  quest: '?',
  commat: '@',
  lsqb: '[',
  lbrack: '[',
  bsol: '\\',
  rsqb: ']',
  rbrack: ']',
  Hat: '^',
  lowbar: '_',
  UnderBar: '_',
  grave: '`',
  DiacriticalGrave: '`',
  lcub: '{',
  lbrace: '{',
  verbar: '|',
  vert: '|',
  VerticalLine: '|',
  rcub: '}',
  rbrace: '}',
  fjlig: 'fj',
};
/** The references HTML also reads without a `;` (its legacy list, the ASCII part). */
const LEGACY_REFERENCES = new Set(['amp', 'AMP', 'lt', 'LT', 'gt', 'GT', 'quot', 'QUOT']);
const LENIENT_REFERENCES = new Map(Object.entries(ASCII_REFERENCES).map(([k, v]) => [k.toLowerCase(), v]));
const LENIENT_NAMES = [...LENIENT_REFERENCES.keys()].sort((a, b) => b.length - a.length);
const REFERENCE = /&#[xX]([0-9a-fA-F]+);?|&#([0-9]+);?|&([A-Za-z][A-Za-z0-9]*)(;?)/g;

/**
 * Decodes the character references in an attribute value once. `html` does it as HTML does
 * (numeric with or without `;`, named references exact-case, a legacy name without `;` only when
 * no letter, digit or `=` follows); `lenient` as the sloppiest decoder a mail client or a
 * filter in front of one might use (any case, `;` optional, a name's prefix enough), so a check
 * on its output also covers what such a decoder reads.
 */
function decodeOnce(value: string, mode: 'html' | 'lenient'): string {
  if (!value.includes('&')) return value; // most values: nothing to decode
  return value.replace(
    REFERENCE,
    (
      match,
      hex: string | undefined,
      dec: string | undefined,
      name: string | undefined,
      semi: string,
      at: number,
    ) => {
      if (hex !== undefined) return codePoint(Number.parseInt(hex.slice(0, 8), 16));
      if (dec !== undefined) return codePoint(Number(dec.slice(0, 9)));
      const ref = name ?? '';
      if (mode === 'lenient') {
        const lower = ref.toLowerCase();
        const whole = LENIENT_REFERENCES.get(lower);
        if (whole !== undefined) return whole;
        const prefix = LENIENT_NAMES.find((n) => lower.startsWith(n));
        return prefix === undefined
          ? match
          : `${LENIENT_REFERENCES.get(prefix)}${ref.slice(prefix.length)}${semi}`;
      }
      const exact = Object.hasOwn(ASCII_REFERENCES, ref) ? ASCII_REFERENCES[ref] : undefined;
      if (semi === ';') return exact ?? match;
      const next = value[at + match.length] ?? '';
      return LEGACY_REFERENCES.has(ref) && next !== '=' ? (exact ?? match) : match;
    },
  );
}

/** More nesting than this (`&#38;#38;#38;…`) is an attack, not a URL. */
const MAX_DECODE_DEPTH = 8;

/** `value` decoded until nothing changes, or undefined when it is nested deeper than any real URL. */
function decodeFully(value: string, mode: 'html' | 'lenient'): string | undefined {
  let current = value;
  for (let depth = 0; depth <= MAX_DECODE_DEPTH; depth++) {
    const next = decodeOnce(current, mode);
    if (next === current) return current;
    current = next;
  }
  return undefined;
}

/**
 * `"`, `&`, `<` and `>` as references: a client decodes the written value once and gets exactly
 * the value that was checked, which holds no further reference to decode.
 */
function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A URL attribute keeps only a scheme from the allowlist (or a relative URL); `data:` only for
 * raster images in `<img src>` (an SVG can carry script). The decision is taken on the value a
 * client reads after decoding it as often as it likes (`ms-msdt&#38;#58;` is `ms-msdt:` two
 * decodings later), without whitespace, controls and invisible characters (browsers drop tabs and
 * newlines inside a URL, lax clients more); what is written back is that fully decoded value, so
 * there is nothing left to decode.
 */
function safeUrl(tag: string, name: string, value: string): string | undefined {
  const decoded = decodeFully(value, 'html');
  if (decoded === undefined) return undefined;
  const written = decoded.replace(/\p{Cc}/gu, '').trim();
  const lenient = decodeFully(written, 'lenient');
  if (lenient === undefined) return undefined;
  const compact = lenient
    .normalize('NFKC')
    .replace(/[\s\p{Cc}\p{Cf}]/gu, '')
    .toLowerCase();
  if (!schemeAllowed(compact, tag === 'img' && name === 'src')) return undefined;
  const at = written.indexOf(':');
  return at === -1 ? written : written.slice(0, at).replace(/[\s\p{Cf}]/gu, '') + written.slice(at);
}

/**
 * Whether a URL, reduced to what a check needs (lower-case, no whitespace, controls or invisible
 * characters), may stay: a relative URL, or one of `URL_SCHEMES`, or (`dataImage`) a raster
 * `data:image/`. A network-path reference (`//host`, `\\host`) may not: a desktop client without
 * a base URL opens it as a `file:` share.
 */
function schemeAllowed(compact: string, dataImage: boolean): boolean {
  if (/^[/\\]{2}/.test(compact)) return false;
  const colon = compact.search(/[:/?#\\]/);
  if (colon === -1 || compact[colon] !== ':') return true; // relative URL
  const scheme = compact.slice(0, colon);
  if (scheme === 'mailto') return mailtoFieldsAllowed(compact);
  return URL_SCHEMES.has(scheme) || (scheme === 'data' && dataImage && /^data:image\/(?!svg)/.test(compact));
}

/** The `mailto:` fields a reply may be prefilled with (RFC 6068's common ones). */
const MAILTO_FIELDS = new Set(['to', 'cc', 'bcc', 'subject', 'body', 'in-reply-to']);

/**
 * Whether a `mailto:` URL names only `MAILTO_FIELDS`. Others are refused: `attach=` and
 * `attachment=` make several desktop clients (Evolution, KMail, Thunderbird before 68.7) attach a
 * local file (`~/.ssh/id_rsa`) to the reply the reader is asked to send. Names are judged
 * percent-decoded as often as it changes them (`%61ttach`).
 */
function mailtoFieldsAllowed(compact: string): boolean {
  const query = compact.indexOf('?');
  if (query === -1) return true;
  return compact
    .slice(query + 1)
    .split(/[&;]/)
    .map((field) => percentDecoded(field.split('=')[0] ?? ''))
    .every((name) => name === '' || MAILTO_FIELDS.has(name));
}

function percentDecoded(text: string): string {
  let current = text;
  for (let depth = 0; depth <= MAX_DECODE_DEPTH; depth++) {
    const next = current.replace(/%([0-9a-f]{2})/gi, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
    if (next === current) return current.toLowerCase();
    current = next;
  }
  return '\uFFFD'; // nested deeper than any real link: no allowed name
}

/**
 * `<svg/>` and `<math/>` are complete elements (foreign content honours the slash); `<script/>` or
 * `<iframe/>` still open one in HTML, so their content goes on being removed.
 */
function selfClosing(tag: string, source: string): boolean {
  return (tag === 'svg' || tag === 'math') && source.endsWith('/>');
}

/** Length times unquoted whitespace: what js-xss's attribute parser spends on this tag. */
function attributeCost(source: string): number {
  // \s as js-xss counts it (Unicode spaces included).
  const whitespace = source.replace(/"[^"]*"|'[^']*'/g, '').match(/\s/g)?.length ?? 0;
  return source.length * whitespace;
}
