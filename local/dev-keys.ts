import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateApiKey } from '../lambdas/domain/api-key.ts';

/**
 * The development API key: `BATON_API_KEY` when set, else one generated on first start and kept
 * in the state folder, so curl commands keep working across restarts.
 */
export function developmentApiKey(
  stateDir: string,
  fromEnv: string | undefined,
): { token: string; source: string } {
  if (fromEnv?.trim()) return { token: fromEnv.trim(), source: 'BATON_API_KEY' };
  const file = join(stateDir, 'dev-api-key');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return { token, source: file };
  }
  const { token } = generateApiKey();
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, source: `generated, saved in ${file}` };
}

export interface DevelopmentDkim {
  readonly file: string;
  readonly selector: string;
  /** Base64 DER of the public key, the `p=` of the DNS record. */
  readonly publicKey: string;
  readonly generated: boolean;
}

/**
 * The DKIM key local mode signs with: `BATON_DKIM_KEY_FILE` when set, else a 2048-bit RSA key
 * generated at first start under the state folder.
 */
export function developmentDkim(
  stateDir: string,
  selector: string,
  keyFile: string | undefined,
): DevelopmentDkim {
  const file = keyFile ?? join(stateDir, 'dkim', `${selector}.pem`);
  let generated = false;
  if (!keyFile && !existsSync(file)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    generated = true;
  }
  const pem = readFileSync(file, 'utf8');
  const publicKey = createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');
  return { file, selector, publicKey, generated };
}

/** The TXT record that publishes the key for `domain`. */
export function dkimRecord(
  dkim: Pick<DevelopmentDkim, 'selector' | 'publicKey'>,
  domain: string,
): {
  name: string;
  value: string;
} {
  return { name: `${dkim.selector}._domainkey.${domain}`, value: `v=DKIM1; k=rsa; p=${dkim.publicKey}` };
}

/**
 * The erasure secret of local mode (which has no Secrets Manager): generated at first start and kept
 * in the state folder like the keys above, since the tombstones of erased addresses are keyed by an
 * HMAC under it. The functions get the value itself (`BATON_ERASURE_SECRET`).
 */
export function developmentErasureSecret(stateDir: string): string {
  const file = join(stateDir, 'erasure-secret');
  if (existsSync(file)) {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret) return secret;
  }
  const secret = randomBytes(32).toString('hex');
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
