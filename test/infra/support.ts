import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { type BatonApp, createApp } from '../../lib/app.ts';
import { REPO_ROOT } from '../../lib/paths.ts';

/** A CloudFormation resource as it appears in the synthesized template. */
export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
  readonly DependsOn?: string[];
}

export interface PolicyStatementJson {
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | string[];
  readonly Resource?: unknown;
  readonly Principal?: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
}

/** The feature flags and settings from cdk.json, so tests synthesize what `cdk deploy` would. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

export interface SynthOptions {
  readonly context?: Record<string, unknown>;
  readonly bundle?: boolean;
  readonly nag?: boolean;
}

/**
 * The Baton app with cdk.json's context plus `context`. Bundling and cdk-nag are off unless asked
 * for: most assertions only need the template, and one test file covers each of those.
 */
export function buildBaton(options: SynthOptions = {}): BatonApp {
  return createApp({
    context: { ...cdkJsonContext(), domain: 'example.com', ...options.context },
    bundle: options.bundle ?? false,
    nag: options.nag ?? false,
  });
}

export interface Synthesized extends BatonApp {
  readonly template: Template;
}

export function synthTemplate(options: SynthOptions = {}): Synthesized {
  const baton = buildBaton(options);
  return { ...baton, template: Template.fromStack(baton.stack) };
}

/** A cdk-nag finding acknowledged with `Validations.of(construct).acknowledge(...)`. */
export interface Acknowledgement {
  /** Path of the construct the acknowledgement was recorded on. */
  readonly path: string;
  /** As recorded, e.g. `Annotation::AwsSolutions-S1`. */
  readonly id: string;
  readonly reason: string;
}

/** Every acknowledgement in the app, from the construct metadata cdk-nag reads. */
export function acknowledgementsOf({ app }: BatonApp): Acknowledgement[] {
  return app.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id,
          reason,
        })),
      ),
  );
}

/** What `validation-report.json` holds, as much of it as the tests read. */
export interface ValidationReport {
  readonly pluginReports: readonly {
    readonly pluginName: string;
    readonly violations: readonly {
      readonly ruleName: string;
      readonly severity: string;
      readonly violatingConstructs: readonly { readonly constructPath: string }[];
    }[];
  }[];
}

/** The validation report synth writes into a cloud assembly directory. */
export function validationReportOf(directory: string): ValidationReport {
  return JSON.parse(readFileSync(join(directory, 'validation-report.json'), 'utf8')) as ValidationReport;
}

/** Resources of one type, keyed by logical id. */
export function resourcesOfType(template: Template, type: string): Record<string, CfnResource> {
  return template.findResources(type) as Record<string, CfnResource>;
}

export function props(resource: CfnResource): Record<string, unknown> {
  return resource.Properties ?? {};
}

/** `{ "Ref": id }` or `{ "Fn::GetAtt": [id, attr] }` → id. */
export function referencedId(value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    if ('Ref' in value && typeof value.Ref === 'string') return value.Ref;
    if ('Fn::GetAtt' in value && Array.isArray(value['Fn::GetAtt'])) {
      const [id] = value['Fn::GetAtt'] as unknown[];
      if (typeof id === 'string') return id;
    }
  }
  throw new Error(`not a Ref or Fn::GetAtt: ${JSON.stringify(value)}`);
}

export function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

export function statementsOf(document: unknown): PolicyStatementJson[] {
  const statements = (document as { Statement?: PolicyStatementJson[] } | undefined)?.Statement;
  return statements ?? [];
}

/** `Ref`/`Fn::GetAtt`/`Fn::Join` rendered as readable text, e.g. `<TablesMessagesX>/index/bySesMessageId`. */
export function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    if ('Ref' in value) return `<${String(value.Ref)}>`;
    if ('Fn::GetAtt' in value) return `<${String((value['Fn::GetAtt'] as unknown[])[0])}>`;
    if ('Fn::Join' in value) {
      const [separator, parts] = value['Fn::Join'] as [string, unknown[]];
      return parts.map(render).join(separator);
    }
  }
  return JSON.stringify(value);
}

/** resource → sorted actions, over every identity policy attached to the role (Allow only). */
export function permissionsOf(template: Template, role: IConstruct): Record<string, string[]> {
  const roleId = logicalIdOf(role);
  const result: Record<string, Set<string>> = {};
  for (const policy of Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))) {
    const roles = asArray(props(policy).Roles as unknown[]).map(render);
    if (!roles.includes(`<${roleId}>`)) continue;
    for (const statement of statementsOf(props(policy).PolicyDocument)) {
      if (statement.Effect !== 'Allow') throw new Error(`${roleId}: a ${statement.Effect} statement`);
      for (const resource of asArray(statement.Resource)) {
        const key = render(resource);
        result[key] ??= new Set();
        for (const action of asArray(statement.Action)) result[key].add(action);
      }
    }
  }
  return Object.fromEntries(Object.entries(result).map(([key, actions]) => [key, [...actions].sort()]));
}

/** Logical ids of functions, by the handler entry recorded in their metadata. */
export function functionsByEntry(template: Template, entryKey: string): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const [id, fn] of Object.entries(resourcesOfType(template, 'AWS::Lambda::Function'))) {
    const entry = fn.Metadata?.[entryKey];
    if (typeof entry !== 'string') continue;
    result[entry] = [...(result[entry] ?? []), id];
  }
  return result;
}

/** Logical id of an L2 construct's CloudFormation resource. */
export function logicalIdOf(construct: IConstruct): string {
  const cfn = construct.node.defaultChild;
  if (!(cfn instanceof CfnElement)) throw new Error(`${construct.node.path} has no CloudFormation resource`);
  return Stack.of(construct).getLogicalId(cfn);
}

/** The template entry of an L2 construct. */
export function resourceOf(template: Template, construct: IConstruct): CfnResource {
  const id = logicalIdOf(construct);
  const resource = (template.toJSON() as { Resources: Record<string, CfnResource> }).Resources[id];
  if (resource === undefined) throw new Error(`${id} is not in the template`);
  return resource;
}

/** The environment variables of a function construct, as synthesized. */
export function environmentOf(template: Template, fn: IConstruct): Record<string, unknown> {
  const environment = props(resourceOf(template, fn)).Environment as { Variables: Record<string, unknown> };
  return environment.Variables;
}

/** The EmailIdentity the stack created for its primary sending domain. */
export function primaryIdentity(stack: {
  ses: { identities: readonly { created?: { identity: IConstruct } }[] };
}): IConstruct {
  const created = stack.ses.identities[0]?.created?.identity;
  if (created === undefined) throw new Error('the primary sending identity was imported, not created');
  return created;
}
