/**
 * Mutating parsed JSON for the fuzz tests (`test/unit/api/fuzz.test.ts`,
 * `test/unit/feedback/fuzz.test.ts`): dotted paths into it (`attachments.0.filename`), and the
 * mutations both make of a valid document (a field dropped, replaced, retyped, made huge or
 * unicode) as fast-check arbitraries and their application. What only one of them mutates (API
 * headers and tags, SES event types, SNS envelopes) stays in its own file.
 */
import fc from 'fast-check';

export type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Paths into JSON

type Container = Json | unknown[];

/** Sets an own property, as JSON.parse would (a plain assignment of `__proto__` would set the prototype). */
export function defineOwn<T extends object>(target: T, key: PropertyKey, value: unknown): T {
  return Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function parentOf(root: Json, path: string): { parent: Container; key: string } | undefined {
  const parts = path.split('.');
  let node: unknown = root;
  for (const part of parts.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Json)[part];
  }
  if (typeof node !== 'object' || node === null) return undefined;
  return { parent: node as Container, key: parts[parts.length - 1] ?? '' };
}

export function getAt(root: Json, path: string): unknown {
  const at = parentOf(root, path);
  return at ? (at.parent as Json)[at.key] : undefined;
}

/** Sets an own property (see `defineOwn`), only where the parent exists: a mutation of an absent section is none. */
export function setAt(root: Json, path: string, value: unknown): void {
  const at = parentOf(root, path);
  if (at) defineOwn(at.parent, at.key, value);
}

/** Deletes an object's key, or takes an array's item out (the later ones move up). */
export function dropAt(root: Json, path: string): void {
  const at = parentOf(root, path);
  if (!at) return;
  if (Array.isArray(at.parent)) at.parent.splice(Number(at.key), 1);
  else delete at.parent[at.key];
}

/** Moves the value at `path` to a sibling key (an absent one is no move). */
export function renameAt(root: Json, path: string, to: string): void {
  const at = parentOf(root, path);
  if (!at || Array.isArray(at.parent) || !(at.key in at.parent)) return;
  const value = at.parent[at.key];
  delete at.parent[at.key];
  defineOwn(at.parent, to, value);
}

// ---------------------------------------------------------------------------------------------
// The mutations of a field

/** What `retype` turns a value into. */
export const RETYPES = ['number', 'boolean', 'null', 'array', 'object', 'string', 'empty'] as const;
export type Retype = (typeof RETYPES)[number];

export type JsonMutation =
  | { readonly kind: 'drop'; readonly path: string }
  | { readonly kind: 'replace'; readonly path: string; readonly value: unknown }
  | { readonly kind: 'retype'; readonly path: string; readonly to: Retype }
  | { readonly kind: 'huge'; readonly path: string; readonly size: number; readonly char: string }
  | { readonly kind: 'unicode'; readonly path: string; readonly value: string };

/** `current` as another JSON type, keeping what it can of it (its text, or itself inside). */
export function retyped(current: unknown, to: Retype): unknown {
  const asText = typeof current === 'string' ? current : JSON.stringify(current ?? null);
  return {
    number: Number.parseFloat(asText) || 42,
    boolean: true,
    null: null,
    array: [current],
    object: { value: current },
    string: asText,
    empty: Array.isArray(current) ? [] : typeof current === 'object' ? {} : '',
  }[to];
}

const JSON_MUTATION_KINDS: ReadonlySet<string> = new Set<JsonMutation['kind']>([
  'drop',
  'replace',
  'retype',
  'huge',
  'unicode',
]);

/** Whether `m` is one of the mutations here (the rest of a caller's union is its own to apply). */
export function isJsonMutation(m: { readonly kind: string }): m is JsonMutation {
  return JSON_MUTATION_KINDS.has(m.kind);
}

export function applyJsonMutation(root: Json, m: JsonMutation): void {
  switch (m.kind) {
    case 'drop':
      dropAt(root, m.path);
      return;
    case 'replace':
      setAt(root, m.path, m.value);
      return;
    case 'retype':
      setAt(root, m.path, retyped(getAt(root, m.path), m.to));
      return;
    case 'huge':
      setAt(root, m.path, m.char.repeat(m.size));
      return;
    case 'unicode':
      setAt(root, m.path, m.value);
      return;
  }
}

/** Where and how a caller's document is mutated. */
export interface FieldMutationOptions<P extends string, T extends string> {
  /** Fields to drop, replace and retype. */
  readonly paths: readonly P[];
  /** Fields holding text, to make huge or unicode. */
  readonly textPaths: readonly T[];
  /** How deep a replacing JSON value goes. */
  readonly replaceDepth: number;
  /** How many characters a huge text has, and which one it repeats. */
  readonly hugeSize: fc.Arbitrary<number>;
  readonly hugeChars: readonly string[];
  /** Strings a unicode text may also be, besides any graphemes or code units and two IDN addresses. */
  readonly unicodeExtras: readonly string[];
}

/**
 * The arbitraries of the mutations here, one per kind, for the caller's own `fc.oneof` (whose
 * order is the caller's: it decides what a seed generates).
 */
export function fieldMutations<P extends string, T extends string>(o: FieldMutationOptions<P, T>) {
  return {
    drop: fc.record({ kind: fc.constant('drop' as const), path: fc.constantFrom(...o.paths) }),
    replace: fc.record({
      kind: fc.constant('replace' as const),
      path: fc.constantFrom(...o.paths),
      value: fc.jsonValue({ maxDepth: o.replaceDepth }),
    }),
    retype: fc.record({
      kind: fc.constant('retype' as const),
      path: fc.constantFrom(...o.paths),
      to: fc.constantFrom(...RETYPES),
    }),
    huge: fc.record({
      kind: fc.constant('huge' as const),
      path: fc.constantFrom(...o.textPaths),
      size: o.hugeSize,
      char: fc.constantFrom(...o.hugeChars),
    }),
    unicode: fc.record({
      kind: fc.constant('unicode' as const),
      path: fc.constantFrom(...o.textPaths),
      value: fc.oneof(
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.constantFrom('ＡＢＣ＠ｅｘａｍｐｌｅ．ｃｏｍ', 'ana@bücher.example', ...o.unicodeExtras),
      ),
    }),
  };
}
