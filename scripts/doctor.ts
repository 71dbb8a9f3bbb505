/**
 * `npm run doctor -- <domain> [--stack <name>] [--region <r>] [--zone <file>] [--json]`: checks a
 * sending domain's DNS and SES identity (docs/doctor.md). Run with `node scripts/doctor.ts`.
 */
import { realDeps } from './doctor-aws.ts';
import { runDoctor } from './doctor-cli.ts';

process.exitCode = await runDoctor(process.argv.slice(2), realDeps);
