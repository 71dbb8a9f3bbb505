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

import type * as XssModule from 'xss';
import xss, { FilterXSS, type IFilterXSSOptions, type IWhiteList } from 'xss';

// The CommonJS module sets its helpers in a loop, which Node's ESM named-export detection cannot
// see; they are on the default export (module.exports) at run time and in the bundle.
const { escapeAttrValue, friendlyAttrValue } = xss as unknown as typeof XssModule;

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
const URL_SCHEMES = new Set(['http', 'https', 'mailto', 'tel', 'sms', 'cid']);

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
      const decoded = friendlyAttrValue(value);
      let safe: string | undefined;
      if (name === 'style') safe = sanitizeCss(decoded).trim();
      else if (URL_ATTRIBUTES.has(name)) safe = safeUrl(tag, name, decoded);
      else safe = decoded;
      if (safe === undefined || (name === 'style' && safe === '')) return '';
      if (SCRIPT_URL.test(skeleton(safe))) return '';
      return `${name}="${escapeAttrValue(safe)}"`;
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
 * Removes the declarations (or rules, selectors, at-rules) that run code; everything else is left
 * as written. Comments go first, so none can hide a token across the pieces checked one by one.
 * Works for a `style` attribute and for the content of a `<style>` block alike.
 */
export function sanitizeCss(css: string): string {
  const parts = css.replace(/\/\*[\s\S]*?(?:\*\/|$)/g, '').split(/([;{}])/);
  return parts.map((part, i) => (i % 2 === 0 && DANGEROUS_CSS.test(skeleton(part)) ? '' : part)).join('');
}

/**
 * What a browser could make of `value` once entities and CSS escapes are decoded, reduced to what
 * a check needs: lowercase, NFKC (old IE read full-width letters as ASCII), without whitespace,
 * controls and invisible format characters, and without named character references (so
 * `java&Tab;script:` still reads `javascript:`).
 */
function skeleton(value: string): string {
  return value
    .replace(/&#(x[0-9a-f]+|[0-9]+);?/gi, (_, code: string) =>
      codePoint(
        code.startsWith('x') || code.startsWith('X') ? Number.parseInt(code.slice(1), 16) : Number(code),
      ),
    )
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
 * A URL attribute keeps only a scheme from the allowlist (or a relative URL); `data:` only for
 * raster images in `<img src>` (an SVG can carry script).
 */
function safeUrl(tag: string, name: string, value: string): string | undefined {
  // Browsers drop tabs and newlines anywhere in a URL and spaces around it.
  const compact = value.replace(/[\s\p{Cc}]/gu, '').toLowerCase();
  const colon = compact.search(/[:/?#]/);
  if (colon === -1 || compact[colon] !== ':') return value; // relative URL
  const scheme = compact.slice(0, colon);
  if (URL_SCHEMES.has(scheme)) return value;
  if (scheme === 'data' && tag === 'img' && name === 'src' && /^data:image\/(?!svg)/.test(compact))
    return value;
  return undefined;
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
