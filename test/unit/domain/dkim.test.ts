import { generateKeyPairSync } from 'node:crypto';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { type DkimKey, signDkim } from '../../../lambdas/domain/delivery/dkim.ts';
import { composeMime } from '../../../lambdas/domain/delivery/mime.ts';
import { PermanentError } from '../../../lambdas/shared/errors.ts';
import { outgoingMessage } from '../../support/builders.ts';
import { headerValue } from '../../support/mime.ts';

let key: DkimKey;
let txtRecord: string;
const lookups: string[] = [];

/** DNS as the verifier sees it: the one TXT record local mode prints for the selector. */
const resolver = async (name: string, type: string): Promise<string[][]> => {
  lookups.push(`${type} ${name}`);
  if (type === 'TXT' && name === 'baton._domainkey.example.com') return [[txtRecord]];
  throw Object.assign(new Error(`no ${type} record for ${name}`), { code: 'ENOTFOUND' });
};

beforeAll(() => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  key = { selector: 'baton', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  txtRecord = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
});

async function composed(): Promise<Buffer> {
  return composeMime(
    outgoingMessage({ subject: 'Grüße aus Baton', html: '<p>Hallo</p>', headers: { 'X-Order-Id': '123' } }),
    { id: 'msg_1', date: new Date('2025-03-01T12:00:00.000Z') },
  );
}

describe('signDkim', () => {
  it('signs so that a DKIM verifier finds the key at <selector>._domainkey.<domain> and passes it', async () => {
    // Prepare
    const raw = await composed();
    lookups.length = 0;

    // Act
    const signed = await signDkim(raw, key, 'example.com');

    // Assess
    const { results } = await dkimVerify(signed, { resolver });
    expect(results.map((r) => [r.status.result, r.signingDomain, r.selector, r.algo])).toEqual([
      ['pass', 'example.com', 'baton', 'rsa-sha256'],
    ]);
    expect(lookups).toEqual(['TXT baton._domainkey.example.com']);
  });

  it('puts one relaxed/relaxed rsa-sha256 DKIM-Signature in front of the untouched message', async () => {
    // Prepare
    const raw = await composed();

    // Act
    const signed = await signDkim(raw, key, 'example.com');

    // Assess
    const signature = headerValue(signed, 'DKIM-Signature');
    expect(signed.toString('latin1')).toMatch(/^DKIM-Signature: /);
    expect(signature).toMatch(/\ba=rsa-sha256;/);
    expect(signature).toMatch(/\bc=relaxed\/relaxed;/);
    expect(signature).toMatch(/\bd=example\.com;/);
    expect(signature).toMatch(/\bs=baton;/);
    expect(signature).toMatch(/\bh=[^;]*\bFrom\b/);
    expect(signed.subarray(signed.length - raw.length).equals(raw)).toBe(true);
  });

  it('produces a signature that no longer verifies once the body is changed', async () => {
    // Prepare
    const signed = (await signDkim(await composed(), key, 'example.com')).toString('latin1');
    const tampered = signed.replace('<p>Hallo</p>', '<p>Pay here</p>');

    // Act
    const { results } = await dkimVerify(Buffer.from(tampered, 'latin1'), { resolver });

    // Assess
    expect(tampered).not.toBe(signed);
    expect(results.map((r) => r.status.result)).toEqual(['neutral']);
    expect(results[0]?.status.comment).toBe('body hash did not verify');
  });

  it('refuses to send unsigned mail when the key cannot be used', async () => {
    // Prepare
    const raw = await composed();

    // Act
    const outcome = signDkim(raw, { selector: 'baton', privateKey: 'not a PEM key' }, 'example.com');

    // Assess
    await expect(outcome).rejects.toBeInstanceOf(PermanentError);
    await expect(outcome).rejects.toThrow(/^DKIM signing failed: .+/);
  });
});
