import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { generate } from 'selfsigned';
import { EnvVar } from '../lambdas/shared/names.ts';
import { REPO_ROOT } from '../lib/paths.ts';
import { PortInUseError } from './emulators/errors.ts';

export interface DevelopmentCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * Local mode's STARTTLS certificate: self-signed for localhost and 127.0.0.1, made on first start
 * and kept in `<stateDir>/smtp/`, so a client told to trust it keeps trusting it across restarts.
 * Renewed when it has expired or will within a day.
 */
export async function developmentCertificate(stateDir: string): Promise<DevelopmentCertificate> {
  const dir = join(stateDir, 'smtp');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (existsSync(certFile) && existsSync(keyFile) && stillValid(readFileSync(certFile, 'utf8'))) {
    return { certFile, keyFile };
  }
  mkdirSync(dir, { recursive: true });
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + 825 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  writeFileSync(certFile, pems.cert);
  return { certFile, keyFile };
}

function stillValid(pem: string): boolean {
  try {
    return new Date(new X509Certificate(pem).validTo).getTime() > Date.now() + 86_400_000;
  } catch {
    return false;
  }
}

export interface LocalSmtpOptions {
  /** Everything the process sees (the api function's variables, endpoints, fake credentials). */
  readonly env: Readonly<Record<string, string>>;
  readonly port: number;
  readonly certificate: DevelopmentCertificate;
  /** File descriptor the server's log lines go to. */
  readonly log: number;
}

export interface LocalSmtp {
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Runs the real SMTP server (`lambdas/smtp/main.ts`) as its own process on 127.0.0.1, as the
 * container runs it deployed: same entry, same variables, the emulators instead of AWS. Resolves
 * once it logs "smtp listening" with the port it got.
 */
export function startLocalSmtp(options: LocalSmtpOptions): Promise<LocalSmtp> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'lambdas/smtp/main.ts')], {
    env: {
      ...options.env,
      [EnvVar.smtpLocal]: '1',
      [EnvVar.smtpHost]: '127.0.0.1',
      [EnvVar.smtpHostname]: 'localhost',
      [EnvVar.smtpPort]: String(options.port),
      [EnvVar.smtpTlsCertFile]: options.certificate.certFile,
      [EnvVar.smtpTlsKeyFile]: options.certificate.keyFile,
      POWERTOOLS_SERVICE_NAME: 'smtp',
    },
    // stdin is a pipe only so the server notices when this process dies (main.ts).
    stdio: ['pipe', 'pipe', options.log],
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      // A drain waits for sessions; local mode's stop should not wait for an idle client.
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
    let started = false;
    const failures: string[] = [];
    lines.on('line', (line) => {
      writeFileSync(options.log, `${line}\n`);
      if (started) return;
      let entry: { message?: string; port?: number; error?: string; why?: string } = {};
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.message === 'smtp listening' && typeof entry.port === 'number') {
        started = true;
        resolve({ port: entry.port, process: child, stop });
      } else if (entry.message === 'smtp server could not start') {
        failures.push(entry.why ?? entry.error ?? 'unknown error');
      }
    });
    child.once('exit', (code) => {
      if (started) return;
      const why = failures.join('; ');
      if (/EADDRINUSE/.test(why)) {
        reject(
          new PortInUseError({
            service: 'Baton SMTP',
            port: options.port,
            host: '127.0.0.1',
            envVar: EnvVar.smtpPort,
          }),
        );
      } else {
        reject(new Error(`the SMTP server exited (${code}) before listening: ${why || 'see its log'}`));
      }
    });
  });
}
