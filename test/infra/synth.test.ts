import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CfnElement, Token } from 'aws-cdk-lib';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ENTRY_METADATA_KEY,
  EnvVar,
  HELD_PAYLOAD_PREFIX,
  PAYLOAD_KEY_PREFIX,
  Route,
} from '../../lambdas/shared/names.ts';
import type { BatonApp } from '../../lib/app.ts';
import { NO_ROTATION_REASON } from '../../lib/constructs/erasure.ts';
import { acknowledgementsOf, buildBaton, type CfnResource, props, validationReportOf } from './support.ts';

/**
 * The full pipeline `cdk synth` runs: esbuild bundling, cdk-nag (AWS Solutions and Serverless) and
 * CDK's CloudFormation validation. The Serverless acknowledgements are listed in nag.test.ts.
 */
describe('synthesis with bundling and cdk-nag', () => {
  let baton: BatonApp;
  let assembly: CloudAssembly;

  beforeAll(() => {
    baton = buildBaton({ bundle: true, nag: true });
    assembly = baton.app.synth();
  });

  it('passes the AWS Solutions and Serverless checks with every finding fixed or acknowledged', () => {
    // Act
    const report = validationReportOf(assembly.directory);

    // Assess: synth would have thrown on a finding (warnings included); the report confirms
    // nothing was downgraded.
    expect(report.pluginReports.flatMap((plugin) => plugin.violations)).toEqual([]);
  });

  it('acknowledges only the missing API Gateway authorizer, on each route, with a specific reason', () => {
    // Act
    const acknowledgements = acknowledgementsOf(baton).filter(({ path }) =>
      path.startsWith('Baton/HttpApi/'),
    );

    // Assess
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const { path, id, reason } of acknowledgements) {
      expect(id).toMatch(/AwsSolutions-APIG4$/);
      expect(path).toMatch(/^Baton\/HttpApi\/\w+Route$/);
      expect(reason.length).toBeGreaterThanOrEqual(20);
      expect(reason).toMatch(/API key/);
    }
    // One per route key, the abuse guard's operator routes included.
    expect(acknowledgements).toHaveLength(Object.values(Route).length);
  });

  it('acknowledges for the payload bucket only its access logs and, per role, its payload and held-job keys', () => {
    // Prepare
    const bucket = baton.stack.resolve(
      (baton.stack.payloads.bucket.node.defaultChild as CfnElement).logicalId,
    ) as string;
    const roles = [
      baton.stack.api.handler.role,
      baton.stack.lanes.transactional.sender.role,
      baton.stack.lanes.broadcast.sender.role,
    ].map((role) => role.node.path);

    // Act
    const acknowledgements = acknowledgementsOf(baton).filter(
      ({ path, id }) =>
        id.includes('AwsSolutions-') &&
        !path.startsWith('Baton/HttpApi/') &&
        !path.startsWith('Baton/Erasure/'),
    );

    // Assess: exactly the findings of the `<bucket>/payloads/*` and `payloads/held/*` resources, nothing wider.
    expect(acknowledgements.map(({ path, id }) => [path, id]).toSorted()).toEqual(
      [
        [baton.stack.payloads.bucket.node.path, 'Annotation::AwsSolutions-S1'],
        ...roles.flatMap((path) => [
          [path, `Annotation::AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${PAYLOAD_KEY_PREFIX}*]`],
          [path, `Annotation::AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${HELD_PAYLOAD_PREFIX}*]`],
        ]),
      ].toSorted(),
    );
    for (const { reason } of acknowledgements) {
      expect(reason).toMatch(/payloads\/\*|payloads\/<message id>|payloads\/held\/<message id>\.json/);
    }
  });

  it('acknowledges for the erasure secret only its missing rotation, which would orphan the tombstones', () => {
    // Act
    const acknowledgements = acknowledgementsOf(baton).filter(
      ({ path, id }) => id.includes('AwsSolutions-') && path.startsWith('Baton/Erasure/'),
    );

    // Assess
    expect(acknowledgements).toEqual([
      {
        path: baton.stack.erasure.secret.node.path,
        id: 'Annotation::AwsSolutions-SMG4',
        reason: NO_ROTATION_REASON,
      },
    ]);
    expect(NO_ROTATION_REASON).toMatch(/tombstone/);
  });

  /** Each function's handler entry and the directory its staged bundle sits in. */
  const bundleDirs = () => {
    const template = assembly.getStackByName('Baton').template as { Resources: Record<string, CfnResource> };
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    return functions.map((fn) => {
      // The code's S3 key is the asset hash; the staged bundle sits in asset.<hash>.
      const s3Key = String((props(fn).Code as { S3Key: unknown }).S3Key);
      return {
        entry: fn.Metadata?.[ENTRY_METADATA_KEY],
        dir: join(assembly.directory, `asset.${s3Key.replace(/\.zip$/, '')}`),
      };
    });
  };
  const senderBundles = () => bundleDirs().filter(({ entry }) => entry === 'lambdas/sender/handler.ts');

  it('bundles every function as a minified ES module that defines require, with a source map', () => {
    // Act
    const bundles = bundleDirs();

    // Assess
    expect(bundles).toHaveLength(6);
    for (const { entry, dir } of bundles) {
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
      expect(
        code.startsWith("import { createRequire as __batonCreateRequire } from 'node:module';"),
        String(entry),
      ).toBe(true);
      expect(code).toContain('const require = __batonCreateRequire(import.meta.url);');
      expect(code).toMatch(/\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
      expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true);
      expect(JSON.parse(readFileSync(join(dir, 'index.mjs.map'), 'utf8'))).not.toHaveProperty(
        'sourcesContent',
      );
    }
  });

  it('bundles the senders without the DKIM signer: no mailauth, deployed SES Easy DKIM signs', () => {
    // Act
    const bundles = senderBundles().map(({ dir }) => ({
      code: readFileSync(join(dir, 'index.mjs'), 'utf8'),
      // The source map names every module that went into the bundle.
      sources: (JSON.parse(readFileSync(join(dir, 'index.mjs.map'), 'utf8')) as { sources: string[] })
        .sources,
    }));

    // Assess: one per lane, each with the sender's own modules but neither the signer nor mailauth.
    expect(bundles).toHaveLength(2);
    for (const { code, sources } of bundles) {
      expect(sources.some((s) => s.endsWith('lambdas/sender/app.ts'))).toBe(true);
      expect(sources.some((s) => s.endsWith('lambdas/domain/delivery/mime.ts'))).toBe(true);
      expect(
        sources.filter((s) =>
          /lambdas\/domain\/dkim\.ts$|node_modules\/(mailauth|iconv-lite|joi|tldts|libmime)\//.test(s),
        ),
      ).toEqual([]);
      // Not toContain: a failure would print the whole bundle.
      expect(code.includes('DKIM-Signature')).toBe(false);
      expect(Buffer.byteLength(code)).toBeLessThan(1024 * 1024);
    }
  });

  it('fails the init of a deployed sender that has a DKIM key configured, naming the variable', () => {
    // Prepare
    const [sender] = senderBundles();
    if (sender === undefined) throw new Error('no sender bundle');
    const env = {
      PATH: process.env.PATH ?? '',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      POWERTOOLS_METRICS_DISABLED: 'true',
      [EnvVar.lane]: 'transactional',
      [EnvVar.dkimKeyFile]: join(assembly.directory, 'no-such-dkim.pem'),
    };

    // Act: what Lambda does at a cold start, import the bundle.
    const init = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `await import(${JSON.stringify(join(sender.dir, 'index.mjs'))});`],
      { env, encoding: 'utf8', timeout: 30_000 },
    );

    // Assess
    expect(init.status).not.toBe(0);
    expect(init.stderr).toContain('ConfigurationError');
    expect(init.stderr).toContain(
      `${EnvVar.dkimKeyFile} is set, but this sender was bundled without a DKIM signer`,
    );
  });

  it('synthesizes an environment-agnostic stack (no account or region lookups)', () => {
    // Act
    const stack = baton.stack;

    // Assess
    expect(Token.isUnresolved(stack.account)).toBe(true);
    expect(Token.isUnresolved(stack.region)).toBe(true);
    expect(readFileSync(join(assembly.directory, 'Baton.template.json'), 'utf8')).not.toMatch(/\b\d{12}\b/);
  });
});

describe('cdk-nag wiring', () => {
  it('fails synthesis when a resource breaks an AWS Solutions rule', () => {
    // Prepare
    const baton = buildBaton({ nag: true });
    new Queue(baton.stack, 'UnprotectedQueue');

    // Act / Assess
    expect(() => baton.app.synth()).toThrow(/AwsSolutions-SQS3[\s\S]*Baton\/UnprotectedQueue/);
  });
});

describe('the fast path (bundle: false, nag: false)', () => {
  it('writes the template without bundling, for local mode to read', () => {
    // Prepare
    const baton = buildBaton({ bundle: false, nag: false });

    // Act
    const assembly = baton.app.synth();

    // Assess
    const staged = readdirSync(assembly.directory).filter((name) => name.startsWith('asset.'));
    expect(staged).toEqual([]);
    expect(assembly.getStackByName('Baton').template).toHaveProperty('Resources');
  });
});
