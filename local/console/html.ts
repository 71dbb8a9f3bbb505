/**
 * HTML built by a tagged template that escapes every interpolated value unless it is already
 * SafeHtml (the output of another `html` template). Subjects, addresses, headers and webhook
 * answers come from users, so escaping is the default and raw markup the exception.
 */
export class SafeHtml {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
}

export type Interpolation =
  | SafeHtml
  | string
  | number
  | boolean
  | null
  | undefined
  | readonly Interpolation[];

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Safe in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ENTITIES[c] ?? c);
}

/**
 * Unicode's bidirectional embeddings, overrides and isolates: escaping leaves them, yet one in a
 * subject or a file name reorders what is shown (`invoice<U+202E>fdp.exe` reads `invoiceexe.pdf`),
 * and the text after it in the same block too.
 */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

/** Safe in element content, where the bidirectional controls are shown as marks (`<U+202E>`). */
export function escapeText(text: string): string {
  return escapeHtml(text).replace(
    BIDI_CONTROLS,
    (c) => `&lt;U+${c.charCodeAt(0).toString(16).toUpperCase()}&gt;`,
  );
}

/**
 * Whether markup so far ends inside a quoted attribute value. Every value interpolated so far is
 * escaped (no `<`, `>` or `"`), so the quotes after the last `<` of an open tag tell.
 */
function inAttribute(out: string): boolean {
  const open = out.lastIndexOf('<');
  if (open < 0 || open < out.lastIndexOf('>')) return false;
  return (out.slice(open).split('"').length - 1) % 2 === 1;
}

function render(value: Interpolation, attribute: boolean): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map((v) => render(v, attribute)).join('');
  if (value === null || value === undefined || value === false) return '';
  // An attribute keeps its value exactly (a form posts back what it holds); text shows the controls.
  return attribute ? escapeHtml(String(value)) : escapeText(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value, inAttribute(out)) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}
