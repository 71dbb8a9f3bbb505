import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../lambdas/shared/errors.ts';
import { EnvVar } from '../../../lambdas/shared/names.ts';
import { startSmtp } from '../../../lambdas/smtp/app.ts';

describe('startSmtp: local mode stays on the loopback', () => {
  it('refuses to start local mode (AUTH in clear text, no certificate) on an address other machines reach', async () => {
    // Prepare
    const env = { [EnvVar.smtpLocal]: '1', [EnvVar.smtpHost]: '0.0.0.0', [EnvVar.smtpPort]: '0' };

    // Act
    const started = startSmtp(env);

    // Assess
    await expect(started).rejects.toThrow(ConfigurationError);
    await expect(started).rejects.toThrow(/127\.0\.0\.1/);
  });
});
