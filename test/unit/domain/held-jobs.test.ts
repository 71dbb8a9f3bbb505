import { describe } from 'vitest';
import { InMemoryHeldJobs } from '../../support/fakes.ts';
import { heldJobsContract } from '../../support/held-jobs-contract.ts';

describe('InMemoryHeldJobs (the fake callers’ unit tests use)', () => {
  const store = new InMemoryHeldJobs();
  heldJobsContract(() => store);
});
