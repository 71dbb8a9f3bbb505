import * as z from 'zod/mini';
import { LANES, type Lane } from '../../shared/names.ts';
import { CONTROL, KEY_ID, TENANT as TENANT_PATTERN } from '../keys/api-key.ts';
import { MESSAGE_ID } from '../message.ts';
import type { GuardTarget } from '../ports.ts';
import { type FieldError, fail } from '../problem.ts';
import { issueErrors } from '../request-issues.ts';
import type { HeldSelection } from './operations.ts';

/**
 * The operator's requests to the abuse guard, checked: the admin routes' bodies and query, and the
 * same rules for `npm run guard`. Every problem is reported at once, each with its field. The
 * fields are checked with the zod schemas the OpenAPI document is generated from (issue 15); which
 * of them go together (ids, lane or all; tenant or keyId) is checked here.
 */

/** Ids in one request: a release of more goes by lane or all. */
export const MAX_HELD_IDS = 1_000;
export const MAX_REASON = 500;
export const MAX_HELD_PAGE = 1_000;
export const DEFAULT_HELD_PAGE = 100;

export interface HeldQuery {
  readonly tenant: string;
  readonly lane?: Lane;
  readonly cursor?: string;
  readonly limit: number;
}

export interface HeldRequest {
  readonly tenant: string;
  readonly selection: HeldSelection;
  readonly reason: string;
}

export interface ResumeRequest {
  readonly target: GuardTarget;
  readonly reason: string;
}

const TENANT_MESSAGE = 'must be 1-64 letters, digits, "_" or "-"';
const LANE_MESSAGE = `must be one of ${LANES.join(', ')}`;
const LIMIT_MESSAGE = `must be an integer from 1 to ${MAX_HELD_PAGE}`;
const REASON_MESSAGE = `must be one line of 1 to ${MAX_REASON} characters`;
const IDS_MESSAGE = `must be a list of 1 to ${MAX_HELD_IDS} message ids`;

const tenant = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : TENANT_MESSAGE) })
  .check(z.regex(TENANT_PATTERN, TENANT_MESSAGE));
const lane = z.enum(LANES, LANE_MESSAGE);
// Well-formed as the guard's resume requires (service.ts): a lone surrogate cannot be stored as
// UTF-8, so it would fail the release or cancel half-way, or the resume with a 500. Kept trimmed.
const reason = z
  .string({
    error: (issue) =>
      issue.input === undefined
        ? 'is required: say why, it is kept on each message and in the log'
        : REASON_MESSAGE,
  })
  .check(
    z.refine((value: string) => {
      const r = value.trim();
      return r !== '' && r.length <= MAX_REASON && !CONTROL.test(r) && r.isWellFormed();
    }, REASON_MESSAGE),
    z.describe(`Why, in one line of 1 to ${MAX_REASON} characters: kept on each message and in the log.`),
  );

/** GET /v1/guard/held?tenant=&lane=&cursor=&limit= */
export const HELD_QUERY = z.strictObject({
  tenant,
  lane: z.optional(lane),
  cursor: z.optional(z.string()),
  limit: z._default(
    z.pipe(
      // Digits only, as the document's `integer` says: not `0x10`, `1e2` or ` 5` (Number would take them).
      z.pipe(z.string().check(z.regex(/^\d+$/, LIMIT_MESSAGE)), z.transform(Number)),
      z.int(LIMIT_MESSAGE).check(z.gte(1, LIMIT_MESSAGE), z.lte(MAX_HELD_PAGE, LIMIT_MESSAGE)),
    ),
    DEFAULT_HELD_PAGE,
  ),
});

/** POST /v1/guard/release and /v1/guard/cancel: `{tenant, ids | lane | all: true, reason}`. */
export const HELD_REQUEST = z
  .strictObject({
    tenant,
    reason,
    ids: z.optional(
      z
        .array(
          z
            .string('must be a message id (msg_...)')
            .check(z.regex(MESSAGE_ID, 'must be a message id (msg_...)')),
          IDS_MESSAGE,
        )
        .check(z.minLength(1, IDS_MESSAGE), z.maxLength(MAX_HELD_IDS, IDS_MESSAGE)),
    ),
    lane: z.optional(lane),
    all: z.optional(z.literal(true, 'must be true')),
  })
  .check(
    // For the OpenAPI document: exactly one selection, as heldRequest checks.
    z.meta({ oneOf: [{ required: ['ids'] }, { required: ['lane'] }, { required: ['all'] }] }),
  );

