/**
 * What `action` rejected with. Fails the test, saying what it resolved to instead, when it
 * resolves. (`problemOf` and `problemErrorOf` do the same for ProblemErrors.)
 */
export async function failureOf(action: Promise<unknown>): Promise<Error> {
  let outcome: unknown;
  try {
    outcome = await action;
  } catch (error) {
    return error as Error;
  }
  throw new Error(
    `expected the action to fail, but it resolved with ${JSON.stringify(outcome)?.slice(0, 200)}`,
  );
}
