import { existsSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { type Duration, Validations } from 'aws-cdk-lib';
import { type IRole, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, type CfnFunction, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENTRY_METADATA_KEY, METRICS_NAMESPACE } from '../../lambdas/shared/names.ts';
import { REPO_ROOT } from '../paths.ts';

export interface BatonFunctionProps {
  /**
   * Handler source relative to the repository root, e.g. `lambdas/api/handler.ts`. Recorded as
   * CloudFormation metadata (`ENTRY_METADATA_KEY`) so local mode runs the very same module.
   */
  readonly entry: string;
  /** Powertools service name: the logger's `service` key and the metrics' `service` dimension. */
  readonly serviceName: string;
  /** What the function is for, shown in the Lambda console. */
  readonly description: string;
  /** Maximum run time of one invocation; queues size their visibility timeout from it. */
  readonly timeout: Duration;
  /** Retention of the function's own log group. */
  readonly logRetention: RetentionDays;
  /**
   * Function-specific environment (names from `EnvVar`); the Powertools and Node options every
   * function needs are added here.
   * @default {}
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Memory in MB. CPU scales with memory; 256 MB keeps MIME building and JSON parsing quick
   * without paying for idle capacity.
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * Constants esbuild substitutes while bundling (`define`: expression → JSON value). A branch they
   * make dead is dropped with the imports in it, e.g. the sender's DKIM signer (SENDER_BUNDLE_DEFINE).
   * @default {}
   */
  readonly define?: Readonly<Record<string, string>>;
}

/**
 * Why no function has X-Ray active tracing (cdk-nag Serverless-LambdaTracing). Exported for the
 * infra tests.
 */
export const NO_TRACING_REASON =
  'X-Ray active tracing is left off on purpose: xray:PutTraceSegments and xray:PutTelemetryRecords ' +
  'support no resource-level permissions, so every role would need an Allow on Resource "*" (a ' +
  'wildcard the least-privilege roles otherwise avoid), and traces are billed per sampled request. ' +
  'The code has no tracer, so traces would show little more than the Lambda service segment; ' +
  'requests are followed by message id in the structured JSON logs and by the EMF metrics and alarms.';

/**
 * Some bundled dependencies are CommonJS and call `require` for Node built-ins, which does not
 * exist in an ES module; esbuild leaves those calls alone, so the bundle defines `require` itself.
 * The alias avoids clashing with a bundled module's own `createRequire` import.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __batonCreateRequire } from 'node:module'; const require = __batonCreateRequire(import.meta.url);";

/**
 * Code that runs with its own role and environment: a function, or the SMTP server's tasks. What a
 * construct hands out (a secret, a queue, the api's tables) it hands out through this, the same way
 * to either.
 */
export interface Workload {
  readonly role: IRole;
  addEnvironment(name: string, value: string): void;
  addToRolePolicy(statement: PolicyStatement): void;
}

/**
 * A Node.js 24 / arm64 function bundled locally with esbuild as an ES module, with its own log
 * group and its own role.
 *
 * The role starts with nothing but write access to its own log group (no AWS managed policy, whose
 * `logs:*` grants would reach every log group); callers add exactly the actions the code calls with
 * `addToRolePolicy`.
 */
export class BatonFunction extends Construct implements Workload {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  /** Handler source relative to the repository root. */
  readonly entry: string;

  constructor(scope: Construct, id: string, props: BatonFunctionProps) {
    super(scope, id);
    const memorySize = props.memorySize ?? 256;
    validate(props, memorySize);
    this.entry = props.entry.split(sep).join('/');

    this.logGroup = new LogGroup(this, 'LogGroup', { retention: props.logRetention });
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the ${props.serviceName} function`,
    });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new NodejsFunction(this, 'Function', {
      entry: join(REPO_ROOT, props.entry),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        // No NODE_OPTIONS=--enable-source-maps: `npm run bench:source-maps` measured it at +21 to
        // +53 ms per cold import and +91 to +162 ms on the first error's stack (about 0.15-0.37 s
        // and 0.6-1.1 s at 256 MB, where a function has a seventh of a vCPU), and +22 to +36 MB of
        // RSS once the map is parsed. The map still ships beside the bundle (below), so a trace's
        // index.mjs:line:column can be resolved after the fact (docs/operations.md "Stack traces").
      },
      bundling: {
        format: OutputFormat.ESM,
        // Prefer the ES module build of dependencies: better tree shaking, fewer CommonJS shims.
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        target: 'node24',
        minify: true,
        // Written beside the bundle for resolving traces offline; Node does not load it at run time.
        sourceMap: true,
        // Mappings are enough for stack traces; embedding every source would double the bundle.
        sourcesContent: false,
        // Pin the SDK the tests ran against instead of whatever version the runtime ships this month.
        bundleAwsSDK: true,
        // No Docker here or in CI: esbuild from node_modules is the bundler.
        forceDockerBundling: false,
        ...(props.define === undefined ? {} : { define: { ...props.define } }),
      },
    });
    (this.function.node.defaultChild as CfnFunction).addMetadata(ENTRY_METADATA_KEY, this.entry);
    Validations.of(this.function).acknowledge({ id: 'Serverless-LambdaTracing', reason: NO_TRACING_REASON });
  }

  /** Sets one environment variable of the function. */
  addEnvironment(name: string, value: string): void {
    this.function.addEnvironment(name, value);
  }

  /** Adds one explicit permission to the function's role. */
  addToRolePolicy(statement: PolicyStatement): void {
    this.role.addToPrincipalPolicy(statement);
  }
}

function validate(props: BatonFunctionProps, memorySize: number): void {
  const entry = normalize(props.entry);
  if (isAbsolute(entry) || entry.startsWith('..')) {
    throw new Error(`BatonFunction: entry must be relative to the repository root, got "${props.entry}"`);
  }
  if (!existsSync(join(REPO_ROOT, entry))) {
    throw new Error(`BatonFunction: entry "${props.entry}" does not exist under ${REPO_ROOT}`);
  }
  if (props.serviceName.trim() === '') {
    throw new Error('BatonFunction: serviceName must not be empty');
  }
  const timeout = props.timeout.toSeconds();
  if (timeout < 1 || timeout > 900) {
    throw new Error(`BatonFunction: timeout must be 1 to 900 seconds, got ${timeout}`);
  }
  if (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10_240) {
    throw new Error(`BatonFunction: memorySize must be an integer from 128 to 10240 MB, got ${memorySize}`);
  }
}
