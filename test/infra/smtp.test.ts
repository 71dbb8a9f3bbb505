import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvVar, HELD_PAYLOAD_PREFIX, PAYLOAD_KEY_PREFIX } from '../../lambdas/shared/names.ts';
import type { BatonApp } from '../../lib/app.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import {
  SMTP_AUTH_FAILURE_THRESHOLD,
  SMTP_TEMPORARY_FAILURE_THRESHOLD,
} from '../../lib/constructs/monitoring.ts';
import {
  bundleServer,
  SMTP_CONTAINER_INSIGHTS_REASON,
  SMTP_DRAIN_SECONDS,
  SMTP_ENTRY,
  SMTP_ENVIRONMENT_REASON,
  SMTP_IMAGES,
  SMTP_NLB_ACCESS_LOGS_REASON,
  SMTP_OPEN_INGRESS_REASON,
  SMTP_PORTS,
  SMTP_SERVICE,
  SMTP_STOP_TIMEOUT_SECONDS,
} from '../../lib/constructs/smtp-service.ts';
import {
  acknowledgementsOf,
  asArray,
  buildBaton,
  type CfnResource,
  environmentOf,
  logicalIdOf,
  permissionsOf,
  props,
  referencedId,
  resourceOf,
  resourcesOfType,
  statementsOf,
  synthTemplate,
  validationReportOf,
} from './support.ts';

const WITH_CERTIFICATE = { smtp: true, smtpCertificateSecret: 'baton/smtp-tls' };

interface ContainerJson {
  readonly Name: string;
  readonly Image: string;
  readonly Essential?: boolean;
  readonly Command?: unknown[];
  readonly DependsOn?: { ContainerName: string; Condition: string }[];
  readonly MountPoints?: { ContainerPath: string; ReadOnly: boolean; SourceVolume: string }[];
  readonly Environment?: { Name: string; Value: unknown }[];
  readonly StopTimeout?: number;
  readonly ReadonlyRootFilesystem?: boolean;
  readonly PortMappings?: { ContainerPort: number }[];
}

function only(template: Template, type: string): CfnResource {
  const all = Object.values(resourcesOfType(template, type));
  if (all.length !== 1) throw new Error(`expected one ${type}, found ${all.length}`);
  return all[0] as CfnResource;
}

function containers(template: Template): Record<string, ContainerJson> {
  const definitions = props(only(template, 'AWS::ECS::TaskDefinition'))
    .ContainerDefinitions as ContainerJson[];
  return Object.fromEntries(definitions.map((c) => [c.Name, c]));
}

function serverEnvironment(template: Template): Record<string, unknown> {
  return Object.fromEntries((containers(template).Server?.Environment ?? []).map((e) => [e.Name, e.Value]));
}

describe('SMTP front door, off by default', () => {
  it('adds no VPC, cluster, service, load balancer or SMTP output unless smtp=true', () => {
    // Act
    const { template, stack } = synthTemplate();

    // Assess
    for (const type of [
      'AWS::EC2::VPC',
      'AWS::ECS::Cluster',
      'AWS::ECS::Service',
      'AWS::ECS::TaskDefinition',
      'AWS::ElasticLoadBalancingV2::LoadBalancer',
    ]) {
      expect(Object.keys(resourcesOfType(template, type)), type).toEqual([]);
    }
    expect(Object.keys(template.toJSON().Outputs).filter((name) => name.startsWith('Smtp'))).toEqual([]);
    expect(stack.smtp).toBeUndefined();
  });

  it('gives the senders 512 MB with smtp=true, for its 25 MB messages, and keeps 256 MB without', () => {
    // Act
    const memory = (context: Record<string, unknown>) =>
      Object.values(resourcesOfType(synthTemplate({ context }).template, 'AWS::Lambda::Function'))
        .map((fn) => props(fn))
        .filter((p) => String(p.Description ?? '').startsWith('Sends queued'))
        .map((p) => p.MemorySize);

    // Assess
    expect(memory({})).toEqual([256, 256]);
    expect(memory(WITH_CERTIFICATE)).toEqual([512, 512]);
  });
});

