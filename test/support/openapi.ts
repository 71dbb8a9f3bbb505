import { Ajv2020 } from 'ajv/dist/2020.js';

/**
 * Checks real answers against the OpenAPI document (issue 15): the status must be one the
 * operation documents, the media type one it documents for that status, and the body must
 * validate (ajv, JSON Schema 2020-12) against the schema documented for it. Formats are not
 * checked (ajv-formats is no dependency of ours): zod writes a `pattern` beside each date and time.
 * For any e2e test: `const contract = new OpenApiContract(document)`, then
 * `await contract.call(Route.x, fetchPromise)` or `contract.check(Route.x, status, type, body)`.
 */

interface MediaType {
  readonly schema?: unknown;
}
interface HeaderObject {
  readonly required?: boolean;
  readonly $ref?: string;
}
interface ResponseObject {
  readonly content?: Readonly<Record<string, MediaType>>;
  readonly headers?: Readonly<Record<string, HeaderObject>>;
}
type Answer = ResponseObject | { readonly $ref: string };
interface OpenApiDocument {
  readonly paths: Readonly<Record<string, Readonly<Record<string, { responses: Record<string, Answer> }>>>>;
  readonly components?: { readonly responses?: Readonly<Record<string, ResponseObject>> };
}

/** A real answer, as checked. */
export interface CheckedResponse {
  readonly status: number;
  readonly contentType: string | null;
  readonly headers: Headers;
  readonly body: unknown;
}

/** A real answer that the document does not describe: every reason, one per line. */
export class ContractViolationError extends Error {
  override readonly name = 'ContractViolationError';
}

const DOCUMENT_ID = 'baton-openapi';

export class OpenApiContract {
  readonly #document: OpenApiDocument;
  readonly #ajv: Ajv2020;
  /** `<route> <status>` of every answer checked, for a test to say which it covered. */
  readonly seen = new Set<string>();

  constructor(document: unknown) {
    this.#document = document as OpenApiDocument;
    // Not strict: the document is an OpenAPI document around its schemas, not a schema itself.
    this.#ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    this.#ajv.addSchema(document as object, DOCUMENT_ID);
  }

