/**
 * The file a running local mode leaves in its state folder, saying where it is, for tools such as
 * `npm run keys -- --local`. A module of its own, free of imports, so a tool can read it without
 * loading local mode (and with it the whole CDK).
 */

/** Written to the state folder while local mode runs. */
export const LOCAL_STATE_FILE = 'local.json';

export interface LocalState {
  readonly pid: number;
  readonly url: string;
  readonly region: string;
  readonly endpoints: { readonly dynamodb: string; readonly sqs: string; readonly ses: string };
  /** The api function's environment, resolved: table names and queue URLs under their EnvVar names. */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * The SES identities this local deployment sends from (BATON_SENDING_DOMAINS): `npm run keys --
   * create --local` refuses a key domain they do not cover, as it does for a deployed stack.
   */
  readonly sendingDomains: readonly string[];
}