describe('SMTP front door, on with a certificate', () => {
  let template: Template;
  let stack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate({ context: WITH_CERTIFICATE }));
  });

  it('synthesizes without CDK warnings', () => {
    // Act
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.anyValue());

    // Assess
    expect(warnings).toEqual([]);
  });

  it('runs two arm64 Fargate tasks, one in each of two Availability Zones, without a NAT gateway', () => {
    // Act
    const service = props(only(template, 'AWS::ECS::Service'));
    const network = (service.NetworkConfiguration as { AwsvpcConfiguration: Record<string, unknown> })
      .AwsvpcConfiguration;
    const zones = asArray(network.Subnets as unknown[]).map(
      (subnet) =>
        props(resourcesOfType(template, 'AWS::EC2::Subnet')[referencedId(subnet)] ?? { Type: '' })
          .AvailabilityZone,
    );
    const taskDefinition = props(only(template, 'AWS::ECS::TaskDefinition'));

    // Assess
    expect(service).toMatchObject({ LaunchType: 'FARGATE', DesiredCount: 2 });
    expect(network.AssignPublicIp).toBe('ENABLED');
    expect(zones).toEqual([
      { 'Fn::Select': [0, { 'Fn::GetAZs': '' }] },
      { 'Fn::Select': [1, { 'Fn::GetAZs': '' }] },
    ]);
    expect(taskDefinition.RuntimePlatform).toEqual({
      CpuArchitecture: 'ARM64',
      OperatingSystemFamily: 'LINUX',
    });
    expect(taskDefinition.RequiresCompatibilities).toEqual(['FARGATE']);
    expect(Object.keys(resourcesOfType(template, 'AWS::EC2::NatGateway'))).toEqual([]);
  });

  it('listens on 587 and 465 behind an internet-facing NLB that keeps the client address, health on its own port', () => {
    // Act
    const loadBalancer = props(only(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer'));
    const listeners = Object.values(resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::Listener')).map(
      props,
    );
    const groups = resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::TargetGroup');

    // Assess
    expect(loadBalancer).toMatchObject({ Type: 'network', Scheme: 'internet-facing' });
    expect(listeners.map((l) => [l.Port, l.Protocol]).toSorted()).toEqual([
      [465, 'TCP'],
      [587, 'TCP'],
    ]);
    for (const listener of listeners) {
      const [action] = listener.DefaultActions as { TargetGroupArn: unknown; Type: string }[];
      const group = props(groups[referencedId(action?.TargetGroupArn)] ?? { Type: '' });
      expect(group).toMatchObject({
        Port: listener.Port,
        Protocol: 'TCP',
        TargetType: 'ip',
        HealthCheckProtocol: 'HTTP',
        HealthCheckPort: String(SMTP_PORTS.health),
        HealthCheckPath: '/health',
      });
      expect(group.TargetGroupAttributes).toEqual(
        expect.arrayContaining([
          { Key: 'preserve_client_ip.enabled', Value: 'true' },
          { Key: 'deregistration_delay.timeout_seconds', Value: String(SMTP_STOP_TIMEOUT_SECONDS) },
        ]),
      );
    }
  });

  it('admits 587 and 465 from anywhere at the load balancer only; the tasks take traffic from it and send only HTTPS', () => {
    // Prepare
    const smtp = stack.smtp;
    if (smtp === undefined) throw new Error('no SMTP service');
    const groupIds = Object.entries(resourcesOfType(template, 'AWS::EC2::SecurityGroup')).map(
      ([id, group]) => ({
        id,
        description: String(props(group).GroupDescription),
        ingress: props(group).SecurityGroupIngress,
        egress: props(group).SecurityGroupEgress,
      }),
    );
    const lb = groupIds.find((g) => g.description.includes('load balancer'));
    const task = groupIds.find((g) => g.description.includes('tasks'));
    const ingressRules = Object.values(resourcesOfType(template, 'AWS::EC2::SecurityGroupIngress')).map(
      props,
    );

    // Act
    const openToWorld = [lb, task].map((group) =>
      asArray(group?.ingress as Record<string, unknown>[]).filter((rule) => rule.CidrIp === '0.0.0.0/0'),
    );
    const intoTasks = ingressRules.filter((rule) => referencedId(rule.GroupId) === task?.id);

    // Assess
    expect(openToWorld[0]?.map((rule) => rule.FromPort).toSorted()).toEqual([465, 587]);
    expect(openToWorld[1]).toEqual([]);
    expect(
      intoTasks.map((rule) => [rule.FromPort, referencedId(rule.SourceSecurityGroupId)]).toSorted(),
    ).toEqual(
      [
        [465, lb?.id],
        [587, lb?.id],
        [SMTP_PORTS.health, lb?.id],
      ].toSorted(),
    );
    expect(task?.egress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }),
    ]);
  });

  it('copies the bundle from S3 in an init container, then runs it on a pinned public Node image', () => {
    // Act
    const { FetchBundle: fetch, Server: server } = containers(template);

    // Assess: exact versions, no `latest`, nothing built.
    expect(fetch?.Image).toBe(SMTP_IMAGES.awsCli);
    expect(server?.Image).toBe(SMTP_IMAGES.node);
    for (const image of Object.values(SMTP_IMAGES))
      expect(image).toMatch(/^public\.ecr\.aws\/.+:\d+\.\d+\.\d+(-[a-z-]+)?$/);
    expect(fetch?.Essential).toBe(false);
    expect(fetch?.Command?.slice(0, 2)).toEqual(['s3', 'cp']);
    expect(fetch?.Command).toContainEqual({ Ref: 'AWS::Region' });
    expect(JSON.stringify(fetch?.Command)).toContain('s3://cdk-');
    expect(fetch?.Command?.at(-1)).toBe('/app/main.mjs');
    expect(server?.Command).toEqual(['node', '/app/main.mjs']);
    expect(server?.DependsOn).toEqual([{ ContainerName: 'FetchBundle', Condition: 'SUCCESS' }]);
    expect(server?.MountPoints).toEqual([{ ContainerPath: '/app', ReadOnly: true, SourceVolume: 'app' }]);
    expect(server?.ReadonlyRootFilesystem).toBe(true);
    expect(server?.PortMappings?.map((p) => p.ContainerPort)).toEqual([587, 465, SMTP_PORTS.health]);
  });

  it('gives the server the api function’s environment, the SMTP ports, its name and the certificate secret', () => {
    // Prepare
    const api = environmentOf(template, stack.api.handler.function);
    const shared = Object.keys(api).filter((name) => name.startsWith('BATON_'));

    // Act
    const env = serverEnvironment(template);

    // Assess
    expect(shared.length).toBeGreaterThanOrEqual(11);
    expect(Object.fromEntries(shared.map((name) => [name, env[name]]))).toEqual(
      Object.fromEntries(shared.map((name) => [name, api[name]])),
    );
    expect(env).toMatchObject({
      [EnvVar.smtpPort]: '587',
      [EnvVar.smtpTlsPort]: '465',
      [EnvVar.smtpHealthPort]: String(SMTP_PORTS.health),
      [EnvVar.smtpHostname]: 'smtp.example.com',
      [EnvVar.smtpTlsSecret]: 'baton/smtp-tls',
      [EnvVar.smtpDrainSeconds]: String(SMTP_DRAIN_SECONDS),
      POWERTOOLS_SERVICE_NAME: SMTP_SERVICE,
      POWERTOOLS_METRICS_NAMESPACE: 'Baton',
    });
    expect(env).not.toHaveProperty(EnvVar.smtpLocal);
  });

  it('drains on stop: SIGKILL only after the drain, deregistration as long, a circuit breaker that rolls back', () => {
    // Act
    const service = props(only(template, 'AWS::ECS::Service'));

    // Assess
    expect(containers(template).Server?.StopTimeout).toBe(SMTP_STOP_TIMEOUT_SECONDS);
    expect(SMTP_STOP_TIMEOUT_SECONDS).toBeGreaterThan(SMTP_DRAIN_SECONDS);
    expect(service.DeploymentConfiguration).toEqual({
      DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      MaximumPercent: 200,
      MinimumHealthyPercent: 100,
    });
  });

  it('grants the tasks exactly the api function’s table, queue and bucket access (webhooks: publishing only), plus listing keys, the certificate and the bundle', () => {
    // Prepare
    const smtp = stack.smtp;
    if (smtp === undefined) throw new Error('no SMTP service');
    const apiKeys = `<${logicalIdOf(stack.tables.apiKeys)}>`;
    const { [`<${logicalIdOf(stack.api.handler.logGroup)}>`]: apiLogs, ...api } = permissionsOf(
      template,
      stack.api.handler.role,
    );

    // Act
    const task = permissionsOf(template, smtp.taskDefinition.taskRole);
    const bundle = Object.keys(task).filter((resource) => resource.includes('cdk-hnb659fds-assets-'));

    // Assess: the api's (its own log group aside), the key listing, the certificate, the bundle object.
    expect(apiLogs).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    expect(bundle).toHaveLength(1);
    expect(bundle[0]).toMatch(/\/[0-9a-f]{64}\.\w+$/);
    expect(task).toEqual({
      ...api,
      [apiKeys]: [...new Set([...(api[apiKeys] ?? []), 'dynamodb:Scan'])].toSorted(),
      // Webhooks: the tasks publish the events of what they accept; only the api manages endpoints.
      [`<${logicalIdOf(stack.tables.webhooks)}>`]: ['dynamodb:BatchWriteItem', 'dynamodb:Query'],
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:baton/smtp-tls-??????': [
        'secretsmanager:GetSecretValue',
      ],
      [bundle[0] ?? 'bundle']: ['s3:GetObject'],
    });
  });

  it('uses no wildcard action in any SMTP role (task, execution, flow log)', () => {
    // Act
    const actions = Object.entries(resourcesOfType(template, 'AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('Smtp'))
      .flatMap(([, policy]) => statementsOf(props(policy).PolicyDocument))
      .flatMap((statement) => asArray(statement.Action));

    // Assess
    expect(actions.length).toBeGreaterThan(10);
    expect(actions.filter((action) => action.includes('*'))).toEqual([]);
  });

  it('scales between 2 and smtpMaxTasks, out on CPU or connections per task, in only when both are low', () => {
    // Act
    const target = props(only(template, 'AWS::ApplicationAutoScaling::ScalableTarget'));
    const policies = Object.values(
      resourcesOfType(template, 'AWS::ApplicationAutoScaling::ScalingPolicy'),
    ).map(props);
    const cpu = policies.find((p) => p.PolicyType === 'TargetTrackingScaling');
    const steps = policies.filter((p) => p.PolicyType === 'StepScaling');
    const loadAlarms = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm'))
      .map(props)
      .filter((alarm) => JSON.stringify(alarm.Metrics ?? '').includes('ActiveFlowCount'))
      .filter((alarm) => JSON.stringify(alarm.Metrics).includes('CPUUtilization'));

    // Assess
    expect(target).toMatchObject({
      MinCapacity: 2,
      MaxCapacity: 4,
      ScalableDimension: 'ecs:service:DesiredCount',
    });
    expect(cpu?.TargetTrackingScalingPolicyConfiguration).toMatchObject({
      DisableScaleIn: true,
      PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
    });
    expect(steps).toHaveLength(2);
    expect(loadAlarms).toHaveLength(2);
    expect(JSON.stringify(loadAlarms[0]?.Metrics)).toContain('HealthyHostCount');
    const custom = synthTemplate({ context: { ...WITH_CERTIFICATE, smtpMaxTasks: '7' } }).template;
    expect(props(only(custom, 'AWS::ApplicationAutoScaling::ScalableTarget')).MaxCapacity).toBe(7);
  });

  it('alarms on unhealthy or missing tasks, AUTH failures and 4xx replies, and charts the SMTP rows', () => {
    // Prepare
    const smtp = stack.smtp;
    if (smtp === undefined) throw new Error('no SMTP service');
    const alarms = Object.entries(resourcesOfType(template, 'AWS::CloudWatch::Alarm'))
      .filter(([id]) => id.startsWith('MonitoringSmtp'))
      .map(([id, alarm]) => ({ id, json: JSON.stringify(props(alarm)), props: props(alarm) }));
    const dashboard = JSON.stringify(props(resourceOf(template, stack.monitoring.dashboard)).DashboardBody);

    // Act
    const byId = (part: string) => alarms.find((alarm) => alarm.id.includes(part));

    // Assess
    expect(alarms.map((a) => a.id.replace(/Alarm[0-9A-F]+$/, '')).toSorted()).toEqual([
      'MonitoringSmtpAuthFailures',
      'MonitoringSmtpDown',
      'MonitoringSmtpImplicitTlsUnhealthyTasks',
      'MonitoringSmtpStarttlsUnhealthyTasks',
      'MonitoringSmtpTemporaryFailures',
    ]);
    expect(byId('StarttlsUnhealthy')?.props).toMatchObject({
      MetricName: 'UnHealthyHostCount',
      Statistic: 'Minimum',
    });
    expect(byId('SmtpDown')?.props).toMatchObject({ MetricName: 'HealthyHostCount', Threshold: 1 });
    expect(byId('AuthFailures')?.json).toContain('"MetricName":"smtpAuthFailures"');
    expect(byId('AuthFailures')?.json).toContain(`"Value":"${SMTP_SERVICE}"`);
    expect(byId('AuthFailures')?.props.Threshold).toBe(SMTP_AUTH_FAILURE_THRESHOLD);
    expect(byId('TemporaryFailures')?.json).toContain('"MetricName":"smtpReplies4xx"');
    expect(byId('TemporaryFailures')?.props.Threshold).toBe(SMTP_TEMPORARY_FAILURE_THRESHOLD);
    for (const alarm of alarms) expect(alarm.json, alarm.id).toContain('MonitoringAlarmTopic');
    for (const metric of [
      'smtpConnections',
      'smtpMessagesAccepted',
      'MetricName=\\\\\\"smtpRefusals\\\\\\" reason',
      'smtpReplies4xx',
      'smtpReplies5xx',
      'smtpAuthFailures',
      'ActiveFlowCount',
      'TCP_Client_Reset_Count',
      'UnHealthyHostCount',
    ]) {
      expect(dashboard.includes(metric), metric).toBe(true);
    }
  });

  it('publishes the load balancer’s DNS name and the CNAME record to publish for the SMTP host name', () => {
    // Prepare
    const smtp = stack.smtp;
    if (smtp === undefined) throw new Error('no SMTP service');
    const dnsName = { 'Fn::GetAtt': [logicalIdOf(smtp.loadBalancer), 'DNSName'] };

    // Act
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

    // Assess
    expect(outputs.SmtpLoadBalancerDnsName?.Value).toEqual(dnsName);
    expect(outputs.SmtpDnsRecord?.Value).toEqual({ 'Fn::Join': ['', ['smtp.example.com CNAME ', dnsName]] });
    expect(outputs.SmtpCertificateSecret?.Value).toBe('baton/smtp-tls');
  });
});

