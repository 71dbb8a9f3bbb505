/**
 * DKIM signing with mailauth, which brings iconv-lite, encoding-japanese, joi, tldts and libmime
 * (over 1 MB minified). The sender imports this module with `import()`, and only when a key is
 * configured (`loadDkimSigner` in lambdas/sender/app.ts): deployed, SES Easy DKIM signs and the
 * stack bundles the sender without it. Elsewhere in lambdas/, import only its types.
 */
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { PermanentError } from '../../shared/errors.ts';

export interface DkimKey {
  readonly selector: string;
  /** PEM, RSA 2048-bit. */
  readonly privateKey: string;
}

/**
 * Signs a raw message (rsa-sha256, relaxed/relaxed) and returns it with the DKIM-Signature header
 * in front. mailauth signs only what is in `signatureData[]` (its typings suggest top-level fields
 * would do too; they silently produce nothing), so an empty result is treated as a failure rather
 * than sending unsigned mail.
 */
export async function signDkim(raw: Buffer, key: DkimKey, domain: string): Promise<Buffer> {
  const signature = {
    signingDomain: domain,
    selector: key.selector,
    privateKey: key.privateKey,
    algorithm: 'rsa-sha256',
    canonicalization: 'relaxed/relaxed',
  };
  // The top-level copy only satisfies the typings; mailauth 7 reads `signatureData`.
  const result = await dkimSign(raw, { ...signature, signatureData: [signature] });
  if (result.errors.length > 0 || result.signatures === '') {
    const why =
      result.errors.map((e) => e.err?.message ?? 'unknown error').join('; ') || 'no signature produced';
    throw new PermanentError(`DKIM signing failed: ${why}`);
  }
  return Buffer.concat([Buffer.from(result.signatures), raw]);
}

/** {@link signDkim}, for code that may only import this module lazily. */
export type DkimSigner = typeof signDkim;
