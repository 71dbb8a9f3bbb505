/**
 * `npm run webhook-schemas`: writes docs/webhooks/<type>.schema.json, one JSON Schema per webhook
 * event type, from the zod schemas that build the payloads (lambdas/domain/webhooks/events.ts), so
 * what receivers build against cannot drift from what Baton sends. Run with
 * `node scripts/webhook-schemas.ts`.
 *
 * `--check` writes nothing: it exits 1, naming each file, when a committed schema differs from the
 * generated one (or is missing, or names no event type), or when docs/webhooks.md
 * lacks a valid example body for a type. The unit tests run the same checks.
 *
 * The files are generated, so biome leaves them as JSON.stringify wrote them (biome.json).
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../lambdas/domain/webhooks/events.ts';
import { WEBHOOK_PAYLOAD_SCHEMAS, webhookJsonSchemas } from '../lambdas/domain/webhooks/payload-schemas.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SCHEMA_DIR = join(ROOT, 'docs', 'webhooks');
export const EXAMPLES_DOC = join(ROOT, 'docs', 'webhooks.md');

export const EXIT_OK = 0;
export const EXIT_DRIFT = 1;
export const EXIT_USAGE = 2;

export const schemaFileName = (type: WebhookEventType): string => `${type}.schema.json`;

/** The files to commit, by name: the schema as JSON.stringify writes it, two-space indented. */
export function schemaFiles(): Map<string, string> {
  const schemas = webhookJsonSchemas();
  return new Map(
    WEBHOOK_EVENT_TYPES.map((type) => [schemaFileName(type), `${JSON.stringify(schemas[type], null, 2)}\n`]),
  );
}

/** What the committed files get wrong, one line each, in file-name order; empty when nothing. */
export function driftOf(
  generated: ReadonlyMap<string, string>,
  committed: ReadonlyMap<string, string>,
): string[] {
  const names = [...new Set([...generated.keys(), ...committed.keys()])].sort();
  return names.flatMap((name) => {
    const want = generated.get(name);
    const have = committed.get(name);
    if (want === undefined) return [`${name} is no event type of WEBHOOK_EVENT_TYPES`];
    if (have === undefined) return [`${name} is missing`];
    return have === want ? [] : [`${name} differs from the generated schema`];
  });
}

/** The schema files now in docs/webhooks/, by name. */
export function committedFiles(dir = SCHEMA_DIR): Map<string, string> {
  const names = readdirSync(dir).filter((name) => name.endsWith('.schema.json'));
  return new Map(names.map((name) => [name, readFileSync(join(dir, name), 'utf8')]));
}

/** An example in docs/webhooks.md that is no JSON. */
export class ExampleNotJsonError extends Error {
  override readonly name = 'ExampleNotJsonError';
}

// docs/webhooks.md shows each example as `<summary><code>type</code></summary>` then a ```json block.
const EXAMPLE = /<summary><code>([a-z._]+)<\/code><\/summary>\s*```json\n([\s\S]*?)\n```/g;

/** The example bodies docs/webhooks.md shows, by the type its summary names. */
export function docExamples(markdown: string): Map<string, unknown> {
  const examples = new Map<string, unknown>();
  for (const [, type = '', json = ''] of markdown.matchAll(EXAMPLE)) {
    try {
      examples.set(type, JSON.parse(json));
    } catch (cause) {
      throw new ExampleNotJsonError(`docs/webhooks.md's example of ${type} is not JSON`, { cause });
    }
  }
  return examples;
}

/** What docs/webhooks.md's examples get wrong: a type without one, or one its zod schema refuses. */
export function exampleProblems(examples: ReadonlyMap<string, unknown>): string[] {
  return WEBHOOK_EVENT_TYPES.flatMap((type) => {
    if (!examples.has(type)) return [`docs/webhooks.md shows no example of ${type}`];
    const parsed = WEBHOOK_PAYLOAD_SCHEMAS[type].safeParse(examples.get(type));
    return parsed.success
      ? []
      : parsed.error.issues.map(
          (issue) =>
            `docs/webhooks.md's example of ${type}: ${issue.path.join('.') || 'body'}: ${issue.message}`,
        );
  });
}

function main(argv: readonly string[]): number {
  const check = argv.includes('--check');
  const unknown = argv.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`webhook-schemas: unknown argument ${unknown.join(' ')}; usage: [--check]\n`);
    return EXIT_USAGE;
  }
  const generated = schemaFiles();
  if (!check) {
    for (const [name] of committedFiles()) if (!generated.has(name)) rmSync(join(SCHEMA_DIR, name));
    for (const [name, content] of generated) writeFileSync(join(SCHEMA_DIR, name), content);
    process.stdout.write(`webhook-schemas: wrote ${generated.size} schemas to docs/webhooks/\n`);
    return EXIT_OK;
  }
  const drift = driftOf(generated, committedFiles()).map((p) => `docs/webhooks/${p}`);
  let examples: string[];
  try {
    examples = exampleProblems(docExamples(readFileSync(EXAMPLES_DOC, 'utf8')));
  } catch (error) {
    if (!(error instanceof ExampleNotJsonError)) throw error;
    examples = [error.message];
  }
  for (const problem of [...drift, ...examples]) process.stderr.write(`webhook-schemas: ${problem}\n`);
  if (drift.length > 0) {
    process.stderr.write('webhook-schemas: run `npm run webhook-schemas` and commit docs/webhooks/\n');
  }
  if (drift.length + examples.length > 0) return EXIT_DRIFT;
  process.stdout.write(
    `webhook-schemas: ${generated.size} schemas and docs/webhooks.md's examples are current\n`,
  );
  return EXIT_OK;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
