import { describe, expect, it } from 'vitest';
import { ConsoleGuard, hostAllowed, originAllowed } from '../../../local/console/security.ts';

// The console acts with the development key, so a page on another site must not drive it: the
// Host check stops DNS rebinding, the token stops cross-site form posts.

describe('the console Host check', () => {
  it('accepts 127.0.0.1 and localhost on the port the console listens on', () => {
    // Act
    const accepted = ['127.0.0.1:3000', 'localhost:3000', 'LOCALHOST:3000'].map((h) => hostAllowed(h, 3000));

    // Assess
    expect(accepted).toEqual([true, true, true]);
  });

  it('refuses a rebound name, another port, a missing port and a missing header', () => {
    // Act
    const refused = ['evil.example:3000', 'evil.example', '127.0.0.1:3001', '127.0.0.1', '', undefined].map(
      (h) => hostAllowed(h, 3000),
    );

    // Assess
    expect(refused).toEqual([false, false, false, false, false, false]);
  });

  it('accepts a POST with no Origin or the console’s own, and refuses a foreign or opaque one', () => {
    // Act
    const answers = [
      undefined,
      'http://127.0.0.1:3000',
      'http://localhost:3000',
      'http://evil.example',
      'null',
      'http://127.0.0.1:3001',
    ].map((o) => originAllowed(o, 3000));

    // Assess
    expect(answers).toEqual([true, true, true, false, false, false]);
  });
});

describe('the console CSRF token', () => {
  it('accepts the token issued for the session cookie', () => {
    // Prepare
    const guard = new ConsoleGuard();
    const session = guard.newSession();

    // Act
    const ok = guard.tokenValid(session, guard.tokenFor(session));

    // Assess
    expect(ok).toBe(true);
  });

  it('refuses a missing token, a missing cookie, another session’s token and another instance’s', () => {
    // Prepare
    const guard = new ConsoleGuard();
    const other = new ConsoleGuard();
    const session = guard.newSession();
    const second = guard.newSession();

    // Act
    const answers = [
      guard.tokenValid(session, undefined),
      guard.tokenValid(session, ''),
      guard.tokenValid(undefined, guard.tokenFor(session)),
      guard.tokenValid(session, guard.tokenFor(second)),
      guard.tokenValid(session, other.tokenFor(session)),
      guard.tokenValid(session, `${guard.tokenFor(session)}x`),
    ];

    // Assess
    expect(answers).toEqual([false, false, false, false, false, false]);
  });

  it('reads its session from a Cookie header among others', () => {
    // Prepare
    const guard = new ConsoleGuard();
    const session = guard.newSession();

    // Act
    const read = guard.sessionOf(`theme=dark; baton_console=${session}; other=1`);

    // Assess
    expect(read).toBe(session);
    expect(guard.sessionOf('baton_console=not-hex')).toBeUndefined();
    expect(guard.sessionOf(undefined)).toBeUndefined();
  });
});