describe('SMTP front door, on without a certificate (standby)', () => {
  it('deploys the load balancer and service with no task, no scaling and no TLS secret, and says what to do', () => {
    // Act
    const { template } = synthTemplate({ context: { smtp: 'true' } });
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

    // Assess: a first deployment must not wait for tasks the server would refuse to start.
    expect(props(only(template, 'AWS::ECS::Service')).DesiredCount).toBe(0);
    expect(Object.keys(resourcesOfType(template, 'AWS::ApplicationAutoScaling::ScalableTarget'))).toEqual([]);
    expect(serverEnvironment(template)).not.toHaveProperty(EnvVar.smtpTlsSecret);
    expect(String(outputs.SmtpCertificateSecret?.Value)).toMatch(
      /^none: no task runs until -c smtpCertificateSecret=/,
    );
    expect(
      Object.keys(resourcesOfType(template, 'AWS::CloudWatch::Alarm')).filter((id) =>
        id.includes('SmtpDown'),
      ),
    ).toEqual([]);
  });

  it('decrypts a certificate secret under a customer key only through Secrets Manager', () => {
    // Prepare
    const key = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const secret = 'arn:aws:secretsmanager:us-east-1:111122223333:secret:baton/smtp-tls-AbCdEf';
    const { template, stack } = synthTemplate({
      context: { smtp: true, smtpCertificateSecret: secret, smtpCertificateKey: key },
    });
    if (stack.smtp === undefined) throw new Error('no SMTP service');

    // Act
    const statements = Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))
      .flatMap((policy) => statementsOf(props(policy).PolicyDocument))
      .filter((statement) => JSON.stringify(statement).includes('111122223333'));

    // Assess: the complete ARN as given, no suffix pattern added.
    expect(statements).toEqual([
      expect.objectContaining({
        Action: 'secretsmanager:GetSecretValue',
        Resource: expect.arrayContaining([secret]),
      }),
      expect.objectContaining({
        Action: 'kms:Decrypt',
        Resource: key,
        Condition: { StringEquals: { 'kms:ViaService': expect.anything() } },
      }),
    ]);
  });
});

