import { Duration, Validations } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  DOCTOR_BASELINE_PREFIX,
  DOCTOR_SERVICE,
  DoctorMetric,
  EnvVar,
  METRICS_NAMESPACE,
} from '../../lambdas/shared/names.ts';
import { partitionAccess } from '../iam.ts';
import { BatonFunction } from './baton-function.ts';
import type { SendingIdentity } from './ses-sending.ts';

export interface DomainDoctorProps {
  /** The sending identities to check (each its domain's DNS and SES status). */
  readonly identities: readonly SendingIdentity[];
  /** Holds the last run's statuses, one item per domain under `doctor:` (the function's only items). */
  readonly guardTable: ITable;
  readonly logRetention: RetentionDays;
  /**
   * When the checks run.
   * @default Schedule.rate(Duration.days(1))
   */
  readonly schedule?: Schedule;
}

/**
 * Why the scheduled run has no dead-letter queue (cdk-nag Serverless-LambdaDLQ and
 * Serverless-EventBusDLQ). Exported for the infra tests.
 */
export const DOCTOR_DLQ_REASON =
  'The scheduled domain doctor carries no data: an invocation is "check the domains now". A run that ' +
  'fails raises the function error alarm, EventBridge and Lambda retry it, and the next day runs it ' +
  'again; a dead-letter queue would hold empty events and need an alarm of its own.';

/**
 * The domain doctor, daily: a function that runs the checks of `npm run doctor` against real DNS and
 * SES for every sending domain and publishes `doctorCheckFailed` (per check) and
 * `doctorChecksRegressed` (checks that passed before and fail now), which {@link metricChecksRegressed}
 * hands to the alarm.
 */
export class DomainDoctor extends Construct {
  readonly handler: BatonFunction;
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: DomainDoctorProps) {
    super(scope, id);
    if (props.identities.length === 0)
      throw new Error('DomainDoctor: at least one sending identity is required');

    this.handler = new BatonFunction(this, 'Function', {
      entry: 'lambdas/doctor/handler.ts',
      serviceName: DOCTOR_SERVICE,
      description:
        'Domain doctor: checks the sending domains’ DNS (DKIM, MAIL FROM, SPF, DMARC) and SES status daily',
      // A few dozen DNS queries and one SES call per domain; 3 s resolver timeouts, two tries each.
      timeout: Duration.minutes(2),
      logRetention: props.logRetention,
      environment: {
        [EnvVar.doctorDomains]: props.identities.map((i) => i.domain).join(','),
        [EnvVar.guardTable]: props.guardTable.tableName,
      },
    });
    this.handler.addToRolePolicy(
      new PolicyStatement({
        actions: ['ses:GetEmailIdentity'],
        resources: props.identities.map((i) => i.identity.emailIdentityArn),
      }),
    );
    this.handler.addToRolePolicy(
      partitionAccess(props.guardTable, DOCTOR_BASELINE_PREFIX, ['dynamodb:GetItem', 'dynamodb:PutItem']),
    );
    Validations.of(this.handler.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: DOCTOR_DLQ_REASON,
    });

    this.rule = new Rule(this, 'Schedule', {
      description: 'Runs the Baton domain doctor',
      schedule: props.schedule ?? Schedule.rate(Duration.days(1)),
      targets: [new LambdaFunction(this.handler.function, { retryAttempts: 2 })],
    });
    Validations.of(this.rule).acknowledge({ id: 'Serverless-EventBusDLQ', reason: DOCTOR_DLQ_REASON });
  }

  /** Checks that passed on an earlier run and fail now, summed per day (the alarm's metric). */
  metricChecksRegressed(): Metric {
    return new Metric({
      namespace: METRICS_NAMESPACE,
      metricName: DoctorMetric.checksRegressed,
      dimensionsMap: { service: DOCTOR_SERVICE },
      statistic: 'Maximum',
      period: Duration.days(1),
    });
  }
}
