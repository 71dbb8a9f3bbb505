import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Route } from '../../lambdas/shared/names.ts';
import { closeServer, listenOnLoopback } from '../../local/emulators/listen.ts';
import type { FunctionPool } from '../../local/runtime/function-pool.ts';
import { createGateway, type ObservedResponse } from '../../local/runtime/http-gateway.ts';
import { ContractViolationError, ResponseAudit } from '../support/openapi.ts';

// Issue 15: local mode's gateway hands every answer of the api to an observer, and the e2e suite's
// ResponseAudit checks each against docs/openapi.json (test/support/local-baton.ts).

let gateway: Server | undefined;
afterEach(async () => {
  if (gateway) await closeServer(gateway);
  gateway = undefined;
});

const pool = (result: unknown): FunctionPool =>
  ({ invoke: async () => ({ ok: true, result }) }) as unknown as FunctionPool;

async function start(routes: Array<{ routeKey: string; result: unknown }>, seen: ObservedResponse[]) {
  gateway = createGateway(
    routes.map((r) => ({ routeKey: r.routeKey, pool: pool(r.result) })),
    undefined,
    undefined,
    (answer) => seen.push(answer),
  );
  const { port } = await listenOnLoopback(gateway, { port: 0, service: 'test gateway', envVar: 'X' });
  return `http://127.0.0.1:${port}`;
}

const document = JSON.parse(readFileSync('docs/openapi.json', 'utf8')) as unknown;

describe('the local HTTP gateway’s response observer', () => {
  it('sees the route key, status, headers and body of each answer of the api', async () => {
    // Prepare
    const seen: ObservedResponse[] = [];
    const url = await start(
      [
        {
          routeKey: Route.health,
          result: {
            statusCode: 200,
            headers: { 'content-type': 'application/json' },
            body: '{"status":"ok"}',
          },
        },
      ],
      seen,
    );

    // Act
    await (await fetch(`${url}/health`)).text();
    await (await fetch(`${url}/nowhere`)).text();

    // Assess
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ method: 'GET', path: '/health', routeKey: Route.health, status: 200 });
    expect(seen[0]?.headers).toMatchObject({ 'content-type': 'application/json' });
    expect(seen[0]?.body.toString()).toBe('{"status":"ok"}');
    // No route and no fallback: the gateway's own 404.
    expect(seen[1]).toMatchObject({ path: '/nowhere', routeKey: undefined, status: 404 });
  });
});

describe('the observer and the audit on a failing function', () => {
  it('see API Gateway’s own 500 under the route’s key, which the document does not describe', async () => {
    // Prepare
    const seen: ObservedResponse[] = [];
    const failing = { invoke: async () => ({ ok: false }) } as unknown as FunctionPool;
    gateway = createGateway([{ routeKey: Route.stats, pool: failing }], undefined, undefined, (a) =>
      seen.push(a),
    );
    const { port } = await listenOnLoopback(gateway, { port: 0, service: 'test gateway', envVar: 'X' });
    const audit = new ResponseAudit(document);

    // Act
    await (await fetch(`http://127.0.0.1:${port}/v1/stats`)).text();
    for (const answer of seen) audit.observe(answer);

    // Assess
    expect(seen).toMatchObject([{ routeKey: Route.stats, status: 500 }]);
    expect(audit.violations).toEqual([
      'GET /v1/stats 500: GET /v1/stats 500 answered application/json, not application/problem+json',
    ]);
  });
});

describe('ResponseAudit', () => {
  it('keeps an undocumented status and a body off its schema, without the body', () => {
    // Prepare
    const audit = new ResponseAudit(document);
    const answer = (status: number, body: unknown) => ({
      method: 'GET',
      path: '/v1/messages/msg_1',
      routeKey: Route.getMessage,
      status,
      headers: { 'content-type': 'application/problem+json' },
      body: Buffer.from(JSON.stringify(body)),
    });

    // Act
    audit.observe(answer(418, { secret: 'alice@example.org' }));
    audit.observe(
      answer(404, {
        status: 404,
        code: 'not_found',
        title: 'x',
        type: 'about:blank',
        secret: 'alice@example.org',
      }),
    );

    // Assess
    expect(audit.checked).toBe(2);
    expect(audit.violations.length).toBeGreaterThanOrEqual(1);
    expect(audit.violations[0]).toMatch(/^GET \/v1\/messages\/msg_1 418: .*does not document/);
    expect(audit.violations.join('\n')).not.toContain('alice@example.org');
    expect(() => audit.assertClean()).toThrow(ContractViolationError);
  });

  it('keeps a 429 without the Retry-After it documents as required', () => {
    // Prepare
    const audit = new ResponseAudit(document);
    const problem = {
      type: 'urn:baton:problem:rate_limited',
      title: 't',
      status: 429,
      detail: 'd',
      code: 'rate_limited',
    };

    // Act
    audit.observe({
      method: 'GET',
      path: '/v1/stats',
      routeKey: Route.stats,
      status: 429,
      headers: { 'content-type': 'application/problem+json' },
      body: Buffer.from(JSON.stringify(problem)),
    });

    // Assess
    expect(audit.violations).toEqual([
      'GET /v1/stats 429: GET /v1/stats 429: no Retry-After header, which it documents as required',
    ]);
  });

  it('passes a documented answer', () => {
    // Prepare
    const audit = new ResponseAudit(document);

    // Act
    audit.observe({
      method: 'GET',
      path: '/health',
      routeKey: Route.health,
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ status: 'ok' })),
    });

    // Assess
    expect(audit.violations).toEqual([]);
    expect(() => audit.assertClean()).not.toThrow();
  });
});
