/**
 * `npm start`: Baton on http://127.0.0.1:3000 with the whole pipeline and no AWS account.
 * Settings come from the environment (docs/local-mode.md).
 */

import { EnvVar } from '../lambdas/shared/names.ts';
import { LocalPortEnvVar, startLocal } from './baton-local.ts';
import { LocalSettingError } from './dev-keys.ts';
import { PortInUseError } from './emulators/errors.ts';
import { type FaultPlan, validateFaultPlan } from './ses-standin/faults.ts';

function portFrom(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    console.error(`${name} must be a port number (0-65535), got "${raw}".`);
    process.exit(2);
  }
  return port;
}

/** A comma list from the environment, trimmed and lower-cased; undefined when unset or empty. */
function listFrom(name: string): string[] | undefined {
  const list = (process.env[name] ?? '')
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter(Boolean);
  return list.length > 0 ? list : undefined;
}

const quiet = process.env.BATON_QUIET === '1';

/** BATON_LOCAL_SES_FAULTS='{"throttleRate":0.3,"rejectRate":0.01}': the SES stand-in misbehaves on purpose. */
function faultsFrom(name: string): FaultPlan | undefined {
  const raw = process.env[name];
  if (!raw) return undefined;
  try {
    return validateFaultPlan(JSON.parse(raw) as FaultPlan);
  } catch (error) {
    console.error(`${name} must be a JSON fault plan like {"throttleRate":0.3}: ${(error as Error).message}`);
    process.exit(2);
  }
}

const faults = faultsFrom('BATON_LOCAL_SES_FAULTS');

/** What to paste into an app's mail settings, and a swaks line to try it. */
function smtpSettings(baton: {
  smtp?: { port: number; certificate: { certFile: string } };
  apiKey: string;
  domains: readonly string[];
}): string {
  if (!baton.smtp) return '';
  const { port, certificate } = baton.smtp;
  return `SMTP (relay any app through the same pipeline):
  Host       127.0.0.1   Port ${port}   Security STARTTLS (self-signed: ${certificate.certFile})
  User       any name (or the key id)
  Password   ${baton.apiKey}
  Try it:
  swaks --server 127.0.0.1:${port} --tls --auth-user app --auth-password ${baton.apiKey} \\
    --from app@${baton.domains[0]} --to success@simulator.amazonses.com
`;
}
const sendingDomains = listFrom('BATON_SENDING_DOMAINS');

try {
  const baton = await startLocal({
    port: portFrom('BATON_PORT', 3000),
    ...(process.env.BATON_API_KEY ? { apiKey: process.env.BATON_API_KEY } : {}),
    domains: listFrom('BATON_DOMAINS') ?? ['example.com'],
    ...(sendingDomains ? { sendingDomains } : {}),
    ...(process.env.BATON_OUTBOX_DIR ? { outboxDir: process.env.BATON_OUTBOX_DIR } : {}),
    ...(process.env.BATON_STATE_DIR ? { stateDir: process.env.BATON_STATE_DIR } : {}),
    ...(process.env.BATON_DKIM_KEY_FILE ? { dkimKeyFile: process.env.BATON_DKIM_KEY_FILE } : {}),
    ...(process.env.BATON_DKIM_SELECTOR ? { dkimSelector: process.env.BATON_DKIM_SELECTOR } : {}),
    ...(process.env.BATON_LOG_LEVEL ? { logLevel: process.env.BATON_LOG_LEVEL } : {}),
    ...(faults ? { faults } : {}),
    ports: {
      dynamodb: portFrom(LocalPortEnvVar.dynamodb, 0),
      sqsSns: portFrom(LocalPortEnvVar.sqsSns, 0),
      ses: portFrom(LocalPortEnvVar.ses, 0),
    },
    smtp: { port: portFrom(EnvVar.smtpPort, 2525) },
    onAccess: quiet ? undefined : (e) => console.log(`${e.method} ${e.path} → ${e.status} (${e.ms} ms)`),
  });

  const from = `app@${baton.domains[0]}`;
  console.log(`
Baton is running locally: the real handlers on emulators, no AWS account.

  API        ${baton.url}
  Console    ${baton.consoleUrl}   (messages, outbox, suppressions, stats; this machine only)
  API key    ${baton.apiKey}
             (${baton.apiKeySource}; set BATON_API_KEY to choose your own)
  Sends from ${baton.domains.join(', ')} (BATON_DOMAINS; SES identities ${baton.sendingDomains.join(', ')})
  Outbox     ${baton.outboxDir}
  Logs       ${baton.logDir}
  DKIM       ${baton.dkimRecords.map((r) => `${r.name} TXT "${r.value}"`).join('\n             ')}

Try it:
  curl -s ${baton.url}/v1/messages \\
    -H "Authorization: Bearer ${baton.apiKey}" -H 'Content-Type: application/json' \\
    -d '{"from":"${from}","to":["success@simulator.amazonses.com"],"subject":"Hello","text":"It works."}'

${smtpSettings(baton)}
Ready in ${(baton.startupMs / 1000).toFixed(1)} s. Ctrl-C stops.`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping Baton…`);
    await baton.stop();
    console.log('Stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
} catch (error) {
  // These say what to change; a stack trace would only bury it.
  if (error instanceof PortInUseError || error instanceof LocalSettingError) {
    console.error(`\nBaton could not start: ${error.message}`);
  } else {
    console.error(
      '\nBaton could not start:',
      error instanceof Error ? (error.stack ?? error.message) : error,
    );
  }
  process.exit(1);
}
