import { describe, expect, it } from 'vitest';
import { numberEnv, optionalEnv, requiredEnv } from '../../../lambdas/shared/env.ts';
import { ConfigurationError } from '../../../lambdas/shared/errors.ts';
import { EnvVar } from '../../../lambdas/shared/names.ts';

describe('env', () => {
  it('reads a required variable', () => {
    // Prepare
    const env = { [EnvVar.messagesTable]: 'Messages-123' };

    // Act
    const value = requiredEnv(EnvVar.messagesTable, env);

    // Assess
    expect(value).toBe('Messages-123');
  });

  it.each([
    ['missing', {}],
    ['blank', { [EnvVar.messagesTable]: '  ' }],
  ])('names a required variable that is %s', (_what, env) => {
    // Prepare / Act
    const read = () => requiredEnv(EnvVar.messagesTable, env);

    // Assess
    expect(read).toThrow(
      new ConfigurationError('environment variable BATON_MESSAGES_TABLE is required but not set'),
    );
    expect(read).toThrow(ConfigurationError);
  });

  it('treats a blank optional variable as absent', () => {
    // Prepare / Act
    const values = [
      optionalEnv(EnvVar.dkimKeyFile, { [EnvVar.dkimKeyFile]: ' ' }),
      optionalEnv(EnvVar.dkimKeyFile, {}),
    ];

    // Assess
    expect(values).toEqual([undefined, undefined]);
  });

  it('reads a positive number and falls back when it is absent', () => {
    // Prepare / Act
    const values = [
      numberEnv(EnvVar.retentionDays, 30, { [EnvVar.retentionDays]: '7' }),
      numberEnv(EnvVar.retentionDays, 30, {}),
    ];

    // Assess
    expect(values).toEqual([7, 30]);
  });

  it.each(['0', '-1', 'ten', 'Infinity'])('refuses %j as a number setting', (raw) => {
    // Prepare / Act
    const read = () => numberEnv(EnvVar.retentionDays, 30, { [EnvVar.retentionDays]: raw });

    // Assess
    expect(read).toThrow(
      new ConfigurationError(
        `environment variable BATON_RETENTION_DAYS must be a positive number, got "${raw}"`,
      ),
    );
  });
});
