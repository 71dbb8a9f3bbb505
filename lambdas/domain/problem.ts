/**
 * RFC 9457 problem details, the only error shape the HTTP API answers with (DESIGN §2).
 */

export interface FieldError {
  /** Where in the request body, e.g. `to[0]` or `attachments[1].content`. */
  readonly path: string;
  readonly message: string;
}

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ProblemCode;
  readonly errors?: readonly FieldError[];
}

/** Every problem code with its status and title (the OpenAPI document lists them from here). */
export const PROBLEM_CATALOG = {
  malformed_json: { status: 400, title: 'Malformed JSON' },
  bad_request: { status: 400, title: 'Bad request' },
  unauthorized: { status: 401, title: 'Missing or invalid API key' },
  forbidden: { status: 403, title: 'Not allowed for this API key' },
  not_found: { status: 404, title: 'Not found' },
  idempotency_conflict: { status: 409, title: 'Idempotency key reused with a different body' },
  idempotency_in_progress: { status: 409, title: 'A request with this idempotency key is in progress' },
  /** A tenant may register at most MAX_WEBHOOK_ENDPOINTS webhook endpoints (issue 14). */
  too_many_webhooks: { status: 409, title: 'Too many webhook endpoints' },
  /** A replay to an endpoint that is disabled (by its owner, or by Baton after 410 or days of failure). */
  webhook_disabled: { status: 409, title: 'The webhook endpoint is disabled' },
  too_large: { status: 413, title: 'Request too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  invalid_message: { status: 422, title: 'Invalid message' },
  invalid_request: { status: 422, title: 'Invalid request' },
  /** The URL may not receive webhooks (SSRF policy, domain/webhooks/url-policy.ts); the detail says why. */
  webhook_url_refused: { status: 422, title: 'Webhook URL refused' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal: { status: 500, title: 'Internal error' },
  not_implemented: { status: 501, title: 'Not implemented' },
  unavailable: { status: 503, title: 'Service unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

/** The detail of every `invalid_message` problem: the field errors say what is wrong. */
export const INVALID_MESSAGE = 'The message is not valid; see errors for each failing field.';

export type ProblemCode = keyof typeof PROBLEM_CATALOG;

export function problem(code: ProblemCode, detail: string, errors?: readonly FieldError[]): Problem {
  const { status, title } = PROBLEM_CATALOG[code];
  return {
    type: `urn:baton:problem:${code}`,
    title,
    status,
    detail,
    code,
    ...(errors && errors.length > 0 ? { errors } : {}),
  };
}

/**
 * Thrown by request handling to answer with a problem. The HTTP edge turns it into the response;
 * anything else that escapes is a bug and becomes a 500 without details.
 */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';
  readonly problem: Problem;
  /** Extra response headers, e.g. `Retry-After` on a 429. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(p: Problem, headers: Record<string, string> = {}) {
    super(`${p.code}: ${p.detail}`);
    this.problem = p;
    this.headers = headers;
  }
}

export function fail(code: ProblemCode, detail: string, errors?: readonly FieldError[]): never {
  throw new ProblemError(problem(code, detail, errors));
}
