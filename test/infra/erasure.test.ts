import { Duration, Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { AttributeType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { beforeAll, describe, expect, it } from 'vitest';
import { EnvVar, ERASURE_SERVICE, LANES } from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { Erasure } from '../../lib/constructs/erasure.ts';
import { environmentOf, logicalIdOf, props, resourceOf, resourcesOfType, synthTemplate } from './support.ts';

describe('erasure', () => {
  let template: Template;
  let stack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
  });

  it('generates one 64-character alphanumeric secret per deployment, never rotated, kept if the stack goes', () => {
    // Act
    const secrets = resourcesOfType(template, 'AWS::SecretsManager::Secret');
    const secret = resourceOf(template, stack.erasure.secret);

    // Assess
    expect(Object.keys(secrets)).toEqual([logicalIdOf(stack.erasure.secret)]);
    expect(props(secret).GenerateSecretString).toEqual({
      PasswordLength: 64,
      ExcludePunctuation: true,
      IncludeSpace: false,
    });
    expect(props(secret).SecretString).toBeUndefined();
    expect([
      (secret as { DeletionPolicy?: string }).DeletionPolicy,
      (secret as { UpdateReplacePolicy?: string }).UpdateReplacePolicy,
    ]).toEqual(['Retain', 'Retain']);
    template.resourceCountIs('AWS::SecretsManager::RotationSchedule', 0);
  });

  it('gives the secret’s ARN to every function that checks or writes suppressions, and to the worker', () => {
    // Prepare
    const functions = [
      stack.api.handler,
      ...LANES.map((lane) => stack.lanes[lane].sender),
      stack.feedback.handler,
      stack.erasure.worker,
    ];

    // Act
    const arns = functions.map((fn) => environmentOf(template, fn.function)[EnvVar.erasureSecretArn]);

    // Assess
    expect(arns).toEqual(functions.map(() => ({ Ref: logicalIdOf(stack.erasure.secret) })));
  });

  it('runs the worker for 2 minutes on one job at a time, at most two at once, reporting failures', () => {
    // Act
    const mapping = props(resourceOf(template, stack.erasure.eventSourceMapping));
    const worker = props(resourceOf(template, stack.erasure.worker.function));

    // Assess
    expect(mapping).toMatchObject({
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
      EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(stack.erasure.queue.queue), 'Arn'] },
    });
    expect(worker).toMatchObject({
      Timeout: 120,
      Environment: {
        Variables: {
          [EnvVar.messagesTable]: { Ref: logicalIdOf(stack.tables.messages) },
          [EnvVar.erasureQueueUrl]: { Ref: logicalIdOf(stack.erasure.queue.queue) },
          POWERTOOLS_SERVICE_NAME: ERASURE_SERVICE,
        },
      },
    });
    expect(props(resourceOf(template, stack.erasure.queue.queue)).VisibilityTimeout).toBe(720);
  });

  it('refuses a worker timeout that leaves a step no time to scan, and a concurrency below 2', () => {
    // Prepare
    const scope = new Stack();
    const messagesTable = new Table(scope, 'Messages', {
      partitionKey: { name: 'id', type: AttributeType.STRING },
    });
    const build = (id: string, extra: { timeout?: Duration; maxConcurrency?: number }) => () =>
      new Erasure(scope, id, { messagesTable, logRetention: RetentionDays.ONE_MONTH, ...extra });

    // Act / Assess
    expect(build('Short', { timeout: Duration.seconds(30) })).toThrow(
      new Error('Erasure: timeout must be 60 to 900 seconds, got 30'),
    );
    expect(build('Lonely', { maxConcurrency: 1 })).toThrow(
      new Error('Erasure: maxConcurrency must be an integer from 2 to 1000, got 1'),
    );
  });
});
