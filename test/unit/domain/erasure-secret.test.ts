import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { loadErasureSecret } from '../../../lambdas/adapters/secret.ts';
import { ConfigurationError } from '../../../lambdas/shared/errors.ts';
import { EnvVar } from '../../../lambdas/shared/names.ts';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:BatonErasureSecret-AbCdEf';
const VALUE = 'generatedByCloudFormation0123456789abcdefghijklmnopqrstuvwxyzABCD';

describe('loadErasureSecret', () => {
  const secrets = mockClient(SecretsManagerClient);
  afterEach(() => secrets.reset());

  it('reads the secret by the ARN the stack gives', async () => {
    // Prepare
    secrets.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: VALUE });

    // Act
    const secret = await loadErasureSecret({ [EnvVar.erasureSecretArn]: ARN }, new SecretsManagerClient({}));

    // Assess
    expect(secret).toBe(VALUE);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('takes the value local mode passes, without calling Secrets Manager', async () => {
    // Act
    const secret = await loadErasureSecret(
      {
        [EnvVar.erasureSecret]: 'local-secret-kept-in-the-state-folder-0123',
        [EnvVar.erasureSecretArn]: ARN,
      },
      new SecretsManagerClient({}),
    );

    // Assess
    expect(secret).toBe('local-secret-kept-in-the-state-folder-0123');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('names the missing variable', async () => {
    // Act
    const loading = loadErasureSecret({}, new SecretsManagerClient({}));

    // Assess
    await expect(loading).rejects.toThrow(
      new ConfigurationError(
        'environment variable BATON_ERASURE_SECRET_ARN (or, in local mode, BATON_ERASURE_SECRET) is required but not set',
      ),
    );
  });

  it('fails the cold start with the error name when the secret cannot be read', async () => {
    // Prepare
    secrets
      .on(GetSecretValueCommand)
      .rejects(Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }));

    // Act
    const loading = loadErasureSecret({ [EnvVar.erasureSecretArn]: ARN }, new SecretsManagerClient({}));

    // Assess
    await expect(loading).rejects.toThrow(
      new ConfigurationError('reading the erasure secret failed: AccessDeniedException'),
    );
  });

  it('refuses a secret without a string value', async () => {
    // Prepare
    secrets.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2, 3]) });

    // Act
    const loading = loadErasureSecret({ [EnvVar.erasureSecretArn]: ARN }, new SecretsManagerClient({}));

    // Assess
    await expect(loading).rejects.toThrow(new ConfigurationError('the erasure secret has no string value'));
  });
});
