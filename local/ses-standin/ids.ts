import { randomUUID } from 'node:crypto';

/**
 * An id shaped like SES's (`0100018264c6505e-66ca92ab-0593-41de-8df9-38b09a02a206-000000`): a version
 * prefix, the send time in milliseconds as 12 hex digits, a UUID and a six-digit suffix. Message ids
 * and bounce/complaint feedback ids share the format. Code must treat them as opaque; the shape only
 * keeps log lines and length limits realistic.
 */
export const sesStyleId = (at: Date): string =>
  `0100${at.getTime().toString(16).padStart(12, '0')}-${randomUUID()}-000000`;
