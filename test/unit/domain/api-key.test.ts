import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  bearerToken,
  generateApiKey,
  hashToken,
  keyIdOf,
  tokenMatches,
} from '../../../lambdas/domain/keys/api-key.ts';

const TOKEN = 'bt_abcd1234efgh_0123456789abcdefghijKLMNOP-_xyz';

describe('bearerToken', () => {
  it('takes the token from a Bearer authorization header', () => {
    // Prepare
    const header = `Bearer ${TOKEN}`;

    // Act
    const token = bearerToken(header);

    // Assess
    expect(token).toBe(TOKEN);
  });

  it('accepts the scheme in any case and tolerates extra blanks', () => {
    // Prepare
    const header = `bearer \t${TOKEN}  `;

    // Act
    const token = bearerToken(header);

    // Assess
    expect(token).toBe(TOKEN);
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['another scheme', `Basic ${TOKEN}`],
    ['a scheme without a token', 'Bearer '],
    ['two tokens', `Bearer ${TOKEN} other`],
    ['a token glued to the scheme', `Bearer${TOKEN}`],
  ])('finds no token in %s', (_what, header) => {
    // Prepare / Act
    const token = bearerToken(header);

    // Assess
    expect(token).toBeUndefined();
  });
});

describe('keyIdOf', () => {
  it('reads the key id out of a Baton key', () => {
    // Prepare / Act
    const keyId = keyIdOf(TOKEN);

    // Assess
    expect(keyId).toBe('abcd1234efgh');
  });

  it('looks up a foreign token by a digest of itself, never the token', () => {
    // Prepare
    const foreign = 're_legacy_relay_token';

    // Act
    const keyId = keyIdOf(foreign);

    // Assess
    const digest = createHash('sha256').update(foreign, 'utf8').digest('hex');
    expect(keyId).toBe(`x${digest.slice(0, 31)}`);
    expect(keyId).not.toContain('legacy');
  });

  it('treats a Baton-looking token with a short secret as foreign', () => {
    // Prepare
    const short = 'bt_abcd1234efgh_tooshort';

    // Act
    const keyId = keyIdOf(short);

    // Assess
    expect(keyId).toMatch(/^x[0-9a-f]{31}$/);
  });
});

describe('tokenMatches', () => {
  it('matches the token its hash was made from', () => {
    // Prepare
    const stored = hashToken(TOKEN);

    // Act
    const matches = tokenMatches(TOKEN, stored);

    // Assess
    expect(matches).toBe(true);
  });

  it('refuses a token that differs in one character', () => {
    // Prepare
    const stored = hashToken(TOKEN);

    // Act
    const matches = tokenMatches(`${TOKEN.slice(0, -1)}Z`, stored);

    // Assess
    expect(matches).toBe(false);
  });

  it('refuses a stored hash of the wrong length instead of throwing', () => {
    // Prepare
    const truncated = hashToken(TOKEN).slice(0, 10);

    // Act
    const matches = tokenMatches(TOKEN, truncated);

    // Assess
    expect(matches).toBe(false);
  });

  it('stores the SHA-256 of the token in hex, never the token itself', () => {
    // Prepare / Act
    const stored = hashToken(TOKEN);

    // Assess
    expect(stored).toBe(createHash('sha256').update(TOKEN, 'utf8').digest('hex'));
  });
});

describe('generateApiKey', () => {
  it('issues keys in the bt_<keyId>_<secret> format that keyIdOf reads back', () => {
    // Prepare / Act
    const { keyId, token } = generateApiKey();

    // Assess
    expect(keyId).toMatch(/^[a-z0-9]{12}$/);
    expect(token).toMatch(new RegExp(`^bt_${keyId}_[A-Za-z0-9_-]{43}$`));
    expect(keyIdOf(token)).toBe(keyId);
  });

  it('never issues the same key twice', () => {
    // Prepare / Act
    const tokens = new Set(Array.from({ length: 50 }, () => generateApiKey().token));

    // Assess
    expect(tokens.size).toBe(50);
  });
});
