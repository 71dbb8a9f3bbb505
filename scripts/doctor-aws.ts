/**
 * The doctor's AWS side for the CLI: a stack's sending domains and region (CloudFormation outputs)
 * and SES's view of an identity. Kept apart from scripts/doctor.ts so that the tests can import it.
 * The SDK is imported only with --stack: loading two clients costs about a second of a run that
 * otherwise reads a zone file.
 */
import { readFileSync } from 'node:fs';
import { NodeDns } from '../lambdas/adapters/node-dns.ts';
import type { SesView } from '../lambdas/domain/doctor/checks.ts';
import { REGION_OUTPUT, SENDING_DOMAINS_OUTPUT } from '../lambdas/shared/names.ts';
import { type DoctorDeps, type StackFacts, StackNotFoundError } from './doctor-cli.ts';

export async function describeStack(stack: string, region: string | undefined): Promise<StackFacts> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const client = new CloudFormationClient(region === undefined ? {} : { region });
  try {
    const answer = await client.send(new DescribeStacksCommand({ StackName: stack }));
    const outputs = new Map((answer.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
    const domains = outputs.get(SENDING_DOMAINS_OUTPUT);
    if (domains === undefined) {
      throw new StackNotFoundError(
        `stack ${stack} has no ${SENDING_DOMAINS_OUTPUT} output: is it a Baton stack?`,
      );
    }
    return {
      sendingDomains: domains
        .split(',')
        .map((d) => d.trim())
        .filter((d) => d !== ''),
      region: outputs.get(REGION_OUTPUT) ?? (await client.config.region()),
    };
  } catch (error) {
    // CloudFormation answers an unknown stack with a ValidationError "Stack with id X does not exist".
    if ((error as Error).name === 'ValidationError' && /does not exist/.test((error as Error).message)) {
      throw new StackNotFoundError(
        `there is no stack ${stack}${region === undefined ? '' : ` in ${region}`}`,
        { cause: error },
      );
    }
    throw error;
  } finally {
    client.destroy();
  }
}

export async function readIdentity(identity: string, region: string): Promise<SesView> {
  const [{ SESv2Client }, { readSesIdentity }] = await Promise.all([
    import('@aws-sdk/client-sesv2'),
    import('../lambdas/adapters/ses-identity.ts'),
  ]);
  const client = new SESv2Client({ region });
  try {
    return await readSesIdentity(client, identity);
  } finally {
    client.destroy();
  }
}

/** The real world: process environment, files, DNS and AWS. */
export const realDeps: DoctorDeps = {
  env: process.env,
  readFile: (path) => readFileSync(path, 'utf8'),
  dns: () => new NodeDns(),
  describeStack,
  readIdentity,
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};
