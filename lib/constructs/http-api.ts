import { Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface BatonHttpApiProps {
  /** The function every route is integrated with. */
  readonly handler: IFunction;
  /**
   * API Gateway route keys (`METHOD /path`, or `$default` for the catch-all), normally
   * `Object.values(Route)`.
   */
  readonly routes: readonly string[];
  /** Stage-wide steady-state rate limit, requests per second. */
  readonly rateLimit: number;
  /** Stage-wide burst limit, requests. */
  readonly burstLimit: number;
  /** Retention of the access log group. */
  readonly logRetention: RetentionDays;
}

/**
 * Access log fields. The route key is logged instead of the path on purpose: paths such as
 * `/v1/suppressions/{address}` carry email addresses, which must not reach the logs.
 */
const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  sourceIp: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
});

const NO_AUTHORIZER_REASON =
  'Authentication is by Baton API key (Authorization: Bearer) in the api function, together with the ' +
  'per-key source-IP allowlist, scopes and sender domains (DESIGN §6); GET /health and the $default 404 ' +
  'are public by design. An authorizer would duplicate that check outside local mode and the tests.';

const METHODS = new Map<string, HttpMethod>(Object.values(HttpMethod).map((method) => [method, method]));

/**
 * The public HTTP API (DESIGN §2): one Lambda integration, one explicit route per route key, and a
 * `$default` stage with access logs and a throttling backstop.
 *
 * No API Gateway authorizer: requests are authenticated with API keys in the function, where the
 * per-key source-IP allowlist and scopes live too and where local mode and tests exercise them
 * (DESIGN §6). Explicit routes (rather than only `$default`) give per-route metrics and keep
 * unknown paths from ever looking like API calls in the access log.
 */
export class BatonHttpApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogGroup: LogGroup;
  readonly routes: readonly HttpRoute[];

  constructor(scope: Construct, id: string, props: BatonHttpApiProps) {
    super(scope, id);
    const routeKeys = props.routes.map(parseRouteKey);
    validate(props);

    this.api = new HttpApi(this, 'Api', {
      description: 'Baton email relay API',
      // The stage is created below so it can carry access logging and throttling.
      createDefaultStage: false,
    });
    this.accessLogGroup = new LogGroup(this, 'AccessLogs', { retention: props.logRetention });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit, burstLimit: props.burstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogGroup),
        format: AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });

    const integration = new HttpLambdaIntegration('Handler', props.handler);
    this.routes = routeKeys.map(({ id: routeId, key }) => {
      const route = new HttpRoute(this, routeId, { httpApi: this.api, routeKey: key, integration });
      Validations.of(route).acknowledge({ id: 'AwsSolutions-APIG4', reason: NO_AUTHORIZER_REASON });
      return route;
    });
  }

  /** The invoke URL of the `$default` stage, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/`. */
  get url(): string {
    return this.stage.url;
  }
}

interface ParsedRoute {
  readonly id: string;
  readonly key: HttpRouteKey;
}

function parseRouteKey(routeKey: string): ParsedRoute {
  if (routeKey === '$default') return { id: 'DefaultRoute', key: HttpRouteKey.DEFAULT };
  const match = /^([A-Z]+) (\/[A-Za-z0-9._~{}/-]*)$/.exec(routeKey);
  const method = match?.[1] === undefined ? undefined : METHODS.get(match[1]);
  const path = match?.[2];
  if (method === undefined || path === undefined) {
    throw new Error(
      `BatonHttpApi: "${routeKey}" is not a route key of the form "METHOD /path" or "$default"`,
    );
  }
  return { id: routeConstructId(method, path), key: HttpRouteKey.with(path, method) };
}

/** `GET /v1/messages/{id}` → `GetV1MessagesIdRoute`: stable, readable and unique per route key. */
function routeConstructId(method: string, path: string): string {
  const words = [method.toLowerCase(), ...path.split(/[^A-Za-z0-9]+/)].filter((word) => word !== '');
  return `${words.map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join('')}Route`;
}

function validate(props: BatonHttpApiProps): void {
  const duplicates = props.routes.filter((route, index) => props.routes.indexOf(route) !== index);
  if (duplicates.length > 0) throw new Error(`BatonHttpApi: duplicate routes ${duplicates.join(', ')}`);
  if (props.routes.length === 0) throw new Error('BatonHttpApi: at least one route is required');
  if (!(props.rateLimit > 0) || !Number.isInteger(props.burstLimit) || props.burstLimit < 1) {
    throw new Error(
      `BatonHttpApi: rateLimit must be > 0 and burstLimit a positive integer, got ${props.rateLimit} / ${props.burstLimit}`,
    );
  }
}
