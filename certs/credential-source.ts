/**
 * Client credentials a long-lived process (the scheduler daemon, a long `gaxx run`, the
 * dashboard) asks for again before each connection or call, so that a certificate replaced
 * while it runs (re-issued after a `gaxx certs revoke`, renewed, or put in its dir by hand) is
 * used from then on without a restart.
 */
import type { CertBundle } from './certdir.js';

export interface CredentialSource {
  /**
   * The bundle to use now: the same object for as long as nothing changed (callers compare it
   * to the one they connected with), cheap to ask (a stat or two). Never rejects: a failed
   * reload keeps the bundle in force and is reported by the source.
   */
  current(): Promise<CertBundle>;
}

/** A fixed bundle, or a source of the bundle in force. */
export type Credentials = CertBundle | CredentialSource;

/** The bundle `creds` stands for now. */
export function currentCredentials(creds: Credentials): Promise<CertBundle> {
  return 'current' in creds ? creds.current() : Promise.resolve(creds);
}
