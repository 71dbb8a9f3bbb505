import { describe } from 'vitest';
import { InMemoryGuardStateStore } from '../../support/fakes.ts';
import { guardStateStoreContract } from '../../support/guard-state-contract.ts';

describe('InMemoryGuardStateStore (the fake GuardService unit tests use)', () => {
  const store = new InMemoryGuardStateStore();
  guardStateStoreContract(() => store);
});
