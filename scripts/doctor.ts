/**
 * `npm run doctor -- <domain> [--stack <name>] [--region <r>] [--zone <file>] [--json]`: checks a
 * sending domain's DNS and SES identity (docs/doctor.md). Run with `node scripts/doctor.ts`.
 */
import { readFileSync } from 'node:fs';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { NodeDns } from '../lambdas/adapters/node-dns.ts';
import { readSesIdentity } from '../lambdas/adapters/ses-identity.ts';
import { SENDING_DOMAINS_OUTPUT } from '../lambdas/shared/names.ts';
import { type DoctorDeps, runDoctor, type StackFacts, StackNotFoundError } from './doctor-cli.ts';

/** The stack output naming the region (lib/baton-stack.ts). */
const REGION_OUTPUT = 'Region';

async function describeStack(stack: string, region: string | undefined): Promise<StackFacts> {
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

async function readIdentity(identity: string, region: string) {
  const client = new SESv2Client({ region });
  try {
    return await readSesIdentity(client, identity);
  } finally {
    client.destroy();
  }
}

export const realDeps: DoctorDeps = {
  env: process.env,
  readFile: (path) => readFileSync(path, 'utf8'),
  dns: () => new NodeDns(),
  describeStack,
  readIdentity,
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

process.exitCode = await runDoctor(process.argv.slice(2), realDeps);
