import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname as osHostname } from 'node:os';
import type { SMTPServer } from 'smtp-server';
import { frontDoorAdapters } from '../adapters/front-door.ts';
import { CachedKeyDirectory, DEFAULT_KEY_CACHE_SECONDS } from '../domain/keys/key-cache.ts';
import { numberEnv, optionalEnv, portEnv } from '../shared/env.ts';
import { ConfigurationError } from '../shared/errors.ts';
import { EnvVar } from '../shared/names.ts';
import { describeError, logger } from '../shared/observability.ts';
import { BatonSmtp } from './server.ts';
import { type CertificateSource, loadCertificate } from './tls.ts';

/** 25 MiB: SES takes 40 MB once encoded, and a job carries attachments base64 like the message. */
export const DEFAULT_SMTP_MAX_BYTES = 25 * 1024 * 1024;

export interface RunningSmtp {
  readonly port: number;
  readonly tlsPort: number | null;
  readonly healthPort: number | null;
  readonly smtp: BatonSmtp;
  /** Drains (421 to new commands, DATA in flight finishes) and closes everything. */
  stop(): Promise<void>;
}

/**
 * Starts the SMTP front door from its environment (the api's table, queue and bucket variables
 * plus BATON_SMTP_*): the submission port with STARTTLS, the implicit-TLS port when set, and the
 * health port the load balancer checks. Without a certificate it refuses to start, unless in local
 * mode (loopback only), where AUTH is offered in clear text.
 */
export async function startSmtp(env: NodeJS.ProcessEnv = process.env): Promise<RunningSmtp> {
  const local = optionalEnv(EnvVar.smtpLocal, env) === '1';
  const source = certificateSource(env);
  if (!source && !local) {
    throw new ConfigurationError(
      `the SMTP server needs a TLS certificate: set ${EnvVar.smtpTlsSecret} (or ${EnvVar.smtpTlsCertFile} and ${EnvVar.smtpTlsKeyFile})`,
    );
  }
  // Local mode offers AUTH in clear text: only where no other machine can listen in.
  const host = optionalEnv(EnvVar.smtpHost, env) ?? (local ? '127.0.0.1' : '0.0.0.0');
  if (local && !isLoopback(host)) {
    throw new ConfigurationError(
      `local mode (${EnvVar.smtpLocal}=1) offers AUTH in clear text, so it listens on 127.0.0.1 only; ${EnvVar.smtpHost} is "${host}"`,
    );
  }
  const certificate = source ? await loadCertificate(source) : undefined;
  const door = await frontDoorAdapters(env);
  const maxBytes = numberEnv(EnvVar.smtpMaxBytes, DEFAULT_SMTP_MAX_BYTES, env);
  const smtp = new BatonSmtp(
    {
      ...door,
      // Every key, for the checks before a caller says who it is; re-read at most every TTL (a
      // revoked key stops relaying within it), and within 60 s even while the table is down.
      directory: new CachedKeyDirectory(door.keyStore, {
        ttlSeconds: numberEnv(EnvVar.keyCacheSeconds, DEFAULT_KEY_CACHE_SECONDS, env),
        clock: door.clock,
      }),
    },
    {
      hostname: optionalEnv(EnvVar.smtpHostname, env) ?? osHostname(),
      maxBytes,
      maxJobBytes: Math.ceil(maxBytes * 1.1) + 1_000_000,
      local,
      ...(certificate ? { tls: certificate } : {}),
      maxConnectionsPerSource: numberEnv(EnvVar.smtpMaxConnectionsPerSource, 20, env),
      drainMs: numberEnv(EnvVar.smtpDrainSeconds, 25, env) * 1000,
    },
  );
  const closers: Array<() => Promise<void>> = [];
  const port = await listen(smtp.createServer(false), portEnv(EnvVar.smtpPort, 587, env), host);
  const tlsPortSetting = optionalEnv(EnvVar.smtpTlsPort, env);
  const tlsPort =
    tlsPortSetting !== undefined && certificate
      ? await listen(smtp.createServer(true), portEnv(EnvVar.smtpTlsPort, 465, env), host)
      : null;
  let healthPort: number | null = null;
  if (optionalEnv(EnvVar.smtpHealthPort, env) !== undefined) {
    const health = healthServer(smtp);
    healthPort = await listen(health, portEnv(EnvVar.smtpHealthPort, 8080, env), host);
    closers.push(() => new Promise((resolve) => health.close(() => resolve())));
  }
  if (source) {
    // A renewed certificate is picked up without a restart; a failed read keeps the current one.
    const every = numberEnv(EnvVar.smtpTlsReloadSeconds, 300, env) * 1000;
    const timer = setInterval(() => {
      loadCertificate(source).then(
        (pair) => smtp.updateCertificate(pair),
        (error: unknown) => logger.error('smtp certificate reload failed', describeError(error)),
      );
    }, every);
    timer.unref();
    closers.push(async () => clearInterval(timer));
  }
  logger.info('smtp listening', { port, tlsPort, healthPort, local });
  return {
    port,
    tlsPort,
    healthPort,
    smtp,
    async stop() {
      await smtp.drain();
      for (const close of closers) await close();
    },
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function certificateSource(env: NodeJS.ProcessEnv): CertificateSource | undefined {
  const secretId = optionalEnv(EnvVar.smtpTlsSecret, env);
  if (secretId) return { kind: 'secret', secretId };
  const certFile = optionalEnv(EnvVar.smtpTlsCertFile, env);
  const keyFile = optionalEnv(EnvVar.smtpTlsKeyFile, env);
  if (certFile && keyFile) return { kind: 'files', certFile, keyFile };
  if (certFile || keyFile) {
    throw new ConfigurationError(
      `set both ${EnvVar.smtpTlsCertFile} and ${EnvVar.smtpTlsKeyFile}, or neither`,
    );
  }
  return undefined;
}

function listen(server: SMTPServer | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    const raw = 'server' in server ? (server as SMTPServer).server : (server as HttpServer);
    raw.once('error', onError);
    server.listen(port, host, () => {
      raw.off('error', onError);
      resolve((raw.address() as AddressInfo).port);
    });
  });
}

/** 200 while taking connections, 503 once draining, so the load balancer stops sending new ones. */
function healthServer(smtp: BatonSmtp): HttpServer {
  return createHttpServer((request, response) => {
    const ok = request.url === '/health' && !smtp.draining;
    response.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'draining\n');
  });
}
