import { ConfigurationError } from './errors.ts';
import type { EnvVarName } from './names.ts';

/** Reads a required variable; the error names it so a misconfigured function is obvious in logs. */
export function requiredEnv(name: EnvVarName, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new ConfigurationError(`environment variable ${name} is required but not set`);
  }
  return value;
}

export function optionalEnv(name: EnvVarName, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

export function numberEnv(name: EnvVarName, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = optionalEnv(name, env);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConfigurationError(`environment variable ${name} must be a positive number, got "${raw}"`);
  }
  return value;
}

/** A port number (0-65535; 0 picks a free one) from the environment, or `fallback` when unset. */
export function portEnv(name: EnvVarName, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = optionalEnv(name, env);
  if (raw === undefined) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigurationError(`${name} must be a port number (0-65535), got "${raw}"`);
  }
  return port;
}
