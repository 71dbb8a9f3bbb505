import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type ApiKey,
  generateApiKey,
  issueKey,
  keyIdOf,
  SCOPES,
  validateKeySpec,
} from '../lambdas/domain/keys/api-key.ts';
import { UncoveredDomainError, uncoveredDomains } from '../lambdas/domain/keys/sending-domains.ts';

/**
 * The development API key: `BATON_API_KEY` when set, else one generated on first start and kept
 * in the state folder, so curl commands keep working across restarts.
 */
export function developmentApiKey(
  stateDir: string,
  fromEnv: string | undefined,
): { token: string; source: string } {
  if (fromEnv?.trim()) return { token: fromEnv.trim(), source: 'BATON_API_KEY' };
  const { value, file, generated } = keptInStateDir(stateDir, 'dev-api-key', () => generateApiKey().token);
  return { token: value, source: generated ? `generated, saved in ${file}` : file };
}

/** The tenant of the development key (its messages are the ones the console lists). */
export const DEVELOPMENT_TENANT = 'dev';

/** A local-mode setting that cannot work (say, a BATON_DOMAINS entry that is no domain); the message says which. */
export class LocalSettingError extends Error {
  override readonly name = 'LocalSettingError';
}

/**
 * The ApiKeys item of the development key: every scope, sending from `domains`. Checked by the same
 * rules as `npm run keys -- create`, so a BATON_DOMAINS typo stops `npm start` in words instead of
 * having every send refused with 403, and, like `keys create`, refused a domain the local
 * deployment's identities (`sendingDomains`) do not cover.
 */
export function developmentKeyItem(
  token: string,
  domains: readonly string[],
  sendingDomains: readonly string[] = domains,
  now = new Date(),
): ApiKey {
  const spec = validateKeySpec({
    tenant: DEVELOPMENT_TENANT,
    name: 'local development key',
    scopes: SCOPES,
    allowedDomains: domains,
  });
  if (!spec.ok) {
    const problems = spec.errors.map(
      (e) => `${e.path.replace('allowedDomains', 'BATON_DOMAINS')} ${e.message}`,
    );
    throw new LocalSettingError(`The development API key cannot be created: ${problems.join('; ')}.`);
  }
  const uncovered = uncoveredDomains(spec.value.allowedDomains, sendingDomains);
  if (uncovered.length > 0) {
    const error = new UncoveredDomainError(
      uncovered,
      sendingDomains,
      'local mode (BATON_SENDING_DOMAINS)',
      'list it in BATON_SENDING_DOMAINS too',
    );
    throw new LocalSettingError(`BATON_DOMAINS: ${error.message}`, { cause: error });
  }
  // The token is given (BATON_API_KEY, or the one kept in the state folder), not generated.
  return issueKey(spec.value, now, () => ({ keyId: keyIdOf(token), token })).key;
}

/** The value in `<stateDir>/<name>`, or a new one from `generate` saved there (owner-only). */
function keptInStateDir(
  stateDir: string,
  name: string,
  generate: () => string,
): { value: string; file: string; generated: boolean } {
  const file = join(stateDir, name);
  if (existsSync(file)) {
    const value = readFileSync(file, 'utf8').trim();
    if (value) return { value, file, generated: false };
  }
  const value = generate();
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return { value, file, generated: true };
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
  return keptInStateDir(stateDir, 'erasure-secret', () => randomBytes(32).toString('hex')).value;
}
