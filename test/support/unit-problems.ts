import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { expect } from 'vitest';
import type { Problem } from '../../lambdas/domain/problem.ts';
import { contentTypeOf, jsonOf } from './http-events.ts';

/**
 * Checks an api answer against the problem+json contract (the status, the content type, the
 * status and type inside) and returns the problem.
 */
export function problemIn(result: APIGatewayProxyStructuredResultV2, status: number): Problem {
  expect(result.statusCode).toBe(status);
  expect(contentTypeOf(result)).toBe('application/problem+json');
  const p = jsonOf(result) as Problem;
  expect(p.status).toBe(status);
  expect(p.type).toBe(`urn:baton:problem:${p.code}`);
  return p;
}
