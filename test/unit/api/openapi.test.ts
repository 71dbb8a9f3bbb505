import '../../support/quiet-powertools.ts';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../../lambdas/api/openapi/document.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { committedFile, driftOf, openApiFiles } from '../../../scripts/openapi.ts';
import { sendBody } from '../../support/builders.ts';
import { apiHarness } from '../../support/harness.ts';
import { contentTypeOf, httpEvent, jsonOf } from '../../support/http-events.ts';

// The OpenAPI document (issue 15): generated from the validating schemas, committed as
// docs/openapi.json and docs/api.md, served at GET /openapi.json without a key.

type Operation = {
  security: unknown[];
  'x-baton-scopes': string[];
  parameters?: Array<{ name: string; in: string }>;
  responses: Record<string, Answer>;
};
type Answer = { $ref?: string; headers?: Record<string, unknown>; content?: Record<string, unknown> };
type Doc = {
  paths: Record<string, Record<string, Operation>>;
  webhooks: Record<string, unknown>;
  components: {
    schemas: Record<string, { properties?: Record<string, { enum?: string[] }> }>;
    responses: Record<string, Answer>;
  };
};

const doc = openApiDocument() as Doc;
const operationOf = (route: string): Operation => {
  const [method = '', path = ''] = route.split(' ');
  const op = doc.paths[path]?.[method.toLowerCase()];
  if (op === undefined) throw new Error(`no operation for ${route}`);
  return op;
};

/** An operation's answer for a status, shared ones (`$ref`) read from the components. */
const answerOf = (op: Operation, status: string): Answer | undefined => {
  const answer = op.responses[status];
  return answer?.$ref === undefined ? answer : doc.components.responses[answer.$ref.split('/').at(-1) ?? ''];
};

describe('GET /openapi.json', () => {
  it('answers the committed document as JSON without a key', async () => {
    // Prepare
    const { api } = apiHarness();

    // Act
    const result = await api(httpEvent(Route.openapi));

    // Assess
    expect([result.statusCode, contentTypeOf(result)]).toEqual([200, 'application/json']);
    expect(result.headers?.['cache-control']).toBe('public, max-age=300');
    expect(jsonOf(result)).toEqual(openApiDocument());
  });
});

describe('the committed docs/openapi.json and docs/api.md', () => {
  it('are what npm run openapi generates (run it and commit when this fails)', () => {
    // Act
    const drift = driftOf(openApiFiles(), (name) => committedFile(name));

    // Assess
    expect(drift).toEqual([]);
  });

  it('names a stale and a missing file', () => {
    // Prepare
    const generated = new Map([
      ['openapi.json', '{}\n'],
      ['api.md', '# API\n'],
    ]);

    // Act
    const drift = driftOf(generated, (name) => (name === 'openapi.json' ? '{"old":true}\n' : undefined));

    // Assess
    expect(drift).toEqual(['docs/openapi.json differs from the generated file', 'docs/api.md is missing']);
  });
});

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document by an independent validator', async () => {
    // Prepare
    const validator = new Validator();

    // Act
    const result = await validator.validate(structuredClone(openApiDocument()));

    // Assess
    expect(result.errors ?? []).toEqual([]);
    expect([result.valid, validator.version]).toEqual([true, '3.1']);
  });

  it('has an operation for every route but $default, and only those', () => {
    // Prepare
    const routes = Object.values(Route).filter((r) => r !== Route.fallback);

    // Act
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );

    // Assess
    expect(documented.sort()).toEqual([...routes].sort());
  });

  it('needs no key for health and the document, and names the scopes of every other operation', () => {
    // Act
    const health = operationOf(Route.health);
    const suppressions = operationOf(Route.getSuppression);
    const release = operationOf(Route.guardRelease);

    // Assess
    expect([health.security, operationOf(Route.openapi).security]).toEqual([[], []]);
    expect(suppressions['x-baton-scopes']).toEqual(['read', 'suppressions']);
    expect(suppressions.security).toEqual([{ bearerAuth: ['read'] }, { bearerAuth: ['suppressions'] }]);
    expect(release['x-baton-scopes']).toEqual(['admin']);
    expect(Object.keys(suppressions.responses)).toEqual(
      expect.arrayContaining(['200', '401', '403', '404', '422', '429', '500', '503']),
    );
  });

  it('takes an Idempotency-Key on the two send routes and documents Retry-After on 429s', () => {
    // Act
    const send = operationOf(Route.sendMessage);
    const batch = operationOf(Route.sendBatch);

    // Assess
    for (const op of [send, batch]) {
      expect(op.parameters?.map((p) => `${p.in} ${p.name}`)).toContain('header Idempotency-Key');
      expect(answerOf(op, '429')?.headers).toHaveProperty('Retry-After');
      expect(Object.keys(op.responses)).toEqual(
        expect.arrayContaining(['400', '401', '403', '409', '413', '415', '422', '429', '500', '503']),
      );
    }
    expect(Object.keys(batch.responses)).toContain('207');
  });

  it('accepts the JSON form or the raw form of a message, alone or in a batch', () => {
    // Act
    const batch = doc.components.schemas.SendBatch as unknown as {
      properties: { messages: { items: unknown; maxItems: number } };
    };

    // Assess
    expect(operationOf(Route.sendMessage)).toMatchObject({
      requestBody: {
        content: {
          'application/json': {
            schema: {
              oneOf: [
                { $ref: '#/components/schemas/SendMessage' },
                { $ref: '#/components/schemas/RawSendMessage' },
              ],
            },
          },
        },
      },
    });
    expect(batch.properties.messages).toMatchObject({
      maxItems: 100,
      items: {
        oneOf: [
          { $ref: '#/components/schemas/SendMessage' },
          { $ref: '#/components/schemas/RawSendMessage' },
        ],
      },
    });
  });

  it('answers 501 where erasure or webhooks may be unconfigured', () => {
    // Assess
    expect(Object.keys(operationOf(Route.eraseRecipient).responses)).toContain('501');
    expect(Object.keys(operationOf(Route.createWebhook).responses)).toContain('501');
  });

  it('lists every problem code and every webhook event type', () => {
    // Act
    const codes = doc.components.schemas.Problem?.properties?.code?.enum;

    // Assess
    expect(codes).toEqual(expect.arrayContaining(['invalid_message', 'rate_limited', 'webhook_url_refused']));
    expect(Object.keys(doc.webhooks)).toEqual(
      expect.arrayContaining(['message.bounced', 'suppression.created']),
    );
  });

  it('describes the bodies the api takes: both send forms, alone and in a batch, and refuses a message without a subject', () => {
    // Prepare
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema(openApiDocument(), 'doc');
    const valid = (component: string, body: unknown) =>
      ajv.getSchema(`doc#/components/schemas/${component}`)?.(body);
    const attachment = { filename: 'r.pdf', contentType: 'Application/PDF', content: 'aGk=' };
    const raw = { raw: 'aGk=', envelope: { to: ['ana@example.org'] } };

    // Act
    const verdicts = [
      valid('SendMessage', sendBody({ attachments: [attachment] })),
      valid('RawSendMessage', raw),
      valid('SendBatch', { messages: [sendBody(), raw] }),
      valid('SendMessage', { from: 'shop@example.com', to: 'ana@example.org', text: 'hi' }),
      valid('SendBatch', { messages: [] }),
    ];

    // Assess
    expect(verdicts).toEqual([true, true, true, false, false]);
  });
});