describe('SMTP front door with cdk-nag and the cloud assembly', () => {
  let baton: BatonApp;
  let directory: string;
  let manifest: { files?: Record<string, unknown>; dockerImages?: Record<string, unknown> };

  beforeAll(() => {
    baton = buildBaton({ nag: true, context: WITH_CERTIFICATE });
    directory = baton.app.synth().directory;
    manifest = JSON.parse(readFileSync(join(directory, 'Baton.assets.json'), 'utf8'));
  });

  it('passes the AWS Solutions and Serverless checks with every finding fixed or acknowledged', () => {
    // Act
    const report = validationReportOf(directory);

    // Assess
    expect(report.pluginReports.flatMap((plugin) => plugin.violations)).toEqual([]);
  });

  it('acknowledges only what cannot be fixed for a public SMTP service, each on its resource', () => {
    // Prepare
    const smtp = baton.stack.smtp;
    if (smtp === undefined) throw new Error('no SMTP service');
    const bucket = logicalIdOf(baton.stack.payloads.bucket);
    const lbGroup = smtp.loadBalancer.connections.securityGroups[0];
    if (lbGroup === undefined) throw new Error('the load balancer has no security group');

    // Act
    const acknowledgements = acknowledgementsOf(baton)
      .filter(({ path, id }) => path.startsWith('Baton/Smtp/') && /AwsSolutions-|Serverless-/.test(id))
      .map(({ path, id, reason }) => [path, id, reason]);

    // Assess
    expect(acknowledgements.toSorted()).toEqual(
      [
        [smtp.cluster.node.path, 'Annotation::AwsSolutions-ECS4', SMTP_CONTAINER_INSIGHTS_REASON],
        [smtp.taskDefinition.node.path, 'Annotation::AwsSolutions-ECS2', SMTP_ENVIRONMENT_REASON],
        [lbGroup.node.path, 'Annotation::AwsSolutions-EC23', SMTP_OPEN_INGRESS_REASON],
        [smtp.loadBalancer.node.path, 'Annotation::AwsSolutions-ELB2', SMTP_NLB_ACCESS_LOGS_REASON],
        [
          smtp.taskDefinition.taskRole.node.path,
          `Annotation::AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${PAYLOAD_KEY_PREFIX}*]`,
          expect.stringContaining('payloads/<message id>'),
        ],
        [
          smtp.taskDefinition.taskRole.node.path,
          `Annotation::AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${HELD_PAYLOAD_PREFIX}*]`,
          expect.stringContaining('payloads/held/<message id>.json'),
        ],
      ].toSorted(),
    );
  });

  it('passes them on standby too, as `npm run synth -- -c smtp=true` (no certificate) does', () => {
    // Prepare
    const standby = buildBaton({ nag: true, context: { smtp: 'true' } });

    // Act
    const report = validationReportOf(standby.app.synth().directory);

    // Assess
    expect(report.pluginReports.flatMap((plugin) => plugin.violations)).toEqual([]);
  });

  it('has no Docker image asset: nothing is built at deploy time', () => {
    // Act
    const images = Object.keys(manifest.dockerImages ?? {});

    // Assess
    expect(images).toEqual([]);
    expect(Object.keys(manifest.files ?? {}).length).toBeGreaterThan(0);
  });
});

