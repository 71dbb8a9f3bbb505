import '../../support/quiet-powertools.ts';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../../lambdas/api/openapi/document.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { sendBody } from '../../support/builders.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent } from '../../support/http-events.ts';
import { InMemoryWebhookQueue, InMemoryWebhookStore } from '../../support/webhooks.ts';

// Attack on the OpenAPI document's truth (issue 15): a request body the document's schema takes
// must not be refused for a reason a schema could have said, and one it refuses must get a 4xx.
// Each case is sent to the api (createApi over fakes) and checked with ajv against the document.

const doc = openApiDocument();
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(doc, 'doc');

/** The document's verdict on a request body of `route`. */
function documentTakes(route: string, body: unknown): boolean {
  const [method = '', path = ''] = route.split(' ');
  const pointer = [
    'paths',
    path,
    method.toLowerCase(),
    'requestBody',
    'content',
    'application/json',
    'schema',
  ]
    .map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1'))
    .join('/');
  const validate = ajv.getSchema(`doc#/${pointer}`);
  if (validate === undefined) throw new Error(`no request schema for ${route}`);
  return validate(body) as boolean;
}

function setUp() {
  const store = new InMemoryWebhookStore();
  const queue = new InMemoryWebhookQueue();
  const harness = apiHarness(
    {},
    { deps: () => ({ webhookEndpoints: { store, queue, allowLoopbackHttp: false } }) },
  );
  const token = harness.addKey({ scopes: ['send', 'read', 'suppressions', 'webhooks'] });
  return {
    ...harness,
    call: (route: string, body: unknown, pathParameters?: Record<string, string>) =>
      harness.api(httpEvent(route, { token, body, ...(pathParameters ? { pathParameters } : {}) })),
  };
}

describe('the request schemas say what the api refuses', () => {
  it('lists the webhook event types a registration and a change take (an unknown type is refused)', async () => {
    // Prepare
    const { call } = setUp();
    const created = await call(Route.createWebhook, { url: 'https://hooks.example.com/a' });
    const id = (JSON.parse(created.body ?? '{}') as { id: string }).id;
    const bodies = [{ url: 'https://hooks.example.com/b', events: ['message.opened'] }];

    // Act
    const create = await call(Route.createWebhook, bodies[0]);
    const update = await call(Route.updateWebhook, { events: ['message.opened'] }, { id });

    // Assess
    expect([create.statusCode, update.statusCode]).toEqual([422, 422]);
    expect(documentTakes(Route.createWebhook, bodies[0])).toBe(false);
    expect(documentTakes(Route.updateWebhook, { events: ['message.opened'] })).toBe(false);
    expect(documentTakes(Route.createWebhook, { url: 'https://x.example', events: ['message.sent'] })).toBe(
      true,
    );
  });

  it('says a subject or attachment filename with a line break is refused', async () => {
    // Prepare
    const { call } = setUp();
    const subject = sendBody({ subject: 'Hi\r\nBcc: eve@example.net' });
    const filename = sendBody({
      attachments: [{ filename: 'a\nb.txt', content: 'aGk=', contentType: 'text/plain' }],
    });

    // Act
    const answers = [await call(Route.sendMessage, subject), await call(Route.sendMessage, filename)];

    // Assess
    expect(answers.map((a) => a.statusCode)).toEqual([422, 422]);
    expect([documentTakes(Route.sendMessage, subject), documentTakes(Route.sendMessage, filename)]).toEqual([
      false,
      false,
    ]);
    expect(documentTakes(Route.sendMessage, sendBody({ subject: 'Hi – ünïcode' }))).toBe(true);
  });
});
