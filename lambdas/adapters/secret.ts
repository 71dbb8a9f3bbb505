import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { optionalEnv } from '../shared/env.ts';
import { ConfigurationError } from '../shared/errors.ts';
import { EnvVar } from '../shared/names.ts';
import { errorName } from './aws-errors.ts';

/** Reads the erasure secret from Secrets Manager (`SecretsManagerClient` or a test double). */
export interface SecretReader {
  send(command: GetSecretValueCommand): Promise<{ SecretString?: string | undefined }>;
}

/**
 * The per-deployment erasure secret, meant to be read once per cold start (a handler awaits it at
 * module scope). Deployed, the stack gives the secret's ARN (`BATON_ERASURE_SECRET_ARN`) and the
 * value comes from Secrets Manager; local mode, which has no Secrets Manager, gives the value itself
 * (`BATON_ERASURE_SECRET`), which then wins. Failures name the variable or the error, never the
 * value, since configuration errors are logged.
 */
export async function loadErasureSecret(
  env: NodeJS.ProcessEnv = process.env,
  client: SecretReader = new SecretsManagerClient({}),
): Promise<string> {
  const value = optionalEnv(EnvVar.erasureSecret, env);
  if (value !== undefined) return value;
  const arn = optionalEnv(EnvVar.erasureSecretArn, env);
  if (arn === undefined) {
    throw new ConfigurationError(
      `environment variable ${EnvVar.erasureSecretArn} (or, in local mode, ${EnvVar.erasureSecret}) is required but not set`,
    );
  }
  let secret: string | undefined;
  try {
    secret = (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
  } catch (error) {
    throw new ConfigurationError(`reading the erasure secret failed: ${errorName(error)}`, { cause: error });
  }
  if (secret === undefined || secret === '') {
    throw new ConfigurationError('the erasure secret has no string value');
  }
  return secret;
}
