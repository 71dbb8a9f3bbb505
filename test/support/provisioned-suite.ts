import { afterAll, beforeAll } from 'vitest';
import { type ProvisionedStack, startProvisionedStack } from './emulators.ts';

/**
 * Starts the stack provisioned from the template before the enclosing suite (a `describe`, or the
 * whole file when called at its top level), hands it to `ready` to build what the tests use, and
 * stops it after the suite. Kept apart from emulators.ts, which the benches load outside vitest.
 */
export function withProvisionedStack(ready: (stack: ProvisionedStack) => void | Promise<void>): void {
  let stack: ProvisionedStack | undefined;
  beforeAll(async () => {
    stack = await startProvisionedStack();
    await ready(stack);
  });
  afterAll(async () => {
    await stack?.stop();
  });
}
