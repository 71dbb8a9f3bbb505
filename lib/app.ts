import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { BatonStack } from './baton-stack.ts';
import { configFromContext } from './config.ts';

export interface CreateAppOptions {
  /**
   * CDK context (settings such as `domain`, feature flags). Under the CDK CLI, `cdk.json` and
   * `-c key=value` arrive through the environment and are merged in by `App` itself.
   * @default {}
   */
  readonly context?: Record<string, unknown>;
  /**
   * Cloud assembly directory.
   * @default - `CDK_OUTDIR` under the CLI, else a temporary directory
   */
  readonly outdir?: string;
  /**
   * Bundle the Lambda code with esbuild. Off, the template is complete but the code assets point at
   * the repository itself: enough for tests and for local mode, which only read the template, and
   * never to be deployed.
   * @default true
   */
  readonly bundle?: boolean;
  /**
   * Run the cdk-nag AWS Solutions and Serverless checks and CDK's built-in CloudFormation
   * validation during synth (findings, warnings included, make `synth()` throw; each accepted one is
   * acknowledged, with its reason, on the resource it concerns). Off, synth only writes the
   * template: the fast path for local mode, which reads it and deploys nothing (the validation
   * engine alone costs over a second).
   * @default true
   */
  readonly nag?: boolean;
}

export interface BatonApp {
  readonly app: App;
  readonly stack: BatonStack;
}

/** The stack id, also the CloudFormation stack name. */
export const STACK_ID = 'Baton';

/** Builds the Baton CDK app: one env-agnostic stack, no lookups, so it synthesizes without an account. */
export function createApp(options: CreateAppOptions = {}): BatonApp {
  const context: Record<string, unknown> = { ...options.context };
  // An empty bundling-stacks list is how the CLI's `--exclusively` skips bundling; asset hashes
  // then come from the construct path instead of the bundle, which also keeps synth fast.
  if (options.bundle === false) context['aws:cdk:bundling-stacks'] = [];
  const nag = options.nag ?? true;
  const app = new App({
    context,
    builtinCloudFormationValidation: nag,
    // Construct stack traces only serve validation reports; capturing them slows construction.
    stackTraces: nag,
    ...(options.outdir === undefined ? {} : { outdir: options.outdir }),
  });
  if (nag) {
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  }
  const stack = new BatonStack(app, STACK_ID, { config: configFromContext(app.node) });
  return { app, stack };
}
