import { expect } from 'vitest';
import { type Problem, ProblemError } from '../../lambdas/domain/problem.ts';

/**
 * The problem `action` answers with. Fails the test (with what happened instead) when it returns
 * normally or throws anything other than a ProblemError.
 */
export async function problemOf(action: () => unknown): Promise<Problem> {
  let outcome: unknown;
  try {
    outcome = await action();
  } catch (error) {
    if (error instanceof ProblemError) return error.problem;
    throw new Error(`expected a ProblemError, got ${String(error)}`, { cause: error });
  }
  throw new Error(`expected a ProblemError, but it returned ${JSON.stringify(outcome)?.slice(0, 200)}`);
}

/** The same, for synchronous code. */
export function problemOfSync(action: () => unknown): Problem {
  let outcome: unknown;
  try {
    outcome = action();
  } catch (error) {
    if (error instanceof ProblemError) return error.problem;
    throw new Error(`expected a ProblemError, got ${String(error)}`, { cause: error });
  }
  throw new Error(`expected a ProblemError, but it returned ${JSON.stringify(outcome)?.slice(0, 200)}`);
}

/**
 * Fails unless an HTTP answer is exactly the problem `expected`: its status, the content type
 * `application/problem+json` and, parsed, the body `expected` itself.
 */
export function expectProblem(res: Response, body: unknown, expected: Problem): void {
  expect(res.status).toBe(expected.status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(body).toEqual(expected);
}
