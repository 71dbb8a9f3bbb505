import { LANES, type Lane } from '../../shared/names.ts';
import { CONTROL, KEY_ID, TENANT as TENANT_PATTERN } from '../keys/api-key.ts';
import { MESSAGE_ID } from '../message.ts';
import type { GuardTarget } from '../ports.ts';
import { type FieldError, fail } from '../problem.ts';
import type { HeldSelection } from './operations.ts';

/**
 * The operator's requests to the abuse guard, checked: the admin routes' bodies and query, and the
 * same rules for `npm run guard`. Every problem is reported at once, each with its field.
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

/** GET /v1/guard/held?tenant=&lane=&cursor=&limit= */
export function heldQuery(query: Readonly<Record<string, string | undefined>>): HeldQuery {
  const errors = unknownFields(query, ['tenant', 'lane', 'cursor', 'limit'], 'unknown query parameter');
  const tenant = tenantOf(query.tenant, errors);
  const lane = query.lane === undefined ? undefined : laneOf(query.lane, errors);
  const limit = query.limit === undefined ? DEFAULT_HELD_PAGE : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HELD_PAGE) {
    errors.push({ path: 'limit', message: `must be an integer from 1 to ${MAX_HELD_PAGE}` });
  }
  if (errors.length > 0 || tenant === undefined) fail('invalid_request', 'The query is not valid.', errors);
  return {
    tenant,
    limit,
    ...(lane === undefined ? {} : { lane }),
    ...(query.cursor ? { cursor: query.cursor } : {}),
  };
}

/** POST /v1/guard/release and /v1/guard/cancel: `{tenant, ids | lane | all: true, reason}`. */
export function heldRequest(body: unknown): HeldRequest {
  const fields = objectOf(body);
  const errors = unknownFields(fields, ['tenant', 'ids', 'lane', 'all', 'reason'], 'unknown field');
  const tenant = tenantOf(fields.tenant, errors);
  const reason = reasonOf(fields.reason, errors);
  const given = (['ids', 'lane', 'all'] as const).filter((f) => fields[f] !== undefined);
  let selection: HeldSelection | undefined;
  if (given.length !== 1) {
    errors.push({
      path: given[1] ?? 'ids',
      message: 'give exactly one of ids (a list of message ids), lane, or all: true',
    });
  } else if (given[0] === 'ids') {
    selection = idsOf(fields.ids, errors);
  } else if (given[0] === 'lane') {
    const lane = laneOf(fields.lane, errors);
    if (lane !== undefined) selection = { lane };
  } else if (fields.all === true) {
    selection = { all: true };
  } else {
    errors.push({ path: 'all', message: 'must be true' });
  }
  if (errors.length > 0 || tenant === undefined || reason === undefined || selection === undefined) {
    fail('invalid_request', 'The request is not valid; see errors for each failing field.', errors);
  }
  return { tenant, selection, reason };
}

/** POST /v1/guard/resume: `{tenant} | {keyId}`, and a reason. */
export function resumeRequest(body: unknown): ResumeRequest {
  const fields = objectOf(body);
  const errors = unknownFields(fields, ['tenant', 'keyId', 'reason'], 'unknown field');
  const reason = reasonOf(fields.reason, errors);
  let target: GuardTarget | undefined;
  if ((fields.tenant === undefined) === (fields.keyId === undefined)) {
    errors.push({
      path: fields.tenant === undefined ? 'tenant' : 'keyId',
      message: 'give exactly one of tenant or keyId',
    });
  } else if (fields.keyId !== undefined) {
    if (typeof fields.keyId === 'string' && KEY_ID.test(fields.keyId)) {
      target = { kind: 'key', keyId: fields.keyId };
    } else {
      errors.push({ path: 'keyId', message: 'must be a key id (8-32 lower-case letters and digits)' });
    }
  } else {
    const tenant = tenantOf(fields.tenant, errors);
    if (tenant !== undefined) target = { kind: 'tenant', tenant };
  }
  if (errors.length > 0 || target === undefined || reason === undefined) {
    fail('invalid_request', 'The request is not valid; see errors for each failing field.', errors);
  }
  return { target, reason };
}

function objectOf(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    fail('invalid_request', 'The body must be a JSON object.', [
      { path: '(body)', message: 'must be an object' },
    ]);
  }
  return body as Record<string, unknown>;
}

function unknownFields(fields: object, known: readonly string[], message: string): FieldError[] {
  return Object.keys(fields)
    .filter((k) => !known.includes(k))
    .map((path) => ({ path, message }));
}

function tenantOf(value: unknown, errors: FieldError[]): string | undefined {
  if (typeof value === 'string' && TENANT_PATTERN.test(value)) return value;
  errors.push({
    path: 'tenant',
    message: value === undefined ? 'is required' : 'must be 1-64 letters, digits, "_" or "-"',
  });
  return undefined;
}

function laneOf(value: unknown, errors: FieldError[]): Lane | undefined {
  if (typeof value === 'string' && (LANES as readonly string[]).includes(value)) return value as Lane;
  errors.push({ path: 'lane', message: `must be one of ${LANES.join(', ')}` });
  return undefined;
}

function reasonOf(value: unknown, errors: FieldError[]): string | undefined {
  const reason = typeof value === 'string' ? value.trim() : '';
  // Well-formed as the guard's resume requires (service.ts): a lone surrogate cannot be stored as
  // UTF-8, so it would fail the release or cancel half-way, or the resume with a 500.
  if (reason !== '' && reason.length <= MAX_REASON && !CONTROL.test(reason) && reason.isWellFormed()) {
    return reason;
  }
  errors.push({
    path: 'reason',
    message:
      value === undefined
        ? 'is required: say why, it is kept on each message and in the log'
        : `must be one line of 1 to ${MAX_REASON} characters`,
  });
  return undefined;
}

function idsOf(value: unknown, errors: FieldError[]): HeldSelection | undefined {
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_HELD_IDS) {
    errors.push({ path: 'ids', message: `must be a list of 1 to ${MAX_HELD_IDS} message ids` });
    return undefined;
  }
  const bad = value.findIndex((id) => typeof id !== 'string' || !MESSAGE_ID.test(id));
  if (bad >= 0) {
    errors.push({ path: `ids[${bad}]`, message: 'must be a message id (msg_...)' });
    return undefined;
  }
  return { ids: value as string[] };
}
