import { existsSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import { AssetHashType, Aws, BundlingOutput, DockerImage, Duration, Token, Validations } from 'aws-cdk-lib';
import { MathExpression } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import {
  Cluster,
  type ContainerDefinition,
  ContainerDependencyCondition,
  ContainerImage,
  CpuArchitecture,
  Protocol as EcsProtocol,
  FargatePlatformVersion,
  FargateService,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
} from 'aws-cdk-lib/aws-ecs';
import {
  NetworkLoadBalancer,
  type NetworkTargetGroup,
  Protocol,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { type IRole, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { buildSync } from 'esbuild';
import { EnvVar, METRICS_NAMESPACE } from '../../lambdas/shared/names.ts';
import { SMTP_MIN_TASKS } from '../config.ts';
import { secretRead, tableAccess } from '../iam.ts';
import { REPO_ROOT } from '../paths.ts';
import type { ApiHandler } from './api-handler.ts';
import { ESM_REQUIRE_BANNER, type Workload } from './baton-function.ts';

/** The SMTP server's entry, relative to the repository root (plan: `lambdas/smtp/main.ts`). */
export const SMTP_ENTRY = 'lambdas/smtp/main.ts';

/** Powertools service name of the SMTP server: its logs' `service` and its metrics' dimension. */
export const SMTP_SERVICE = 'baton-smtp';

/** Where the tasks listen: submission with STARTTLS, submission with implicit TLS, and health. */
export const SMTP_PORTS = { starttls: 587, implicitTls: 465, health: 8080 } as const;

/**
 * The images the tasks run, public and pinned to an exact version, so nothing is built at deploy
 * time (no Docker daemon needed) and a deployment never picks up a release nobody tested. The Node
 * release is the one the repository's tests run on (package.json devDependency `node`).
 */
export const SMTP_IMAGES = {
  node: 'public.ecr.aws/docker/library/node:24.21.0-bookworm-slim',
  awsCli: 'public.ecr.aws/aws-cli/aws-cli:2.37.4',
} as const;

/** Seconds a draining server lets sessions finish (BATON_SMTP_DRAIN_SECONDS) after SIGTERM. */
export const SMTP_DRAIN_SECONDS = 25;
/**
 * Seconds between SIGTERM and SIGKILL: the drain plus a margin to flush the last log and metric
 * lines. The load balancer's deregistration delay is the same: ECS stops a task only once its
 * targets are deregistered, and sessions opened just before that get this long to end.
 */
export const SMTP_STOP_TIMEOUT_SECONDS = 30;

/** Average CPU of the tasks that target tracking keeps them at (percent). */
export const SMTP_CPU_TARGET = 60;
/**
 * Open client connections per task before another task is added. A session is mostly idle (the
 * client's network is the slow part), so CPU alone would let one task collect thousands of them.
 */
export const SMTP_FLOWS_PER_TASK = 250;

/** Where the init container puts the bundle and the server container reads it. */
const APP_DIR = '/app';
const BUNDLE_FILE = 'main.mjs';

export interface SmtpServiceProps {
  /** The api: the tasks get its environment and exactly its table, queue and bucket grants. */
  readonly api: ApiHandler;
  /** The ApiKeys table, which the server also lists (keys that relay for a network without AUTH). */
  readonly apiKeysTable: ITable;
  /** Name in the greeting; the certificate must cover it and DNS must point it at the load balancer. */
  readonly hostname: string;
  /**
   * Secrets Manager secret (name or ARN) with the TLS certificate and key.
   * @default - none: the service is created on standby, with no task, until one is given
   */
  readonly certificateSecret?: string | undefined;
  /**
   * ARN of the customer managed KMS key the certificate secret is encrypted with.
   * @default - the account's `aws/secretsmanager` key, which needs no grant
   */
  readonly certificateKey?: string | undefined;
  /** The most tasks scaling may run (at least 2). */
  readonly maxTasks: number;
  readonly logRetention: RetentionDays;
  /**
   * The server's entry, relative to the repository root.
   * @default SMTP_ENTRY
   */
  readonly entry?: string;
  /**
   * vCPU units of a task (256 = a quarter vCPU); a valid Fargate size together with `memoryLimitMiB`.
   * @default 256
   */
  readonly cpu?: number;
  /**
   * Memory of a task in MiB. A 25 MiB message is held a few times over while it is parsed and
   * enqueued, so a few of them at once fit in 1 GiB with room to spare; 512 MiB would not.
   * @default 1024
   */
  readonly memoryLimitMiB?: number;
}

/** Why the task definition sets its environment directly (cdk-nag AwsSolutions-ECS2). Exported for the tests. */
export const SMTP_ENVIRONMENT_REASON =
  'The environment holds only names: tables, queues, the payload bucket, ports, the host name and ' +
  'the ids of two secrets. The secrets themselves (TLS certificate and key, erasure key) are read by ' +
  'the server from Secrets Manager at run time, so a renewed certificate is picked up without a ' +
  'restart; ECS secrets injection would fix them at task start.';

/** Why the cluster has no Container Insights (cdk-nag AwsSolutions-ECS4). Exported for the tests. */
export const SMTP_CONTAINER_INSIGHTS_REASON =
  'The service is watched through metrics that cost nothing extra: the service CPU and memory in ' +
  'AWS/ECS, the load balancer and target health in AWS/NetworkELB, and the server own EMF counters ' +
  '(connections, refusals, replies, AUTH failures) with alarms on them. Container Insights would add ' +
  'per-task custom metrics and performance log events to the bill for two small tasks.';

/** Why the load balancer admits the whole internet (cdk-nag AwsSolutions-EC23). Exported for the tests. */
export const SMTP_OPEN_INGRESS_REASON =
  'This is a public mail submission service: legacy apps, printers and monitoring boxes connect to ' +
  'ports 587 and 465 from networks Baton cannot know in advance. Who may relay is decided per API key ' +
  '(its CIDRs, AUTH over TLS) by the server, which sees the real client address (client IP ' +
  'preservation) and refuses a source no key allows at connect. Only these two ports are open.';

/** Why the load balancer has no access logs (cdk-nag AwsSolutions-ELB2). Exported for the tests. */
export const SMTP_NLB_ACCESS_LOGS_REASON =
  'A Network Load Balancer writes access logs only for TLS listeners, and these are TCP listeners: ' +
  'TLS is ended by the SMTP server itself (STARTTLS on 587 cannot be ended by a load balancer), so ' +
  'the log bucket would stay empty. Each session is logged by the server with its client address, ' +
  'and rejected packets by the VPC flow log.';

/**
 * The SMTP front door deployed (issue 12): the server bundled by esbuild into one file, run on a
 * public Node image by ECS Fargate (arm64) in two Availability Zones, behind a Network Load
 * Balancer on 587 and 465 that keeps the client's address.
 *
 * No Docker at deploy time: the bundle is a plain file asset in the CDK asset bucket, and an init
 * container (the AWS CLI image) copies it into a volume the server container mounts read-only.
 *
 * Network: a VPC with public subnets only and no NAT gateway. The tasks get public IPv4 addresses
 * to reach DynamoDB, SQS, S3, Secrets Manager and CloudWatch Logs ($3.65 a month each); a NAT
 * gateway would cost $32.85 a month before traffic, and interface endpoints $14.60 a month each for
 * two zones (four services needed), while the images on public.ecr.aws are not reachable through an
 * endpoint at all. Inbound, the tasks accept only traffic from the load balancer's security group
 * (which works with client IP preservation), so their public addresses are not a way around it;
 * outbound, only HTTPS, so a compromised task cannot speak SMTP to the world itself.
 */
export class SmtpService extends Construct implements Workload {
  readonly vpc: Vpc;
  readonly cluster: Cluster;
  readonly taskDefinition: FargateTaskDefinition;
  readonly server: ContainerDefinition;
  readonly service: FargateService;
  readonly loadBalancer: NetworkLoadBalancer;
  /** One per listener (587, 465), both with every task. */
  readonly targetGroups: readonly NetworkTargetGroup[];
  readonly logGroup: LogGroup;
  readonly bundle: Asset;
  /** The certificate secret, when one is configured. */
  readonly certificateSecret: ISecret | undefined;
  /** False while no certificate is configured: the service then runs no task. */
  readonly active: boolean;
  readonly hostname: string;

  constructor(scope: Construct, id: string, props: SmtpServiceProps) {
    super(scope, id);
    const entry = validate(props);
    this.hostname = props.hostname;
    this.active = props.certificateSecret !== undefined;

    this.vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'Public', subnetType: SubnetType.PUBLIC, cidrMask: 24 }],
      // Nothing uses the default security group. Restricting it takes a custom resource (a Lambda
      // function with a managed policy), which is more to review than the group it would empty.
      restrictDefaultSecurityGroup: false,
    });
    // Rejected packets only: who knocked on which port, for the abuse reports an open port draws,
    // without paying to log every accepted session (the server logs those itself).
    const flowLogs = new LogGroup(this, 'FlowLogs', { retention: props.logRetention });
    this.vpc.addFlowLog('RejectedFlows', {
      destination: FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: FlowLogTrafficType.REJECT,
    });

    this.cluster = new Cluster(this, 'Cluster', { vpc: this.vpc });
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-ECS4',
      reason: SMTP_CONTAINER_INSIGHTS_REASON,
    });

    this.bundle = bundleServer(this, 'Bundle', entry);
    this.logGroup = new LogGroup(this, 'LogGroup', { retention: props.logRetention });

    const taskRole = new Role(this, 'TaskRole', {
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Role of the Baton SMTP server tasks (the init container fetches the bundle with it)',
    });
    this.taskDefinition = new FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: props.cpu ?? 256,
      memoryLimitMiB: props.memoryLimitMiB ?? 1024,
      runtimePlatform: {
        cpuArchitecture: CpuArchitecture.ARM64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
      taskRole,
      volumes: [{ name: 'app' }],
    });
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: SMTP_ENVIRONMENT_REASON,
    });

    const fetch = this.taskDefinition.addContainer('FetchBundle', {
      image: ContainerImage.fromRegistry(SMTP_IMAGES.awsCli),
      essential: false,
      // The asset bucket is in the stack's region; naming it spares the CLI a redirect or a guess.
      command: [
        's3',
        'cp',
        '--only-show-errors',
        '--region',
        Aws.REGION,
        this.bundle.s3ObjectUrl,
        `${APP_DIR}/${BUNDLE_FILE}`,
      ],
      logging: LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: 'fetch' }),
    });
    fetch.addMountPoints({ sourceVolume: 'app', containerPath: APP_DIR, readOnly: false });
    taskRole.addToPrincipalPolicy(
      // The one object, by its content hash: no wildcard, nothing else in the asset bucket.
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [this.bundle.bucket.arnForObjects(this.bundle.s3ObjectKey)],
      }),
    );

    this.server = this.taskDefinition.addContainer('Server', {
      image: ContainerImage.fromRegistry(SMTP_IMAGES.node),
      essential: true,
      command: ['node', `${APP_DIR}/${BUNDLE_FILE}`],
      readonlyRootFilesystem: true,
      stopTimeout: Duration.seconds(SMTP_STOP_TIMEOUT_SECONDS),
      portMappings: Object.values(SMTP_PORTS).map((containerPort) => ({
        containerPort,
        protocol: EcsProtocol.TCP,
      })),
      environment: {
        NODE_ENV: 'production',
        AWS_REGION: Aws.REGION,
        POWERTOOLS_SERVICE_NAME: SMTP_SERVICE,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        [EnvVar.smtpPort]: String(SMTP_PORTS.starttls),
        [EnvVar.smtpTlsPort]: String(SMTP_PORTS.implicitTls),
        [EnvVar.smtpHealthPort]: String(SMTP_PORTS.health),
        [EnvVar.smtpHost]: '0.0.0.0',
        [EnvVar.smtpHostname]: props.hostname,
        [EnvVar.smtpDrainSeconds]: String(SMTP_DRAIN_SECONDS),
      },
      logging: LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: 'smtp' }),
    });
    this.server.addMountPoints({ sourceVolume: 'app', containerPath: APP_DIR, readOnly: true });
    // SUCCESS rather than COMPLETE: a failed copy must not start a server on a missing file.
    this.server.addContainerDependencies({
      container: fetch,
      condition: ContainerDependencyCondition.SUCCESS,
    });

    props.api.shareDataAccess(this);
    // The keys that relay for a network without AUTH are found by listing the table (a
    // paginated scan, cached): a connection is matched against every such key's CIDRs.
    this.addToRolePolicy(tableAccess(props.apiKeysTable, ['dynamodb:Scan']));
    this.certificateSecret = this.useCertificate(props);

    const { loadBalancer, taskSecurityGroup } = this.network();
    this.loadBalancer = loadBalancer;
    this.service = new FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      // On standby (no certificate) no task runs: the server would refuse to start, and a first
      // deployment whose tasks never start fails and rolls the whole stack back.
      desiredCount: this.active ? SMTP_MIN_TASKS : 0,
      assignPublicIp: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      securityGroups: [taskSecurityGroup],
      platformVersion: FargatePlatformVersion.LATEST,
      // Deployments start the new tasks before stopping old ones, and roll back by themselves when
      // the new ones do not become healthy.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
    });

    this.targetGroups = [SMTP_PORTS.starttls, SMTP_PORTS.implicitTls].map((port) => {
      const listener = loadBalancer.addListener(`Listener${port}`, { port, protocol: Protocol.TCP });
      return listener.addTargets(`Tasks${port}`, {
        port,
        protocol: Protocol.TCP,
        targets: [
          this.service.loadBalancerTarget({ containerName: this.server.containerName, containerPort: port }),
        ],
        // IP targets over TCP hide the client behind the load balancer's own address unless this is
        // on, and the server decides by the client's address (key CIDRs, connection limits).
        preserveClientIp: true,
        deregistrationDelay: Duration.seconds(SMTP_STOP_TIMEOUT_SECONDS),
        healthCheck: {
          protocol: Protocol.HTTP,
          port: String(SMTP_PORTS.health),
          path: '/health',
          healthyHttpCodes: '200',
          interval: Duration.seconds(10),
          timeout: Duration.seconds(5),
          healthyThresholdCount: 2,
          unhealthyThresholdCount: 2,
        },
      });
    });

    if (this.active) this.scale(props.maxTasks);
  }

  get role(): IRole {
    return this.taskDefinition.taskRole;
  }

  addEnvironment(name: string, value: string): void {
    this.server.addEnvironment(name, value);
  }

  addToRolePolicy(statement: PolicyStatement): void {
    this.taskDefinition.taskRole.addToPrincipalPolicy(statement);
  }

  /** Client connections per healthy task (NLB active flows over healthy targets of the 587 group). */
  flowsPerTask(): MathExpression {
    const [submission] = this.targetGroups;
    if (submission === undefined) throw new Error('SmtpService: no target group');
    return new MathExpression({
      expression: 'IF(hosts >= 1, flows / hosts, flows)',
      usingMetrics: {
        flows: this.loadBalancer.metrics.activeFlowCount({
          statistic: 'Average',
          period: Duration.minutes(1),
        }),
        hosts: submission.metrics.healthyHostCount({ statistic: 'Average', period: Duration.minutes(1) }),
      },
      period: Duration.minutes(1),
      label: 'connections per task',
    });
  }

  private useCertificate(props: SmtpServiceProps): ISecret | undefined {
    const ref = props.certificateSecret;
    if (ref === undefined) return undefined;
    const secret = ref.startsWith('arn:')
      ? // A complete ARN ends in the six characters Secrets Manager appends to the name.
        /-[A-Za-z0-9]{6}$/.test(ref)
        ? Secret.fromSecretCompleteArn(this, 'Certificate', ref)
        : Secret.fromSecretPartialArn(this, 'Certificate', ref)
      : Secret.fromSecretNameV2(this, 'Certificate', ref);
    this.addEnvironment(EnvVar.smtpTlsSecret, ref);
    this.addToRolePolicy(secretRead(secret));
    if (props.certificateKey !== undefined) {
      this.addToRolePolicy(
        new PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [props.certificateKey],
          // Only to open that secret through Secrets Manager, never to decrypt anything else.
          conditions: {
            StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` },
          },
        }),
      );
    }
    return secret;
  }

  private network(): { loadBalancer: NetworkLoadBalancer; taskSecurityGroup: SecurityGroup } {
    const lbSecurityGroup = new SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: this.vpc,
      description: 'Baton SMTP load balancer: submission from anywhere, on 587 and 465 only',
      allowAllOutbound: false,
    });
    const taskSecurityGroup = new SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: this.vpc,
      description: 'Baton SMTP tasks: only from the load balancer; out, HTTPS to AWS APIs only',
      allowAllOutbound: false,
    });
    for (const port of [SMTP_PORTS.starttls, SMTP_PORTS.implicitTls]) {
      lbSecurityGroup.addIngressRule(Peer.anyIpv4(), Port.tcp(port), `SMTP submission on ${port}`);
    }
    Validations.of(lbSecurityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason: SMTP_OPEN_INGRESS_REASON,
    });
    for (const port of Object.values(SMTP_PORTS)) {
      // Referencing the load balancer's group admits its traffic even with client IP preservation
      // (the packets carry the client's address); health checks come the same way.
      taskSecurityGroup.connections.allowFrom(
        lbSecurityGroup,
        Port.tcp(port),
        `From the load balancer, ${port}`,
      );
    }
    taskSecurityGroup.addEgressRule(
      Peer.anyIpv4(),
      Port.tcp(443),
      'HTTPS to AWS APIs and the image registry',
    );

    const loadBalancer = new NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      securityGroups: [lbSecurityGroup],
      // A zone whose task is down still answers through the other zone's.
      crossZoneEnabled: true,
    });
    Validations.of(loadBalancer).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason: SMTP_NLB_ACCESS_LOGS_REASON,
    });
    return { loadBalancer, taskSecurityGroup };
  }

  /**
   * At least two tasks (one per zone), at most `maxTasks`. Out: on CPU (target tracking) or when
   * connections per task pass SMTP_FLOWS_PER_TASK. In: only when both are low, by one policy on the
   * larger of the two loads, so the two never undo each other (CPU tracking does not scale in).
   */
  private scale(maxTasks: number): void {
    const capacity = this.service.autoScaleTaskCount({ minCapacity: SMTP_MIN_TASKS, maxCapacity: maxTasks });
    capacity.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: SMTP_CPU_TARGET,
      disableScaleIn: true,
      scaleOutCooldown: Duration.seconds(60),
    });
    const minute = Duration.minutes(1);
    const cpuLoad = new MathExpression({
      expression: `FILL(cpu, 0) / ${SMTP_CPU_TARGET}`,
      usingMetrics: { cpu: this.service.metricCpuUtilization({ statistic: 'Average', period: minute }) },
      period: minute,
    });
    const connectionLoad = new MathExpression({
      expression: `FILL(perTask, 0) / ${SMTP_FLOWS_PER_TASK}`,
      usingMetrics: { perTask: this.flowsPerTask() },
      period: minute,
    });
    const load = new MathExpression({
      // Percent of the busier budget: 100 = at the CPU target or at SMTP_FLOWS_PER_TASK. IF rather
      // than MAX over an array: the plainest form metric math takes in an alarm.
      expression: '100 * IF(cpuLoad > connectionLoad, cpuLoad, connectionLoad)',
      usingMetrics: { cpuLoad, connectionLoad },
      period: minute,
      label: 'load (% of the CPU or connection budget)',
    });
    capacity.scaleOnMetric('Load', {
      metric: load,
      scalingSteps: [
        { upper: 40, change: -1 },
        { lower: 100, change: +1 },
        { lower: 200, change: +2 },
      ],
      evaluationPeriods: 3,
      cooldown: Duration.minutes(2),
    });
  }
}

/**
 * The server bundled by esbuild into one ES module with every dependency inside (smtp-server,
 * mailparser, the AWS SDK clients: the Node image has none of them), staged as a single-file asset
 * that is uploaded as is, not zipped. Like the functions' bundling, it runs only when the stack is
 * bundled: synth without bundling (tests, local mode) needs neither esbuild's time nor the entry.
 */
export function bundleServer(scope: Construct, id: string, entry: string): Asset {
  return new Asset(scope, id, {
    path: REPO_ROOT,
    // Hashing the bundle, not the repository: the same code gives the same key.
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Never pulled: local bundling below either succeeds or throws.
      image: DockerImage.fromRegistry('dummy'),
      outputType: BundlingOutput.SINGLE_FILE,
      local: {
        tryBundle(outputDir: string): boolean {
          const source = join(REPO_ROOT, entry);
          if (!existsSync(source)) {
            throw new Error(
              `SmtpService: entry "${entry}" does not exist under ${REPO_ROOT}; it is bundled into ${BUNDLE_FILE}`,
            );
          }
          buildSync({
            entryPoints: [source],
            outfile: join(outputDir, BUNDLE_FILE),
            absWorkingDir: REPO_ROOT,
            bundle: true,
            platform: 'node',
            format: 'esm',
            target: 'node24',
            // Same choices as the functions' bundles (BatonFunction).
            mainFields: ['module', 'main'],
            banner: { js: ESM_REQUIRE_BANNER },
            // Not minified and no source map (a single-file asset has no room for one): a stack trace
            // in the server's log then names the real functions. Size only costs the copy at start.
            minify: false,
            sourcemap: false,
            legalComments: 'none',
            logLevel: 'silent',
          });
          return true;
        },
      },
    },
  });
}

function validate(props: SmtpServiceProps): string {
  const entry = normalize(props.entry ?? SMTP_ENTRY)
    .split('\\')
    .join('/');
  if (isAbsolute(entry) || entry.startsWith('..')) {
    throw new Error(`SmtpService: entry must be relative to the repository root, got "${props.entry}"`);
  }
  if (!Number.isInteger(props.maxTasks) || props.maxTasks < SMTP_MIN_TASKS) {
    throw new Error(
      `SmtpService: maxTasks must be an integer of at least ${SMTP_MIN_TASKS}, got ${props.maxTasks}`,
    );
  }
  if (!Token.isUnresolved(props.hostname) && props.hostname.trim() === '') {
    throw new Error('SmtpService: hostname must not be empty');
  }
  return entry;
}