  /**
   * What is wrong with an answer of `route` (`'GET /v1/messages/{id}'`, a value of `Route`);
   * empty when the document describes it. With `headers`, a header the answer documents as
   * required (Retry-After on a 429) must be there.
   */
  problems(
    route: string,
    status: number,
    contentType: string | null,
    body: unknown,
    headers?: Headers | Readonly<Record<string, unknown>>,
  ): string[] {
    const [method = '', path = ''] = route.split(' ');
    const operation = this.#document.paths[path]?.[method.toLowerCase()];
    if (operation === undefined) return [`${route} is not in the document`];
    const key = String(status) in operation.responses ? String(status) : `${String(status)[0]}XX`;
    const answer = operation.responses[key] ?? operation.responses.default;
    if (answer === undefined) {
      return [
        `${route} answered ${status}, which it does not document (${Object.keys(operation.responses).join(', ')})`,
      ];
    }
    // A shared answer (`#/components/responses/<name>`) is read, and its schema found, where it is.
    const shared = '$ref' in answer ? answer.$ref.split('/').at(-1) : undefined;
    const response =
      shared === undefined ? (answer as ResponseObject) : this.#document.components?.responses?.[shared];
    if (response === undefined) return [`${route} ${status}: no response ${shared}`];
    const missing =
      headers === undefined
        ? []
        : Object.entries(response.headers ?? {})
            .filter(([name, h]) => h.required === true && !hasHeader(headers, name))
            .map(([name]) => `${route} ${status}: no ${name} header, which it documents as required`);
    if (missing.length > 0) return missing;
    const media = Object.keys(response.content ?? {});
    if (media.length === 0) {
      return body === undefined ? [] : [`${route} ${status} documents no body but answered one`];
    }
    const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (!media.includes(type))
      return [`${route} ${status} answered ${type || 'no content type'}, not ${media.join(' or ')}`];
    const at =
      shared === undefined
        ? ['paths', path, method.toLowerCase(), 'responses', key]
        : ['components', 'responses', shared];
    const pointer = [...at, 'content', type, 'schema']
      .map((part) => part.replace(/~/g, '~0').replace(/\//g, '~1'))
      .join('/');
    const validate = this.#ajv.getSchema(`${DOCUMENT_ID}#/${pointer}`);
    if (validate === undefined) return [`${route} ${status}: no schema at ${pointer}`];
    if (validate(body)) return [];
    return (validate.errors ?? []).map(
      (e) =>
        `${route} ${status}: body${e.instancePath} ${e.message ?? 'is invalid'} ${JSON.stringify(e.params)}`,
    );
  }

  /** Throws ContractViolationError unless the document describes the answer; records it as seen. */
  check(
    route: string,
    status: number,
    contentType: string | null,
    body: unknown,
    headers?: Headers | Readonly<Record<string, unknown>>,
  ): void {
    const problems = this.problems(route, status, contentType, body, headers);
    if (problems.length > 0) throw new ContractViolationError(problems.join('\n'));
    this.seen.add(`${route} ${status}`);
  }

  /** Reads a fetch answer of `route`, checks it, and hands it back with its body parsed. */
  async call(route: string, answer: Response | Promise<Response>): Promise<CheckedResponse> {
    const res = await answer;
    const text = await res.text();
    const contentType = res.headers.get('content-type');
    const body = text === '' ? undefined : (JSON.parse(text) as unknown);
    this.check(route, res.status, contentType, body, res.headers);
    return { status: res.status, contentType, headers: res.headers, body };
  }
}

function hasHeader(headers: Headers | Readonly<Record<string, unknown>>, name: string): boolean {
  if (headers instanceof Headers) return headers.has(name);
  return Object.keys(headers).some((k) => k.toLowerCase() === name.toLowerCase());
}

/** An answer as local mode's gateway saw it (local/runtime/http-gateway.ts ObservedResponse). */
export interface ObservedAnswer {
  readonly method: string;
  readonly path: string;
  readonly routeKey: string | undefined;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: Buffer;
}

/**
 * Checks every answer of the api that local mode's gateway hands it against the document, and
 * keeps what it does not describe: method, path, status and the reason (a schema error's path and
 * message; never the body, which may hold addresses). Answers before any route matched (no route
 * key) and the fallback's (`$default`, no operation) are counted but not checked; a function that
 * failed (API Gateway's own 500, not a problem) is a violation like any other.
 */
export class ResponseAudit {
  readonly #contract: OpenApiContract;
  readonly violations: string[] = [];
  checked = 0;
  unchecked = 0;

  constructor(document: unknown) {
    this.#contract = new OpenApiContract(document);
  }

  observe = (answer: ObservedAnswer): void => {
    if (answer.routeKey === undefined || answer.routeKey === '$default') {
      this.unchecked++;
      return;
    }
    this.checked++;
    const header = answer.headers['content-type'] ?? answer.headers['Content-Type'];
    const contentType = header === undefined ? null : String(header);
    const text = answer.body.toString('utf8');
    let body: unknown;
    if (text !== '') {
      try {
        body = JSON.parse(text) as unknown;
      } catch {
        body = text;
        if (/json/i.test(contentType ?? '')) {
          this.#add(answer, `${answer.routeKey} ${answer.status}: the ${contentType} body is no JSON`);
          return;
        }
      }
    }
    const problems = this.#contract.problems(
      answer.routeKey,
      answer.status,
      contentType,
      body,
      answer.headers,
    );
    for (const problem of problems) this.#add(answer, problem);
  };

  #add(answer: ObservedAnswer, problem: string): void {
    this.violations.push(`${answer.method} ${answer.path} ${answer.status}: ${problem}`);
  }

  /** Throws ContractViolationError listing every answer the document did not describe. */
  assertClean(): void {
    if (this.violations.length === 0) return;
    throw new ContractViolationError(
      `${this.violations.length} answer(s) of the api differ from docs/openapi.json:\n${this.violations.join('\n')}`,
    );
  }
}
