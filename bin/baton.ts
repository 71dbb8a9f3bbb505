import { createApp } from '../lib/app.ts';
import { BatonConfigError } from '../lib/config.ts';

try {
  createApp().app.synth();
} catch (error) {
  // A setting error already says what to do; a stack trace would only bury it.
  if (!(error instanceof BatonConfigError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
