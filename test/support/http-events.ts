/**
 * API Gateway HTTP API (payload format 2.0) events, as the api function receives them: header
 * names lower-cased, the caller's IP in the request context, path parameters already matched.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

export interface HttpRequest {
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** Header names are lower-cased, as API Gateway does. */
  readonly headers?: Readonly<Record<string, string>>;
  /** A string is sent as is; anything else as JSON with `Content-Type: application/json`. */
  readonly body?: unknown;
  readonly isBase64Encoded?: boolean;
  readonly pathParameters?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string>>;
  readonly sourceIp?: string;
  /** Only for `$default`, where the route key names no method or path. */
  readonly method?: string;
  readonly path?: string;
}

/** An event for `routeKey` (e.g. `POST /v1/messages`, or `$default` with `method` and `path`). */
export function httpEvent(routeKey: string, request: HttpRequest = {}): APIGatewayProxyEventV2 {
  const [routeMethod, routePath] = routeKey === '$default' ? [undefined, undefined] : routeKey.split(' ');
  const method = request.method ?? routeMethod ?? 'GET';
  const rawPath =
    request.path ??
    (routePath ?? '/').replace(/\{(\w+)\}/g, (_, name: string) =>
      encodeURIComponent(request.pathParameters?.[name] ?? ''),
    );
  const headers: Record<string, string> = {};
  if (request.body !== undefined && typeof request.body !== 'string')
    headers['content-type'] = 'application/json';
  if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
  const rawQueryString = new URLSearchParams(request.query ?? {}).toString();
  const body =
    request.body === undefined
      ? undefined
      : typeof request.body === 'string'
        ? request.body
        : JSON.stringify(request.body);
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    headers,
    ...(request.query ? { queryStringParameters: { ...request.query } } : {}),
    ...(request.pathParameters ? { pathParameters: { ...request.pathParameters } } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'api123',
      domainName: 'api123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'api123',
      http: {
        method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: request.sourceIp ?? '198.51.100.7',
        userAgent: 'unit-test',
      },
      requestId: 'req-1',
      routeKey,
      stage: '$default',
      time: '01/Mar/2025:12:00:00 +0000',
      timeEpoch: Date.parse('2025-03-01T12:00:00Z'),
    },
    ...(body !== undefined ? { body } : {}),
    isBase64Encoded: request.isBase64Encoded ?? false,
  };
}

/** The response body, parsed. */
export function jsonOf(result: APIGatewayProxyStructuredResultV2): unknown {
  return JSON.parse(result.body ?? '');
}

/** The response's Content-Type. */
export function contentTypeOf(result: APIGatewayProxyStructuredResultV2): string | undefined {
  const headers = result.headers ?? {};
  const name = Object.keys(headers).find((k) => k.toLowerCase() === 'content-type');
  const value = name === undefined ? undefined : headers[name];
  return value === undefined ? undefined : String(value);
}