/** POST /v1/guard/resume: `{tenant} | {keyId}`, and a reason. */
export const RESUME_REQUEST = z
  .strictObject({
    reason,
    tenant: z.optional(tenant),
    keyId: z.optional(
      z
        .string('must be a key id (8-32 lower-case letters and digits)')
        .check(z.regex(KEY_ID, 'must be a key id (8-32 lower-case letters and digits)')),
    ),
  })
  .check(
    // For the OpenAPI document: exactly one target, as resumeRequest checks.
    z.meta({ oneOf: [{ required: ['tenant'] }, { required: ['keyId'] }] }),
  );

/** GET /v1/guard/held?tenant=&lane=&cursor=&limit= */
export function heldQuery(query: Readonly<Record<string, string | undefined>>): HeldQuery {
  const parsed = HELD_QUERY.safeParse(query);
  if (!parsed.success) {
    const { unknown, fields } = issueErrors(parsed.error.issues, 'unknown query parameter');
    fail('invalid_request', 'The query is not valid.', [...unknown, ...fields]);
  }
  const q = parsed.data;
  return {
    tenant: q.tenant,
    limit: q.limit,
    ...(q.lane === undefined ? {} : { lane: q.lane }),
    ...(q.cursor ? { cursor: q.cursor } : {}),
  };
}

/** POST /v1/guard/release and /v1/guard/cancel: `{tenant, ids | lane | all: true, reason}`. */
export function heldRequest(body: unknown): HeldRequest {
  const fields = objectOf(body);
  const parsed = HELD_REQUEST.safeParse(fields);
  const { unknown, fields: invalid } = parsed.success
    ? { unknown: [], fields: [] }
    : issueErrors(parsed.error.issues, 'unknown field');
  const given = (['ids', 'lane', 'all'] as const).filter((f) => fields[f] !== undefined);
  const errors = [...unknown, ...only(invalid, 'tenant'), ...only(invalid, 'reason')];
  if (given.length !== 1) {
    errors.push({
      path: given[1] ?? 'ids',
      message: 'give exactly one of ids (a list of message ids), lane, or all: true',
    });
  } else {
    // The first failing id only: a list of a thousand bad ids needs one answer, not a thousand.
    errors.push(
      ...invalid.filter((e) => e.path === given[0] || e.path.startsWith(`${given[0]}[`)).slice(0, 1),
    );
  }
  if (errors.length > 0 || !parsed.success) {
    fail('invalid_request', 'The request is not valid; see errors for each failing field.', errors);
  }
  const r = parsed.data;
  const selection: HeldSelection =
    r.ids !== undefined ? { ids: r.ids } : r.lane !== undefined ? { lane: r.lane } : { all: true };
  return { tenant: r.tenant, selection, reason: r.reason.trim() };
}

/** POST /v1/guard/resume: `{tenant} | {keyId}`, and a reason. */
export function resumeRequest(body: unknown): ResumeRequest {
  const fields = objectOf(body);
  const parsed = RESUME_REQUEST.safeParse(fields);
  const { unknown, fields: invalid } = parsed.success
    ? { unknown: [], fields: [] }
    : issueErrors(parsed.error.issues, 'unknown field');
  const errors = [...unknown, ...only(invalid, 'reason')];
  if ((fields.tenant === undefined) === (fields.keyId === undefined)) {
    errors.push({
      path: fields.tenant === undefined ? 'tenant' : 'keyId',
      message: 'give exactly one of tenant or keyId',
    });
  } else errors.push(...only(invalid, 'tenant'), ...only(invalid, 'keyId'));
  if (errors.length > 0 || !parsed.success) {
    fail('invalid_request', 'The request is not valid; see errors for each failing field.', errors);
  }
  const r = parsed.data;
  const target: GuardTarget =
    r.keyId !== undefined ? { kind: 'key', keyId: r.keyId } : { kind: 'tenant', tenant: r.tenant ?? '' };
  return { target, reason: r.reason.trim() };
}

function objectOf(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    fail('invalid_request', 'The body must be a JSON object.', [
      { path: '(body)', message: 'must be an object' },
    ]);
  }
  return body as Record<string, unknown>;
}

function only(errors: readonly FieldError[], path: string): FieldError[] {
  return errors.filter((e) => e.path === path);
}
