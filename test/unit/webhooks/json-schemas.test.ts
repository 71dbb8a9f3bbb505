import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WEBHOOK_EVENT_TYPES } from '../../../lambdas/domain/webhooks/events.ts';
import { WEBHOOK_PAYLOAD_SCHEMAS } from '../../../lambdas/domain/webhooks/payload-schemas.ts';
import {
  docExamples,
  driftOf,
  EXAMPLES_DOC,
  SCHEMA_DIR,
  schemaFileName,
  schemaFiles,
} from '../../../scripts/webhook-schemas.ts';

// The JSON Schemas in docs/webhooks/ are what receivers build against, and docs/webhooks.md's
// examples are what they copy: both must say what the zod schemas (the code that builds payloads) say.

describe('docs/webhooks/*.schema.json', () => {
  it('holds one schema file per event type, each as npm run webhook-schemas generates it', () => {
    // Prepare
    const generated = schemaFiles();

    // Act
    const committed = readdirSync(SCHEMA_DIR).filter((name) => name.endsWith('.schema.json'));

    // Assess
    expect(committed.sort()).toEqual(WEBHOOK_EVENT_TYPES.map(schemaFileName).sort());
    for (const [name, content] of generated) {
      expect(
        readFileSync(join(SCHEMA_DIR, name), 'utf8'),
        `${name} is stale: run npm run webhook-schemas`,
      ).toBe(content);
    }
  });

  it('generates draft 2020-12 schemas of the whole body, refusing fields the contract lacks', () => {
    // Act
    const schema = JSON.parse(schemaFiles().get('message.bounced.schema.json') ?? '{}') as {
      $schema: string;
      required: string[];
      additionalProperties: boolean;
      properties: { type: { const: string }; data: { required: string[]; additionalProperties: boolean } };
    };

    // Assess
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.required).toEqual(['type', 'timestamp', 'data']);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.type.const).toBe('message.bounced');
    expect(schema.properties.data.required).toEqual(
      expect.arrayContaining(['messageId', 'recipient', 'tags', 'stream', 'sequence', 'kind']),
    );
    expect(schema.properties.data.additionalProperties).toBe(false);
  });
});

describe('driftOf', () => {
  it('names a stale, a missing and an extra schema file', () => {
    // Prepare
    const generated = new Map([
      ['a.schema.json', '{"a":1}\n'],
      ['b.schema.json', '{"b":1}\n'],
    ]);
    const committed = new Map([
      ['a.schema.json', '{"a":2}\n'],
      ['c.schema.json', '{}\n'],
    ]);

    // Act
    const drift = driftOf(generated, committed);

    // Assess
    expect(drift).toEqual([
      'a.schema.json differs from the generated schema',
      'b.schema.json is missing',
      'c.schema.json is no event type of WEBHOOK_EVENT_TYPES',
    ]);
  });

  it('finds nothing when the files are the generated ones', () => {
    // Prepare
    const generated = schemaFiles();

    // Act
    const drift = driftOf(generated, new Map(generated));

    // Assess
    expect(drift).toEqual([]);
  });
});

describe("docs/webhooks.md's example payloads", () => {
  const examples = docExamples(readFileSync(EXAMPLES_DOC, 'utf8'));

  it('show one example body for every event type', () => {
    // Assess
    expect([...examples.keys()].sort()).toEqual([...WEBHOOK_EVENT_TYPES].sort());
  });

  it.each(WEBHOOK_EVENT_TYPES)('shows a %s body that its zod schema accepts', (type) => {
    // Prepare
    const example = examples.get(type);

    // Act
    const parsed = WEBHOOK_PAYLOAD_SCHEMAS[type].safeParse(example);

    // Assess
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data?.type).toBe(type);
  });

  it('reads an example from its collapsible block, and refuses one that is not JSON', () => {
    // Prepare
    const good =
      '<details><summary><code>message.sent</code></summary>\n\n```json\n{"type": "message.sent"}\n```\n\n</details>';
    const bad =
      '<details><summary><code>message.sent</code></summary>\n\n```json\n{"type": \n```\n</details>';

    // Act
    const read = docExamples(good);

    // Assess
    expect(read.get('message.sent')).toEqual({ type: 'message.sent' });
    expect(() => docExamples(bad)).toThrow(/docs\/webhooks.md's example of message.sent is not JSON/);
  });
});
