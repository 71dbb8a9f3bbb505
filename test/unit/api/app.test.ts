import '../../support/quiet-powertools.ts';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { MAX_REQUEST_BYTES } from '../../../lambdas/api/app.ts';
import { sourceAllowed } from '../../../lambdas/domain/keys/api-key.ts';
import { REASON_WORDS } from '../../../lambdas/domain/suppression/suppression.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { messageRecord, recipient, sendBody, suppression, T0 } from '../../support/builders.ts';
import { apiHarness } from '../../support/harness.ts';
import { contentTypeOf, httpEvent, jsonOf } from '../../support/http-events.ts';
import { problemIn } from '../../support/unit-problems.ts';

const setUp = apiHarness;

describe('createApi', () => {
  describe('routing', () => {
    it('answers the health check without a key', async () => {
      // Prepare
      const { api } = setUp();

      // Act
      const result = await api(httpEvent(Route.health));

      // Assess
      expect(result).toEqual({
        statusCode: 200,
        headers: { 'content-type': 'application/json' },
        body: '{"status":"ok"}',
      });
    });

    it('answers an unknown route with a 404 problem instead of API Gateway’s own body', async () => {
      // Prepare
      const { api } = setUp();

      // Act
      const result = await api(httpEvent(Route.fallback, { method: 'PATCH', path: '/v2/things' }));

      // Assess
      expect(problemIn(result, 404)).toEqual({
        type: 'urn:baton:problem:not_found',
        title: 'Not found',
        status: 404,
        detail: 'No route for PATCH /v2/things.',
        code: 'not_found',
      });
    });

    it.each([
      [
        'erasure',
        Route.eraseRecipient,
        { address: 'ana@example.org' },
        // Erasure is built (test/unit/api/erasure.test.ts); this rig gives the api no erasure deps.
        'Recipient erasure is not configured in this deployment.',
      ],
    ])(
      'says %s is not implemented yet, after checking the key',
      async (_what, route, pathParameters, detail) => {
        // Prepare
        const { api, token } = setUp();

        // Act
        const withKey = await api(httpEvent(route, { token, pathParameters }));
        const withoutKey = await api(httpEvent(route, { pathParameters }));

        // Assess
        expect(problemIn(withKey, 501).detail).toBe(detail);
        expect(problemIn(withoutKey, 401).code).toBe('unauthorized');
      },
    );
  });

  describe('authentication', () => {
    it('answers 401 when no key is sent', async () => {
      // Prepare
      const { api } = setUp();

      // Act
      const result = await api(httpEvent(Route.sendMessage, { body: sendBody() }));

      // Assess
      expect(problemIn(result, 401)).toEqual({
        type: 'urn:baton:problem:unauthorized',
        title: 'Missing or invalid API key',
        status: 401,
        detail: 'Send your API key in the Authorization header: "Bearer <key>".',
        code: 'unauthorized',
      });
    });

    it.each([
      ['an unknown key', (token: string) => `bt_unknownkey99_${token.split('_').slice(2).join('_')}`],
      ['a wrong secret for a known key id', (token: string) => `${token.slice(0, -4)}AAAA`],
      ['a token in another scheme', (token: string) => `Basic ${token}`],
    ])('answers 401 for %s', async (_what, mangle) => {
      // Prepare
      const { api, token } = setUp();
      const header = mangle(token);
      const authorization = header.startsWith('Basic') ? header : `Bearer ${header}`;

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, { headers: { authorization }, body: sendBody() }),
      );

      // Assess
      expect(problemIn(result, 401).code).toBe('unauthorized');
    });

    it('answers 401 for a revoked key, exactly as for an unknown one', async () => {
      // Prepare
      const { api, token } = setUp({ status: 'revoked' });

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

      // Assess
      expect(problemIn(result, 401).detail).toBe('The API key is not valid.');
    });

    it('answers 403 for a suspended key', async () => {
      // Prepare
      const { api, token, queue } = setUp({ status: 'suspended' });

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

      // Assess
      expect(problemIn(result, 403)).toEqual({
        type: 'urn:baton:problem:forbidden',
        title: 'Not allowed for this API key',
        status: 403,
        detail: 'This API key is suspended.',
        code: 'forbidden',
      });
      expect(queue.jobs).toEqual([]);
    });

    it('answers 403 when the key lacks the scope of the route', async () => {
      // Prepare
      const { api, token } = setUp({ scopes: ['read'] });

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

      // Assess
      expect(problemIn(result, 403).detail).toBe('This API key lacks the "send" scope for this request.');
    });

    it('names every scope that would do', async () => {
      // Prepare
      const { api, token } = setUp({ scopes: ['send'] });

      // Act
      const result = await api(
        httpEvent(Route.getSuppression, { token, pathParameters: { address: 'ana@example.org' } }),
      );

      // Assess
      expect(problemIn(result, 403).detail).toBe(
        'This API key lacks the "read" or "suppressions" scope for this request.',
      );
    });

    it('answers 403 to a source address outside the key’s CIDRs', async () => {
      // Prepare
      const { api, token } = setUp({ allowedCidrs: ['203.0.113.0/24', '2001:db8::/32'] });

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, { token, body: sendBody(), sourceIp: '198.51.100.7' }),
      );

      // Assess
      expect(problemIn(result, 403).detail).toBe('This API key may not be used from this source address.');
    });

    it.each(['203.0.113.77', '2001:db8:1::5'])('accepts %s from inside the key’s CIDRs', async (sourceIp) => {
      // Prepare
      const { api, token } = setUp({ allowedCidrs: ['203.0.113.0/24', '2001:db8::/32'] });

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody(), sourceIp }));

      // Assess
      expect(result.statusCode).toBe(202);
    });

    it('judges the source by the request context, never by a forwarded-for header', async () => {
      // Prepare
      const { api, token } = setUp({ allowedCidrs: ['203.0.113.0/24'] });

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, {
          token,
          body: sendBody(),
          sourceIp: '198.51.100.7',
          headers: { 'x-forwarded-for': '203.0.113.1' },
        }),
      );

      // Assess
      expect(problemIn(result, 403).code).toBe('forbidden');
    });
  });

  describe('POST /v1/messages', () => {
    it('accepts a message with 202 and the body of DESIGN §2', async () => {
      // Prepare
      const { api, token, queue, messages } = setUp();

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

      // Assess
      expect(result.statusCode).toBe(202);
      expect(contentTypeOf(result)).toBe('application/json');
      expect(jsonOf(result)).toEqual({
        id: 'msg_1',
        status: 'queued',
        recipients: [{ address: 'ana@example.org', status: 'queued' }],
        rewrittenFrom: null,
      });
      expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1']);
      expect(messages.peek('msg_1')?.tenant).toBe('tenant-a');
    });

    it('answers a suppressed recipient as suppressed with its reason', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();
      suppressions.seed(suppression('ana@example.org', 'complaint'));

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

      // Assess
      expect(result.statusCode).toBe(202);
      expect(jsonOf(result)).toEqual({
        id: 'msg_1',
        status: 'suppressed',
        recipients: [{ address: 'ana@example.org', status: 'suppressed', reason: 'complaint' }],
        rewrittenFrom: null,
      });
    });

    it('accepts a charset parameter and a +json media type', async () => {
      // Prepare
      const { api, token } = setUp();

      // Act
      const results = await Promise.all(
        ['application/json; charset=utf-8', 'application/vnd.baton+json', 'APPLICATION/JSON'].map((type) =>
          api(
            httpEvent(Route.sendMessage, {
              token,
              body: JSON.stringify(sendBody()),
              headers: { 'content-type': type },
            }),
          ),
        ),
      );

      // Assess
      expect(results.map((r) => r.statusCode)).toEqual([202, 202, 202]);
    });

    it('reads a base64-encoded body', async () => {
      // Prepare
      const { api, token } = setUp();
      const body = Buffer.from(JSON.stringify(sendBody())).toString('base64');

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, {
          token,
          body,
          isBase64Encoded: true,
          headers: { 'content-type': 'application/json' },
        }),
      );

      // Assess
      expect(result.statusCode).toBe(202);
    });

    it('answers 415 to a body that is not JSON', async () => {
      // Prepare
      const { api, token, queue } = setUp();

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, {
          token,
          body: 'from=a',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        }),
      );

      // Assess
      expect(problemIn(result, 415)).toEqual({
        type: 'urn:baton:problem:unsupported_media_type',
        title: 'Unsupported media type',
        status: 415,
        detail: 'Send JSON with Content-Type: application/json (got "application/x-www-form-urlencoded").',
        code: 'unsupported_media_type',
      });
      expect(queue.jobs).toEqual([]);
    });

    it('answers 400 to malformed JSON', async () => {
      // Prepare
      const { api, token } = setUp();
      const body = '{"from": "a@example.com",';
      let parserSays = '';
      try {
        JSON.parse(body);
      } catch (error) {
        parserSays = (error as Error).message;
      }

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, { token, body, headers: { 'content-type': 'application/json' } }),
      );

      // Assess
      expect(problemIn(result, 400)).toEqual({
        type: 'urn:baton:problem:malformed_json',
        title: 'Malformed JSON',
        status: 400,
        detail: `The request body is not valid JSON: ${parserSays}`,
        code: 'malformed_json',
      });
    });

    it('answers 400 to an empty body', async () => {
      // Prepare
      const { api, token } = setUp();

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: '  ' }));

      // Assess
      expect(problemIn(result, 400).detail).toBe('The request body is empty; send a JSON object.');
    });

    it('answers 413 to a request above 6 MB', async () => {
      // Prepare
      const { api, token } = setUp();
      const body = JSON.stringify(sendBody({ text: 'x'.repeat(MAX_REQUEST_BYTES) }));

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, { token, body, headers: { 'content-type': 'application/json' } }),
      );

      // Assess
      expect(problemIn(result, 413).detail).toBe('The request is larger than 6 MB.');
    });

    it('answers 422 with a path for every failing field', async () => {
      // Prepare
      const { api, token } = setUp();

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, { token, body: sendBody({ to: ['bad'], subject: 'a\nb' }) }),
      );

      // Assess
      expect(problemIn(result, 422)).toEqual({
        type: 'urn:baton:problem:invalid_message',
        title: 'Invalid message',
        status: 422,
        detail: 'The message is not valid; see errors for each failing field.',
        code: 'invalid_message',
        errors: [
          { path: 'to[0]', message: 'invalid address: must contain "@"' },
          { path: 'subject', message: 'subject must not contain CR, LF or NUL' },
        ],
      });
    });

    it('answers 403 to a From outside the key’s domains', async () => {
      // Prepare
      const { api, token } = setUp();

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, { token, body: sendBody({ from: 'ana@elsewhere.example' }) }),
      );

      // Assess
      expect(problemIn(result, 403).detail).toBe(
        'This API key may not send from the domain elsewhere.example; allowed: example.com.',
      );
    });

    it('answers the From it used when the key rewrites senders', async () => {
      // Prepare
      const { api, token } = setUp({ senderPolicy: 'rewrite', defaultFrom: 'relay@example.com' });

      // Act
      const result = await api(
        httpEvent(Route.sendMessage, { token, body: sendBody({ from: 'Ana <ana@legacy.example>' }) }),
      );

      // Assess
      expect(jsonOf(result)).toMatchObject({
        rewrittenFrom: 'Ana via Baton <relay@example.com>',
      });
    });

    it('answers 503 with Retry-After when a dependency is busy', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();
      vi.spyOn(suppressions, 'getMany').mockRejectedValue(
        new TransientError('reading the suppression list failed: ProvisionedThroughputExceededException'),
      );

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

      // Assess
      expect(problemIn(result, 503).detail).toBe(
        'Baton is busy or a dependency is unavailable; retry shortly.',
      );
      expect(result.headers).toEqual({ 'content-type': 'application/problem+json', 'retry-after': '1' });
    });

    it('answers 503 and records the message failed when the queue refuses the job', async () => {
      // Prepare
      const { api, token, queue, messages } = setUp();
      vi.spyOn(queue, 'enqueue').mockRejectedValue(new TransientError('sending the job failed'));

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

      // Assess
      expect(problemIn(result, 503).detail).toBe(
        'Baton could not queue the message; it was not sent. Retry the request. (TransientError)',
      );
      expect(messages.peek('msg_1')?.phase).toBe('failed');
    });

    it('answers 500 without details when something unexpected breaks', async () => {
      // Prepare
      const { api, token, messages } = setUp();
      vi.spyOn(messages, 'create').mockRejectedValue(
        new TypeError("Cannot read properties of undefined (reading 'S')"),
      );

      // Act
      const result = await api(httpEvent(Route.sendMessage, { token, body: sendBody() }));

      // Assess
      expect(problemIn(result, 500)).toEqual({
        type: 'urn:baton:problem:internal',
        title: 'Internal error',
        status: 500,
        detail: 'Baton failed to handle the request; it has been logged.',
        code: 'internal',
      });
    });
  });

  describe('POST /v1/messages/batch', () => {
    it('answers 207 with one result per message in request order, a bad one failing alone', async () => {
      // Prepare
      const { api, token, queue } = setUp();
      const body = {
        messages: [sendBody(), sendBody({ to: ['bad'] }), sendBody({ to: ['bob@example.org'] })],
      };

      // Act
      const result = await api(httpEvent(Route.sendBatch, { token, body }));

      // Assess
      expect(result.statusCode).toBe(207);
      expect(jsonOf(result)).toEqual({
        results: [
          {
            index: 0,
            id: 'msg_1',
            status: 'queued',
            recipients: [{ address: 'ana@example.org', status: 'queued' }],
            rewrittenFrom: null,
          },
          {
            index: 1,
            error: {
              type: 'urn:baton:problem:invalid_message',
              title: 'Invalid message',
              status: 422,
              detail: 'The message is not valid; see errors for each failing field.',
              code: 'invalid_message',
              errors: [{ path: 'to[0]', message: 'invalid address: must contain "@"' }],
            },
          },
          {
            index: 2,
            id: 'msg_2',
            status: 'queued',
            recipients: [{ address: 'bob@example.org', status: 'queued' }],
            rewrittenFrom: null,
          },
        ],
      });
      expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_2']);
    });

    it.each([
      ['a body without messages', { message: [] }, { path: 'messages', message: 'must be an array' }],
      ['an empty batch', { messages: [] }, { path: 'messages', message: 'must hold 1-100 messages' }],
      [
        'a batch of 101',
        { messages: Array.from({ length: 101 }, () => ({})) },
        { path: 'messages', message: 'must hold 1-100 messages' },
      ],
      ['an unknown field', { messages: [{}], dryRun: true }, { path: 'dryRun', message: 'unknown field' }],
      ['an array body', [1], { path: 'messages', message: 'must be an array' }],
    ])('answers 422 to %s', async (_what, body, error) => {
      // Prepare
      const { api, token } = setUp();

      // Act
      const result = await api(httpEvent(Route.sendBatch, { token, body }));

      // Assess
      expect(problemIn(result, 422).errors).toEqual([error]);
    });
  });

  describe('GET /v1/messages/{id}', () => {
    it('shows the key’s own message', async () => {
      // Prepare
      const { api, token, messages } = setUp();
      messages.seed(
        messageRecord({
          phase: 'sent',
          recipients: [recipient('ana@example.org', 'delivered')],
          claimToken: 'x',
        }),
      );

      // Act
      const result = await api(httpEvent(Route.getMessage, { token, pathParameters: { id: 'msg_1' } }));

      // Assess
      expect(result.statusCode).toBe(200);
      expect(jsonOf(result)).toEqual({
        id: 'msg_1',
        status: 'delivered',
        stream: 'transactional',
        createdAt: T0,
        from: 'Shop <orders@example.com>',
        subject: 'Your receipt',
        recipients: [{ address: 'ana@example.org', status: 'delivered', reason: null, updatedAt: T0 }],
        events: [{ type: 'accepted', at: T0 }],
      });
    });

    it('answers 404 for another tenant’s message, exactly as for an unknown id', async () => {
      // Prepare
      const { api, token, messages } = setUp();
      messages.seed(messageRecord({ id: 'msg_other', tenant: 'tenant-b' }));

      // Act
      const other = await api(httpEvent(Route.getMessage, { token, pathParameters: { id: 'msg_other' } }));
      const unknown = await api(httpEvent(Route.getMessage, { token, pathParameters: { id: 'msg_nope' } }));

      // Assess
      expect(problemIn(other, 404).detail).toBe('No message with id msg_other.');
      expect(problemIn(unknown, 404).detail).toBe('No message with id msg_nope.');
    });

    it('accepts a key with the read scope only', async () => {
      // Prepare
      const { api, token, messages } = setUp({ scopes: ['read'] });
      messages.seed(messageRecord());

      // Act
      const result = await api(httpEvent(Route.getMessage, { token, pathParameters: { id: 'msg_1' } }));

      // Assess
      expect(result.statusCode).toBe(200);
    });
  });

  describe('suppressions', () => {
    it('shows a suppression by its normalised address, the path percent-encoded', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();
      suppressions.seed(
        suppression('ana@xn--bcher-kva.example', 'hard_bounce', { detail: 'permanent bounce (General)' }),
      );

      // Act
      const result = await api(
        httpEvent(Route.getSuppression, { token, pathParameters: { address: 'Ana%40B%C3%BCcher.example' } }),
      );

      // Assess
      expect(result.statusCode).toBe(200);
      expect(jsonOf(result)).toEqual({
        address: 'ana@xn--bcher-kva.example',
        reason: 'hard_bounce',
        detail: 'permanent bounce (General)',
        source: 'api',
        createdAt: T0,
        expiresAt: null,
        scope: 'global',
      });
    });

    it('answers 404 for an address not on the list, or whose suppression has expired', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();
      suppressions.seed(
        suppression('old@example.org', 'soft_bounce', { expiresAt: '2025-03-01T11:00:00.000Z' }),
      );

      // Act
      const missing = await api(
        httpEvent(Route.getSuppression, { token, pathParameters: { address: 'ana@example.org' } }),
      );
      const expired = await api(
        httpEvent(Route.getSuppression, { token, pathParameters: { address: 'old@example.org' } }),
      );

      // Assess
      expect(problemIn(missing, 404).detail).toBe('This address is not on the suppression list.');
      expect(problemIn(expired, 404).detail).toBe('This address is not on the suppression list.');
    });

    it('answers 422 to a path that is not an address', async () => {
      // Prepare
      const { api, token } = setUp();

      // Act
      const result = await api(
        httpEvent(Route.getSuppression, { token, pathParameters: { address: 'nobody' } }),
      );

      // Assess
      expect(problemIn(result, 422).errors).toEqual([
        { path: 'address', message: 'must be an email address like name@example.com' },
      ]);
    });

    it('puts a manual suppression of the key’s tenant', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();

      // Act
      const result = await api(
        httpEvent(Route.putSuppression, {
          token,
          pathParameters: { address: 'Ana@Example.org' },
          body: { reason: 'manual', detail: 'asked by phone' },
        }),
      );

      // Assess
      expect(result.statusCode).toBe(200);
      const expected = {
        address: 'ana@example.org',
        reason: 'manual',
        detail: 'asked by phone',
        source: 'api',
        createdAt: T0,
        expiresAt: null,
      };
      expect(jsonOf(result)).toEqual({ ...expected, scope: 'tenant' });
      expect(suppressions.peek('ana@example.org')).toBeUndefined();
      expect(suppressions.peek('ana@example.org', 'tenant-a')).toEqual({
        ...expected,
        severity: 2,
        tenant: 'tenant-a',
      });
    });

    it('never weakens a stronger suppression with a manual one', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();
      const complaint = suppression('ana@example.org', 'complaint', { source: 'msg_1' });
      suppressions.seed(complaint);

      // Act
      const result = await api(
        httpEvent(Route.putSuppression, { token, pathParameters: { address: 'ana@example.org' }, body: {} }),
      );

      // Assess
      expect(jsonOf(result)).toMatchObject({ reason: 'complaint', source: 'msg_1' });
      expect(suppressions.peek('ana@example.org')).toEqual(complaint);
    });

    it('answers 422 with every bad field of a suppression', async () => {
      // Prepare
      const { api, token } = setUp();

      // Act
      const result = await api(
        httpEvent(Route.putSuppression, {
          token,
          pathParameters: { address: 'ana@example.org' },
          body: { reason: 'complaint', detail: 7, until: 'never' },
        }),
      );

      // Assess
      expect(problemIn(result, 422)).toMatchObject({
        code: 'invalid_request',
        detail: 'The suppression is not valid.',
        errors: [
          { path: 'reason', message: 'must be "manual" or "unsubscribe"' },
          { path: 'detail', message: 'must be a string of at most 1000 characters' },
          { path: 'until', message: 'unknown field' },
        ],
      });
    });

    it('refuses a suppression body that is not an object instead of taking it as manual', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();

      // Act
      const result = await api(
        httpEvent(Route.putSuppression, {
          token,
          pathParameters: { address: 'ana@example.org' },
          body: ['manual'],
        }),
      );

      // Assess
      expect(problemIn(result, 422)).toMatchObject({ code: 'invalid_request' });
      expect(await suppressions.get('ana@example.org')).toBeUndefined();
    });

    it('deletes the tenant’s own suppression with 204 and an empty body, and no other tenant’s', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();
      suppressions.seed(
        suppression('ana@example.org', 'manual', { tenant: 'tenant-a' }),
        suppression('ana@example.org', 'unsubscribe', { tenant: 'tenant-b' }),
      );

      // Act
      const result = await api(
        httpEvent(Route.deleteSuppression, { token, pathParameters: { address: 'ANA@example.org' } }),
      );

      // Assess
      expect(result).toEqual({ statusCode: 204, headers: {}, body: '' });
      expect(suppressions.peek('ana@example.org', 'tenant-a')).toBeUndefined();
      expect(suppressions.peek('ana@example.org', 'tenant-b')?.reason).toBe('unsubscribe');
    });

    it.each(['hard_bounce', 'complaint'] as const)(
      'refuses a tenant that tries to lift a global %s with 403 in words, and keeps it',
      async (reason) => {
        // Prepare
        const { api, token, suppressions } = setUp();
        suppressions.seed(suppression('ana@example.org', reason));

        // Act
        const result = await api(
          httpEvent(Route.deleteSuppression, { token, pathParameters: { address: 'ana@example.org' } }),
        );

        // Assess
        expect(problemIn(result, 403).detail).toBe(
          `This address is suppressed for every tenant (${reason}: ${REASON_WORDS[reason]}), so only an operator can lift it: a key with the "admin" scope.`,
        );
        expect(suppressions.peek('ana@example.org')?.reason).toBe(reason);
      },
    );

    it('lets a key with the admin scope lift a global bounce', async () => {
      // Prepare
      const { api, token, suppressions } = setUp({ scopes: ['admin'] });
      suppressions.seed(suppression('ana@example.org', 'hard_bounce'));

      // Act
      const result = await api(
        httpEvent(Route.deleteSuppression, { token, pathParameters: { address: 'ana@example.org' } }),
      );

      // Assess
      expect(result.statusCode).toBe(204);
      expect(suppressions.peek('ana@example.org')).toBeUndefined();
    });

    it('never shows, lists or applies another tenant’s entry', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();
      suppressions.seed(suppression('ana@example.org', 'manual', { tenant: 'tenant-b' }));

      // Act
      const read = await api(
        httpEvent(Route.getSuppression, { token, pathParameters: { address: 'ana@example.org' } }),
      );
      const list = jsonOf(await api(httpEvent(Route.listSuppressions, { token }))) as { items: unknown[] };
      const sent = jsonOf(await api(httpEvent(Route.sendMessage, { token, body: sendBody() }))) as {
        status: string;
      };

      // Assess
      expect(problemIn(read, 404).detail).toBe('This address is not on the suppression list.');
      expect(list.items).toEqual([]);
      expect(sent.status).toBe('queued');
    });

    it('needs the suppressions scope to change the list', async () => {
      // Prepare
      const { api, token } = setUp({ scopes: ['send', 'read'] });

      // Act
      const result = await api(
        httpEvent(Route.deleteSuppression, { token, pathParameters: { address: 'ana@example.org' } }),
      );

      // Assess
      expect(problemIn(result, 403).detail).toBe(
        'This API key lacks the "suppressions" or "admin" scope for this request.',
      );
    });

    it('lists suppressions a page at a time with a cursor', async () => {
      // Prepare
      const { api, token, suppressions } = setUp();
      suppressions.seed(
        suppression('a@example.org'),
        suppression('b@example.org'),
        suppression('c@example.org'),
      );

      // Act
      const first = jsonOf(
        await api(httpEvent(Route.listSuppressions, { token, query: { limit: '2' } })),
      ) as {
        items: Array<{ address: string }>;
        nextCursor: string;
      };
      const second = jsonOf(
        await api(
          httpEvent(Route.listSuppressions, { token, query: { limit: '2', cursor: first.nextCursor } }),
        ),
      ) as { items: Array<{ address: string }>; nextCursor: string | null };

      // Assess
      expect(first.items.map((s) => s.address)).toEqual(['a@example.org', 'b@example.org']);
      expect(second).toEqual({
        items: [
          {
            address: 'c@example.org',
            reason: 'hard_bounce',
            detail: null,
            source: 'api',
            createdAt: T0,
            expiresAt: null,
            scope: 'global',
          },
        ],
        nextCursor: null,
      });
    });

    it.each(['0', '1001', 'ten', '2.5', ''])('answers 422 to the limit %j', async (limit) => {
      // Prepare
      const { api, token } = setUp();

      // Act
      const result = await api(httpEvent(Route.listSuppressions, { token, query: { limit } }));

      // Assess
      expect(problemIn(result, 422)).toMatchObject({
        detail: 'limit must be an integer from 1 to 1000.',
        errors: [{ path: 'limit', message: 'must be 1-1000' }],
      });
    });
  });

  it('never answers 5xx to arbitrary bodies and headers', async () => {
    // Prepare
    const { api, token } = setUp();
    const bodies = fc.oneof(
      fc.json(),
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc
        .record(
          {
            from: fc.oneof(fc.constant('orders@example.com'), fc.string({ maxLength: 20 }), fc.jsonValue()),
            to: fc.oneof(
              fc.array(fc.oneof(fc.emailAddress(), fc.string({ maxLength: 10 })), { maxLength: 4 }),
              fc.jsonValue(),
            ),
            subject: fc.oneof(fc.string({ maxLength: 30 }), fc.jsonValue()),
            text: fc.oneof(fc.string({ maxLength: 30 }), fc.jsonValue()),
            headers: fc.dictionary(
              fc.string({ maxLength: 12 }),
              fc.oneof(fc.string({ maxLength: 12 }), fc.jsonValue()),
            ),
            tags: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue()),
            attachments: fc.array(
              fc.dictionary(
                fc.constantFrom('filename', 'content', 'disposition', 'contentId', 'x'),
                fc.jsonValue(),
              ),
              { maxLength: 2 },
            ),
            stream: fc.oneof(fc.constantFrom('transactional', 'broadcast'), fc.jsonValue()),
          },
          { requiredKeys: [] },
        )
        .map((b) => JSON.stringify(b)),
    );
    const request = fc.record({
      // Stats and erasure answer 501 until they exist (see the routing tests).
      route: fc.constantFrom<string>(
        ...Object.values(Route).filter((r) => r !== Route.stats && r !== Route.eraseRecipient),
      ),
      body: fc.option(bodies, { nil: undefined }),
      contentType: fc.option(
        fc.constantFrom('application/json', 'text/plain', 'application/merge-patch+json', '', ';;'),
        { nil: undefined },
      ),
      auth: fc.constantFrom('valid', 'none', 'garbage'),
      isBase64Encoded: fc.boolean(),
      id: fc.string({ maxLength: 20 }),
      query: fc.dictionary(fc.constantFrom('limit', 'cursor', 'from'), fc.string({ maxLength: 8 })),
    });

    // Act / Assess
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = {};
        if (r.contentType !== undefined) headers['content-type'] = r.contentType;
        if (r.auth === 'valid') headers.authorization = `Bearer ${token}`;
        if (r.auth === 'garbage') headers.authorization = 'Bearer bt_%%%_x';
        const result = await api(
          httpEvent(r.route, {
            headers,
            ...(r.body !== undefined ? { body: r.body } : {}),
            isBase64Encoded: r.isBase64Encoded,
            pathParameters: { id: r.id, address: r.id },
            query: r.query,
            method: 'POST',
            path: '/x',
          }),
        );
        expect(result.statusCode).toBeLessThan(500);
        if ((result.statusCode ?? 0) >= 400) expect(contentTypeOf(result)).toBe('application/problem+json');
      }),
      { numRuns: 250 },
    );
  });
});

describe('sourceAllowed', () => {
  it.each([
    ['an address inside an IPv4 subnet', '10.1.2.3', ['10.0.0.0/8'], true],
    ['an address outside it', '11.1.2.3', ['10.0.0.0/8'], false],
    ['a single listed address', '192.0.2.1', ['192.0.2.1'], true],
    ['an IPv6 address inside a prefix', '2001:db8::1', ['2001:db8::/32'], true],
    ['an IPv6 address against IPv4 rules', '2001:db8::1', ['10.0.0.0/8'], false],
    ['something that is not an IP', 'localhost', ['0.0.0.0/0'], false],
  ])('judges %s', (_what, ip, cidrs, allowed) => {
    // Prepare / Act
    const result = sourceAllowed(ip, cidrs);

    // Assess
    expect(result).toBe(allowed);
  });
});
