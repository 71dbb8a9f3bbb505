import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { errorName } from '../adapters/aws-errors.ts';
import type { SecretReader } from '../adapters/secret.ts';
import { ConfigurationError } from '../shared/errors.ts';

export interface Certificate {
  readonly cert: string;
  readonly key: string;
}

export type CertificateSource =
  | { readonly kind: 'files'; readonly certFile: string; readonly keyFile: string }
  | { readonly kind: 'secret'; readonly secretId: string };

/**
 * Reads the SMTP certificate: PEM files (local mode's generated pair), or a Secrets Manager secret
 * holding `{"certificate": "<PEM chain>", "privateKey": "<PEM>"}` (deployed). The pair is checked
 * by building a TLS context from it, so a broken secret fails here with words instead of in the
 * middle of a client's handshake. Errors never carry the key.
 */
export async function loadCertificate(
  source: CertificateSource,
  secrets: SecretReader = new SecretsManagerClient({}),
): Promise<Certificate> {
  let pair: Certificate;
  if (source.kind === 'files') {
    pair = { cert: await readFile(source.certFile, 'utf8'), key: await readFile(source.keyFile, 'utf8') };
  } else {
    let text: string | undefined;
    try {
      text = (await secrets.send(new GetSecretValueCommand({ SecretId: source.secretId }))).SecretString;
    } catch (error) {
      throw new ConfigurationError(`reading the SMTP certificate secret failed: ${errorName(error)}`, {
        cause: error,
      });
    }
    pair = parseCertificateSecret(text);
  }
  try {
    createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (error) {
    throw new ConfigurationError(
      `the SMTP certificate and key do not form a usable TLS pair (${(error as Error).message.split('\n')[0]})`,
    );
  }
  return pair;
}

export function parseCertificateSecret(text: string | undefined): Certificate {
  let value: unknown;
  try {
    value = JSON.parse(text ?? '');
  } catch {
    throw new ConfigurationError(
      'the SMTP certificate secret must be JSON: {"certificate": "<PEM chain>", "privateKey": "<PEM key>"}',
    );
  }
  const { certificate, privateKey } = (value ?? {}) as { certificate?: unknown; privateKey?: unknown };
  if (typeof certificate !== 'string' || !certificate.includes('BEGIN CERTIFICATE')) {
    throw new ConfigurationError('the SMTP certificate secret has no PEM "certificate"');
  }
  if (typeof privateKey !== 'string' || !privateKey.includes('PRIVATE KEY')) {
    throw new ConfigurationError('the SMTP certificate secret has no PEM "privateKey"');
  }
  return { cert: certificate, key: privateKey };
}