describe('bundleServer', () => {
  const outdirs: string[] = [];
  const synthBundle = (entry: string) => {
    const outdir = mkdtempSync(join(tmpdir(), 'baton-smtp-bundle-'));
    outdirs.push(outdir);
    const app = new App({ outdir });
    const stack = new Stack(app, 'BundleTest');
    const asset = bundleServer(stack, 'Bundle', entry);
    return { asset, assembly: app.synth(), stack };
  };

  /** Bundles `entry` and copies its main.mjs alone into a fresh directory, as the server container holds it. */
  const bundleAlone = (entry: string) => {
    const { asset, assembly } = synthBundle(entry);
    const manifest = JSON.parse(readFileSync(join(assembly.directory, 'BundleTest.assets.json'), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging: string } }>;
    };
    const [file] = Object.values(manifest.files).filter(({ source }) => source.path.startsWith('asset.'));
    const bare = mkdtempSync(join(tmpdir(), 'baton-smtp-run-'));
    outdirs.push(bare);
    copyFileSync(join(assembly.directory, file?.source.path ?? 'missing'), join(bare, 'main.mjs'));
    return { asset, file, bare };
  };

  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  it('bundles the entry and its dependencies into one ES module, uploaded as a file, that runs with no node_modules', () => {
    // Prepare
    const { asset, file, bare } = bundleAlone('test/infra/fixtures/smtp-entry.ts');

    // Act: what the server container does, in a directory with nothing beside the bundle.
    const run = spawnSync(process.execPath, ['main.mjs'], {
      cwd: bare,
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH ?? '', AWS_EC2_METADATA_DISABLED: 'true' },
    });

    // Assess
    expect(file?.source.packaging).toBe('file');
    expect(asset.s3ObjectKey).toMatch(/^[0-9a-f]{64}\.mjs$/);
    expect(
      readFileSync(join(bare, 'main.mjs'), 'utf8').startsWith(
        'import { createRequire as __batonCreateRequire }',
      ),
    ).toBe(true);
    expect(run.status).toBe(0);
    expect(run.stderr).not.toMatch(/error|cannot find/i);
    expect(JSON.parse(run.stdout)).toEqual({ listens: 'function', subject: 'élè', clients: 2 });
  });

  // The server's entry arrives on another branch; until it is merged there is nothing to bundle.
  it('bundles the real server into a main.mjs that runs in plain Node and refuses to start without a certificate', () => {
    // Prepare
    const { bare } = bundleAlone(SMTP_ENTRY);

    // Act: deployed settings, but no certificate.
    const run = spawnSync(process.execPath, ['main.mjs'], {
      cwd: bare,
      encoding: 'utf8',
      timeout: 30_000,
      env: {
        PATH: process.env.PATH ?? '',
        AWS_REGION: 'us-east-1',
        AWS_EC2_METADATA_DISABLED: 'true',
        POWERTOOLS_METRICS_DISABLED: 'true',
        [EnvVar.smtpHost]: '127.0.0.1',
        [EnvVar.smtpPort]: '0',
      },
    });

    // Assess
    expect(run.status).toBe(1);
    expect(`${run.stdout}${run.stderr}`).toContain(EnvVar.smtpTlsSecret);
  });

  it('names a missing entry when it has to bundle it', () => {
    // Act / Assess
    expect(() => synthBundle('lambdas/smtp/no-such-main.ts')).toThrow(
      /SmtpService: entry "lambdas\/smtp\/no-such-main\.ts" does not exist under .+; it is bundled into main\.mjs/,
    );
  });
});
