import { ProblemError } from '../../lambdas/domain/problem.ts';

/**
 * The ProblemError `action` throws, with its response headers (`retry-after` on a 429 or a busy
 * Idempotency-Key). Fails the test, saying what happened instead, when it returns normally or
 * throws anything else. (`problemOf` in problems.ts gives the problem alone.)
 */
export async function problemErrorOf(action: () => unknown): Promise<ProblemError> {
  let outcome: unknown;
  try {
    outcome = await action();
  } catch (error) {
    if (error instanceof ProblemError) return error;
    throw new Error(`expected a ProblemError, got ${String(error)}`, { cause: error });
  }
  throw new Error(`expected a ProblemError, but it returned ${JSON.stringify(outcome)?.slice(0, 200)}`);
}

/** A promise with its resolve handle, to hold a step open while a test races another one. */
export function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  const { promise, resolve } = Promise.withResolvers<T>();
  return { promise, resolve };
}
