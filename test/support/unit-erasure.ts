import { erasedKeyFunction } from '../../lambdas/domain/erasure/erasure.ts';

/** The erasure secret the unit tests run with (32 characters or more, as the domain requires). */
export const ERASURE_SECRET = 'unit-test-erasure-secret-0123456789';
/** The pseudonym function under that secret. */
export const keyOf = erasedKeyFunction(ERASURE_SECRET);
export const ANA = 'ana@example.org';
/** ana's pseudonym once erased. */
export const ANA_KEY = keyOf(ANA);
