import { Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Route } from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { BatonHttpApi } from '../../lib/constructs/http-api.ts';
import { logicalIdOf, props, referencedId, resourceOf, resourcesOfType, synthTemplate } from './support.ts';

describe('HTTP API', () => {
  let template: Template;
  let stack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
  });

  it('has a route for every value in Route, $default included, and no other', () => {
    // Act
    const routeKeys = Object.values(resourcesOfType(template, 'AWS::ApiGatewayV2::Route')).map(
      (route) => props(route).RouteKey,
    );

    // Assess
    expect([...routeKeys].sort()).toEqual([...Object.values(Route)].sort());
    expect(routeKeys).toContain('$default');
  });

  it('sends every route to the api function through one Lambda proxy integration', () => {
    // Prepare
    const integrations = resourcesOfType(template, 'AWS::ApiGatewayV2::Integration');
    const [integrationId, integration] = Object.entries(integrations)[0] ?? [];

    // Act
    const targets = new Set(
      Object.values(resourcesOfType(template, 'AWS::ApiGatewayV2::Route')).map((route) =>
        JSON.stringify(props(route).Target),
      ),
    );

    // Assess
    expect(Object.keys(integrations)).toHaveLength(1);
    expect(props(integration ?? { Type: 'missing' })).toMatchObject({
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [logicalIdOf(stack.api.handler.function), 'Arn'] },
    });
    expect([...targets]).toEqual([
      JSON.stringify({ 'Fn::Join': ['', ['integrations/', { Ref: integrationId }]] }),
    ]);
  });

  it('leaves authorization to the api function (no API Gateway authorizer)', () => {
    // Act / Assess
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    template.allResourcesProperties('AWS::ApiGatewayV2::Route', { AuthorizationType: 'NONE' });
  });

  it('deploys a $default stage with throttling from the configuration', () => {
    // Prepare
    const custom = synthTemplate({ context: { apiRateLimit: '25', apiBurstLimit: '60' } });

    // Act / Assess
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
    custom.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 25, ThrottlingBurstLimit: 60 },
    });
  });

  it('writes access logs to its own log group, without request paths (which carry addresses)', () => {
    // Act
    const stage = props(resourceOf(template, stack.httpApi.stage));
    const settings = stage.AccessLogSettings as { DestinationArn: unknown; Format: string };
    const format = JSON.parse(settings.Format) as Record<string, string>;

    // Assess
    expect(referencedId(settings.DestinationArn)).toBe(logicalIdOf(stack.httpApi.accessLogGroup));
    expect(format).toMatchObject({ requestId: '$context.requestId', routeKey: '$context.routeKey' });
    expect(settings.Format).not.toContain('$context.path');
    expect(props(resourceOf(template, stack.httpApi.accessLogGroup))).toEqual({
      RetentionInDays: RetentionDays.ONE_MONTH,
    });
  });

  it('lets API Gateway invoke the api function only from this API', () => {
    // Act
    const permissions = Object.values(resourcesOfType(template, 'AWS::Lambda::Permission'));

    // Assess
    expect(permissions.length).toBeGreaterThan(0);
    for (const permission of permissions) {
      expect(props(permission)).toMatchObject({
        Action: 'lambda:InvokeFunction',
        Principal: 'apigateway.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [logicalIdOf(stack.api.handler.function), 'Arn'] },
      });
      expect(JSON.stringify(props(permission).SourceArn)).toContain(logicalIdOf(stack.httpApi.api));
    }
  });
});

describe('BatonHttpApi', () => {
  it('refuses a route key that API Gateway would not accept', () => {
    // Prepare
    const stack = new Stack();
    const handler = new LambdaFunction(stack, 'Fn', {
      code: Code.fromInline('export const handler = () => {}'),
      handler: 'index.handler',
      runtime: Runtime.NODEJS_24_X,
    });

    // Act / Assess
    expect(
      () =>
        new BatonHttpApi(stack, 'Api', {
          handler,
          routes: ['FETCH /v1/messages'],
          rateLimit: 1,
          burstLimit: 1,
          logRetention: RetentionDays.ONE_DAY,
        }),
    ).toThrow(
      'BatonHttpApi: "FETCH /v1/messages" is not a route key of the form "METHOD /path" or "$default"',
    );
  });
});
