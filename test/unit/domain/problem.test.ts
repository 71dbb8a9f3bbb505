import { describe, expect, it } from 'vitest';
import { fail, ProblemError, problem } from '../../../lambdas/domain/problem.ts';

describe('problem', () => {
  it('builds an RFC 9457 problem with a urn type, the status and title of its code', () => {
    // Prepare / Act
    const p = problem('invalid_message', 'The message is not valid.', [{ path: 'to[0]', message: 'bad' }]);

    // Assess
    expect(p).toEqual({
      type: 'urn:baton:problem:invalid_message',
      title: 'Invalid message',
      status: 422,
      detail: 'The message is not valid.',
      code: 'invalid_message',
      errors: [{ path: 'to[0]', message: 'bad' }],
    });
  });

  it('leaves errors out when there are none', () => {
    // Prepare / Act
    const p = problem('not_found', 'No message with id msg_1.', []);

    // Assess
    expect(p).toEqual({
      type: 'urn:baton:problem:not_found',
      title: 'Not found',
      status: 404,
      detail: 'No message with id msg_1.',
      code: 'not_found',
    });
  });

  it.each([
    ['malformed_json', 400],
    ['unauthorized', 401],
    ['forbidden', 403],
    ['not_found', 404],
    ['idempotency_conflict', 409],
    ['too_many_webhooks', 409],
    ['webhook_disabled', 409],
    ['too_large', 413],
    ['unsupported_media_type', 415],
    ['invalid_message', 422],
    ['webhook_url_refused', 422],
    ['rate_limited', 429],
    ['unavailable', 503],
  ] as const)('answers %s with HTTP %i', (code, status) => {
    // Prepare / Act
    const p = problem(code, 'detail');

    // Assess
    expect(p.status).toBe(status);
  });
});

describe('fail', () => {
  it('throws a ProblemError that carries the problem and names the code in its message', () => {
    // Prepare
    let caught: unknown;

    // Act
    try {
      fail('forbidden', 'This API key is suspended.');
    } catch (error) {
      caught = error;
    }

    // Assess
    expect(caught).toBeInstanceOf(ProblemError);
    const e = caught as ProblemError;
    expect(e.message).toBe('forbidden: This API key is suspended.');
    expect(e.name).toBe('ProblemError');
    expect(e.problem).toEqual(problem('forbidden', 'This API key is suspended.'));
    expect(e.headers).toEqual({});
  });

  it('lets a ProblemError carry extra response headers', () => {
    // Prepare / Act
    const e = new ProblemError(problem('rate_limited', 'Slow down.'), { 'retry-after': '3' });

    // Assess
    expect(e.headers).toEqual({ 'retry-after': '3' });
  });
});
