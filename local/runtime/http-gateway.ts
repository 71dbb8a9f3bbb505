import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { FunctionPool } from './function-pool.ts';

/** API Gateway's own limit on an HTTP API request body. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface GatewayRoute {
  readonly routeKey: string;
  readonly pool: FunctionPool;
}

export interface AccessLogEntry {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly ms: number;
}

interface CompiledRoute {
  readonly method: string;
  readonly pattern: RegExp;
  readonly params: readonly string[];
  readonly routeKey: string;
  readonly pool: FunctionPool;
  /** Literal routes win over parameterised ones, as in API Gateway. */
  readonly specificity: number;
}

/**
 * An answer of the HTTP API as it left the gateway (tests check each against the OpenAPI
 * document). `routeKey` is the matched route's (`$default` for the fallback), also when the
 * function failed and the gateway answered its own 500; undefined when no route was matched (413
 * on a body past API Gateway's limit, 404 without a fallback). The console's answers (PreRoute)
 * are not observed.
 */
export interface ObservedResponse {
  readonly method: string;
  readonly path: string;
  readonly routeKey: string | undefined;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: Buffer;
}

/**
 * Answers a request before the API's routes when it returns true (local mode's console under
 * /console); false leaves it to the API. `url` is the request target the gateway parsed.
 */
export type PreRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

/**
 * An HTTP API (payload format 2.0) in front of the api function: route matching on the template's
 * route keys, the v2 event, and the response mapping. Errors in the integration become API
 * Gateway's own `{"message":"Internal Server Error"}` 500, so local mode shows the same symptom.
 */
export function createGateway(
  routes: readonly GatewayRoute[],
  onAccess?: (entry: AccessLogEntry) => void,
  preRoute?: PreRoute,
  onResponse?: (response: ObservedResponse) => void,
): Server {
  const compiled = routes.filter((r) => r.routeKey !== '$default').map(compile);
  compiled.sort((a, b) => b.specificity - a.specificity);
  const fallback = routes.find((r) => r.routeKey === '$default');

  return createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = requestUrl(req.url);
    if (!url) {
      // A request target the URL parser refuses (`//[`): thrown here, outside any handler, it
      // would be an unhandled rejection that ends local mode.
      writeAnswer(res, 400, { 'content-type': 'application/json' }, '{"message":"Bad Request"}');
      onAccess?.({ method, path: req.url ?? '', status: 400, ms: Date.now() - started });
      return;
    }
    let status = 500;
    let routeKey: string | undefined;
    let observed: { headers: Record<string, string | string[]>; body: Buffer } | undefined;
    const send = (
      res: ServerResponse,
      code: number,
      headers: Record<string, string | string[]>,
      body: string | Buffer,
    ): void => {
      if (onResponse) observed = { headers, body: Buffer.isBuffer(body) ? body : Buffer.from(body) };
      writeAnswer(res, code, headers, body);
    };
    try {
      if (preRoute && (await preRoute(req, res, url))) {
        status = res.statusCode;
        return;
      }
      const body = await readBody(req);
      if (body === undefined) {
        status = 413;
        return send(
          res,
          413,
          { 'content-type': 'application/json' },
          '{"message":"Request Entity Too Large"}',
        );
      }
      let match: { route: CompiledRoute | GatewayRoute; params?: Record<string, string> } | undefined;
      for (const route of compiled) {
        if (route.method !== method && route.method !== 'ANY') continue;
        const m = route.pattern.exec(url.pathname);
        if (!m) continue;
        const params: Record<string, string> = {};
        route.params.forEach((name, i) => {
          params[name] = decode(m[i + 1] ?? '');
        });
        match = { route, params };
        break;
      }
      if (!match && fallback) match = { route: fallback };
      if (!match) {
        status = 404;
        return send(res, 404, { 'content-type': 'application/json' }, '{"message":"Not Found"}');
      }
      const event = toEvent(req, url, method, body, match.route.routeKey, match.params);
      // From here the answer is the route's: the api's, or API Gateway's 500 when the function failed.
      routeKey = match.route.routeKey;
      const result = await match.route.pool.invoke(event);
      if (!result.ok) {
        status = 500;
        return send(res, 500, { 'content-type': 'application/json' }, '{"message":"Internal Server Error"}');
      }
      status = respond(res, result.result, send);
    } catch {
      status = 500;
      if (!res.headersSent)
        send(res, 500, { 'content-type': 'application/json' }, '{"message":"Internal Server Error"}');
    } finally {
      onAccess?.({ method, path: url.pathname, status, ms: Date.now() - started });
      if (onResponse && observed)
        onResponse({
          method,
          path: url.pathname,
          routeKey,
          status,
          ...observed,
        });
    }
  });
}

function requestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

function compile(route: GatewayRoute): CompiledRoute {
  const [method = 'ANY', path = '/'] = route.routeKey.split(' ');
  const params: string[] = [];
  let literal = 0;
  const pattern = path
    .split('/')
    .map((segment) => {
      const greedy = /^\{(\w+)\+\}$/.exec(segment);
      if (greedy?.[1]) {
        params.push(greedy[1]);
        return '(.+)';
      }
      const param = /^\{(\w+)\}$/.exec(segment);
      if (param?.[1]) {
        params.push(param[1]);
        return '([^/]+)';
      }
      literal++;
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return {
    method: method.toUpperCase(),
    pattern: new RegExp(`^${pattern}/?$`),
    params,
    routeKey: route.routeKey,
    pool: route.pool,
    specificity: literal * 10 - params.length,
  };
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const TEXT_TYPES = /^(text\/|application\/(json|[\w.+-]+\+json|xml|javascript|x-www-form-urlencoded))/i;

function toEvent(
  req: IncomingMessage,
  url: URL,
  method: string,
  body: Buffer,
  routeKey: string,
  pathParameters: Record<string, string> | undefined,
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (name === 'cookie') cookies.push(...String(value).split(/;\s*/));
    else headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const contentType = headers['content-type'] ?? '';
  // Like API Gateway: text bodies arrive as text, anything else base64-encoded.
  const isText = body.length === 0 || contentType === '' || TEXT_TYPES.test(contentType);
  const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  const now = new Date();
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    ...(pathParameters && Object.keys(pathParameters).length > 0 ? { pathParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: isText ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: body.length > 0 && !isText,
  };
}

/** API Gateway's v2 response mapping, including its inference for non-structured results. */
function respond(
  res: ServerResponse,
  result: unknown,
  send: (
    res: ServerResponse,
    status: number,
    headers: Record<string, string | string[]>,
    body: string | Buffer,
  ) => void,
): number {
  const structured = typeof result === 'object' && result !== null && 'statusCode' in result;
  if (!structured) {
    const body = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    send(res, 200, { 'content-type': 'application/json' }, body);
    return 200;
  }
  const r = result as APIGatewayProxyStructuredResultV2;
  const status = r.statusCode ?? 200;
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) headers[k] = String(v);
  if (r.cookies?.length) headers['set-cookie'] = r.cookies;
  const body = r.body === undefined ? '' : r.isBase64Encoded ? Buffer.from(r.body, 'base64') : r.body;
  send(res, status, headers, body);
  return status;
}

function writeAnswer(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  body: string | Buffer,
): void {
  res.writeHead(status, headers);
  res.end(body);
}
