import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DOCTOR_SERVICE,
  DoctorMetric,
  ENTRY_METADATA_KEY,
  EnvVar,
  METRICS_NAMESPACE,
} from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { BatonConfigError, resolveConfig } from '../../lib/config.ts';
import { DOCTOR_DLQ_REASON } from '../../lib/constructs/domain-doctor.ts';
import {
  acknowledgementsOf,
  buildBaton,
  environmentOf,
  functionsByEntry,
  logicalIdOf,
  permissionsOf,
  props,
  resourceOf,
  resourcesOfType,
  synthTemplate,
} from './support.ts';

const ENTRY = 'lambdas/doctor/handler.ts';
const ACCOUNT_ARN = 'arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>';
const DOMAINS = {
  domain: 'mail.example.com',
  domains: 'mail.example.com,news.example.org,legacy.example.net',
  importDomains: 'legacy.example.net',
};

describe('the scheduled domain doctor', () => {
  let template: Template;
  let stack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate({ context: { doctorSchedule: 'true', ...DOMAINS } }));
  });

  it('is not deployed unless doctorSchedule is set', () => {
    // Act
    const { template: plain, stack: plainStack } = synthTemplate();

    // Assess
    expect(plainStack.doctor).toBeUndefined();
    expect(functionsByEntry(plain, ENTRY_METADATA_KEY)[ENTRY]).toBeUndefined();
    plain.resourceCountIs('AWS::Events::Rule', 0);
  });

  it('runs the doctor function once a day from an EventBridge rule, retrying a failed run twice', () => {
    // Prepare
    const doctor = stack.doctor;
    if (doctor === undefined) throw new Error('doctorSchedule=true built no doctor');

    // Act
    const rule = props(resourceOf(template, doctor.rule));

    // Assess
    expect(rule.ScheduleExpression).toBe('rate(1 day)');
    expect(rule.State).toBe('ENABLED');
    expect(rule.Targets).toEqual([
      expect.objectContaining({
        Arn: { 'Fn::GetAtt': [logicalIdOf(doctor.handler.function), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 2 },
      }),
    ]);
    expect(functionsByEntry(template, ENTRY_METADATA_KEY)[ENTRY]).toEqual([
      logicalIdOf(doctor.handler.function),
    ]);
  });

  it('checks every sending domain, imported ones included, and keeps its baseline in the Guard table', () => {
    // Prepare
    const doctor = stack.doctor;
    if (doctor === undefined) throw new Error('doctorSchedule=true built no doctor');

    // Act
    const environment = environmentOf(template, doctor.handler.function);

    // Assess
    expect(environment[EnvVar.doctorDomains]).toBe('mail.example.com,news.example.org,legacy.example.net');
    expect(environment[EnvVar.guardTable]).toEqual({ Ref: logicalIdOf(stack.tables.guard) });
    expect(environment.POWERTOOLS_SERVICE_NAME).toBe(DOCTOR_SERVICE);
  });

  it('may read the sending identities and its own doctor: items, nothing else', () => {
    // Prepare
    const doctor = stack.doctor;
    if (doctor === undefined) throw new Error('doctorSchedule=true built no doctor');
    const identityArns = stack.ses.identities.map((i) =>
      i.created === undefined
        ? `${ACCOUNT_ARN}:identity/${i.domain}`
        : `${ACCOUNT_ARN}:identity/<${logicalIdOf(i.created.identity)}>`,
    );

    // Act
    const permissions = permissionsOf(template, doctor.handler.role);
    const guardStatements = Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))
      .flatMap(
        (p) =>
          (props(p).PolicyDocument as { Statement: { Action: unknown; Condition?: unknown }[] }).Statement,
      )
      .filter(
        (s) => JSON.stringify(s.Action).includes('dynamodb:PutItem') && JSON.stringify(s).includes('doctor:'),
      );

    // Assess
    expect(permissions).toEqual({
      ...Object.fromEntries(identityArns.map((arn) => [arn, ['ses:GetEmailIdentity']])),
      [`<${logicalIdOf(stack.tables.guard)}>`]: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      [`<${logicalIdOf(doctor.handler.logGroup)}>`]: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    });
    expect(guardStatements).toEqual([
      expect.objectContaining({
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['doctor:*'] } },
      }),
    ]);
  });

  it('alarms on the alarm topic when a check that passed starts failing, and on the function’s errors', () => {
    // Act
    const alarms = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm')).map(props);
    const regressed = alarms.find((a) => a.MetricName === DoctorMetric.checksRegressed);
    const errors = alarms.filter((a) => String(a.AlarmDescription).startsWith('Doctor function'));

    // Assess
    expect(regressed).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      Dimensions: [{ Name: 'service', Value: DOCTOR_SERVICE }],
      Statistic: 'Maximum',
      Period: 86_400,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: logicalIdOf(stack.monitoring.alarmTopic) }],
    });
    expect(errors).toHaveLength(1);
  });

  it('charts failing checks by check id and the regressed count on the dashboard', () => {
    // Act
    const body = JSON.stringify(
      Object.values(resourcesOfType(template, 'AWS::CloudWatch::Dashboard')).map(
        (d) => props(d).DashboardBody,
      ),
    );

    // Assess
    expect(body).toMatch(
      new RegExp(`MetricName=[\\\\"]*${DoctorMetric.checkFailed}[\\\\"]* ${DoctorMetric.checkDimension}'`),
    );
    expect(body).toContain(DoctorMetric.checksRegressed);
  });
});

describe('doctorSchedule under cdk-nag', () => {
  it('synthesizes with both rule packs, acknowledging only the dead-letter queues a schedule has no use for', () => {
    // Prepare
    const baton = buildBaton({ nag: true, context: { doctorSchedule: true } });

    // Act
    baton.app.synth();
    const acknowledged = acknowledgementsOf(baton).filter(({ path }) => path.startsWith('Baton/Doctor/'));

    // Assess
    expect(
      acknowledged
        .filter(({ reason }) => reason === DOCTOR_DLQ_REASON)
        .map(({ path, id }) => `${path} ${id}`)
        .sort(),
    ).toEqual([
      'Baton/Doctor/Function/Function Annotation::Serverless-LambdaDLQ',
      'Baton/Doctor/Schedule Annotation::Serverless-EventBusDLQ',
    ]);
  });
});

describe('the doctorSchedule setting', () => {
  it('is off by default and takes true or false, also as strings from -c', () => {
    expect(resolveConfig({ domain: 'example.com' }).doctorSchedule).toBe(false);
    expect(resolveConfig({ domain: 'example.com', doctorSchedule: 'true' }).doctorSchedule).toBe(true);
    expect(resolveConfig({ domain: 'example.com', doctorSchedule: false }).doctorSchedule).toBe(false);
  });

  it('refuses anything else, naming the setting', () => {
    expect(() => resolveConfig({ domain: 'example.com', doctorSchedule: 'daily' })).toThrow(BatonConfigError);
    expect(() => resolveConfig({ domain: 'example.com', doctorSchedule: 'daily' })).toThrow(
      'Invalid Baton setting "doctorSchedule": must be true or false, got "daily"',
    );
  });
});
