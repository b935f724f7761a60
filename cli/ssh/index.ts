/** cli/ssh: connections to fleet hosts with verified host keys, known_hosts, commands and uploads. */
export { connectSsh, SSH_ALGORITHMS, type ConnectOptions, type HostKeyPolicy, type SshTarget } from './connect.js';
export { execChecked, execRemote, shellQuote, type RemoteResult } from './exec.js';
export { ed25519PublicBlob, generateEd25519, type Ed25519Pair } from './ed25519.js';
export { ensureSshKeyPair, fingerprintOf, type SshKeyPair } from './keys.js';
export {
  KnownHosts,
  checkHostKey,
  describeKeyBlob,
  entryMatches,
  hashHostName,
  hostLookupName,
  parseKnownHosts,
  type HostKeyVerdict,
  type KnownHostEntry,
} from './known-hosts.js';
export { openSftp, parseSha256sum, sha256Hex, uploadVerified } from './sftp.js';
