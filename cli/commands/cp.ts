/**
 * `gaxx cp LOCAL F:REMOTE` / `gaxx cp F:REMOTE LOCALDIR`: a file to or from every agent of a
 * fleet (or `--agent` addresses, written `:REMOTE`), over the agents' PutFile/GetFile with the
 * sha256 checked on both ends, several hosts at once.
 */
import { rmdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { exitCodeFor, fileAccessError, GaxxError, isGaxxError, type ErrorCode } from '../../proto/index.js';
import { AgentClient, localFile, type Downloaded } from '../../scheduler/client/index.js';
import { intFlag, JSON_FLAG, stringsFlag, usageError, type Command } from '../command.js';
import type { GaxxConfig } from '../config.js';
import { makeOwnSubdir, prepareUserDir } from '../local-dirs.js';
import { renderTable, type Output } from '../output.js';
import { writeStreamAtomic } from '../../certs/index.js';
import { agentTargets, fleetTargets, operatorCreds, parallelMap, type Target } from '../fleet/targets.js';

const usage = (m: string): GaxxError => usageError('cp', m);

/** One side of a copy: `F:PATH` / `:PATH` (remote) or a local path. */
export type Side = { remote: true; fleet: string; path: string } | { remote: false; path: string };

/**
 * Parses a side; a local path containing ':' is written `./a:b`. The remote path is everything
 * after the colon, line breaks too (a task may name a file so): never read as a local path.
 */
export function parseSide(s: string): Side {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,62})?:(.*)$/s.exec(s);
  if (!m || s.startsWith('./') || s.startsWith('/')) return { remote: false, path: s };
  if (m[2] === '') throw usage(`'${s}' names no remote path`);
  return { remote: true, fleet: m[1] ?? '', path: m[2] as string };
}

/** A host's folder name under LOCALDIR (never a path separator or '..'). */
export function hostDirName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._:[\]-]/g, '_');
  return safe === '.' || safe === '..' || safe === '' ? `_${safe}` : safe;
}

/**
 * Downloads into `file` (in LOCALDIR/<host>) as it arrives: a temp file beside it, renamed into
 * place only once size and sha256 matched, removed on any failure, and so is the host folder when
 * this download made it (a failed copy leaves nothing in LOCALDIR). A local file-system failure
 * is FILE_ACCESS naming it; the transfer's own failures pass through.
 */
async function writeDownload(file: string, fetch: (write: (chunk: Buffer) => Promise<void>) => Promise<Downloaded>): Promise<Downloaded> {
  const hostDir = dirname(file);
  const made = makeOwnSubdir(hostDir, 'the download folder');
  try {
    // Never group- or world-writable, whatever the agent's copy was.
    return await writeStreamAtomic(file, (got) => got.mode & 0o755 || 0o600, fetch);
  } catch (e) {
    // Only while empty: anything another download put there meanwhile stays.
    if (made) rmdirQuietly(hostDir);
    if (isGaxxError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw fileAccessError(e) ?? new GaxxError('FILE_ACCESS', `cannot write ${file}: ${code ?? String(e)}`, { cause: e });
  }
}

function rmdirQuietly(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not empty, or gone: either way nothing of this download is in it.
  }
}

/** REMOTE ending in '/' names a directory: the upload goes into it under the local file's name, as cp(1) does. */
export function remoteTarget(remotePath: string, localPath: string): string {
  return remotePath.endsWith('/') ? `${remotePath}${basename(localPath)}` : remotePath;
}

interface Row {
  host: string;
  address: string;
  ok: boolean;
  bytes: number;
  sha256: string;
  path: string;
  error?: { code: ErrorCode; message: string };
}

async function targetsFor(
  remote: { fleet: string },
  flags: Parameters<Command['run']>[0]['flags'],
  config: GaxxConfig,
  out: Output,
  signal: AbortSignal,
): Promise<Target[]> {
  const agents = agentTargets(flags, config.agent.port, 'cp');
  if (remote.fleet && agents.length) throw usage('name a fleet (F:PATH) or give --agent with :PATH, not both');
  if (!remote.fleet && agents.length === 0) throw usage(':PATH needs --agent ADDR[,ADDR...]; or write F:PATH for a fleet');
  return remote.fleet
    ? fleetTargets(
        config,
        remote.fleet,
        stringsFlag(flags, 'host')
          .flatMap((h) => h.split(','))
          .filter(Boolean),
        out,
        signal,
      )
    : agents;
}

/** The row of a host whose copy an interrupt stopped, or kept from starting. */
function cancelledRow(t: Target, message: string): Row {
  return { host: t.name, address: t.address, ok: false, bytes: 0, sha256: '', path: '', error: { code: 'CANCELLED', message } };
}

async function onAgent(
  t: Target,
  config: GaxxConfig,
  signal: AbortSignal,
  fn: (c: AgentClient) => Promise<Omit<Row, 'host' | 'address' | 'ok'>>,
): Promise<Row> {
  // Hosts not begun when Ctrl-C came are not begun at all: each still gets its row.
  if (signal.aborted) return cancelledRow(t, 'not copied: interrupted before this host was started');
  const c = AgentClient.connect({ address: t.address, ...(t.expect ? { expect: t.expect } : {}) }, operatorCreds(config), {
    connectTimeoutMs: config.agent.connectTimeoutMs,
    token: config.agent.token,
  });
  try {
    return { host: t.name, address: t.address, ok: true, ...(await fn(c)) };
  } catch (e) {
    const code: ErrorCode = isGaxxError(e) ? e.code : 'INTERNAL';
    return { host: t.name, address: t.address, ok: false, bytes: 0, sha256: '', path: '', error: { code, message: (e as Error).message } };
  } finally {
    c.close();
  }
}

export const command: Command = {
  usage: 'gaxx cp [--agent ADDR[,ADDR...]] [--host H[,H...]] [--parallel N] [--json] SRC DST',
  description: [
    'Copies a file to or from agents. `gaxx cp LOCAL F:REMOTE` uploads LOCAL to REMOTE on every',
    'agent of fleet F (--host picks some); `gaxx cp F:REMOTE LOCALDIR` downloads REMOTE from each',
    "into LOCALDIR/<host>/<name>, so one host's file never overwrites another's. With --agent,",
    "write the remote side as :REMOTE. REMOTE is relative to the agent's data dir (a task sees only",
    'its own work dir of it: upload into DIR, then `gaxx run --workdir DIR`); ending in /, it',
    "names a directory, and the upload goes into it under LOCAL's name. Files of up to 1 GiB",
    '(a bigger LOCAL is refused before it is read). The sha256 is checked by the agent on upload',
    'and by gaxx on download, which streams into a temp file beside <name>, renamed into place',
    'only when complete and verified (a failed one leaves nothing, nor a <host> folder it made);',
    'an agent sending more than it announced is cut off at once. A local path with a colon is',
    'written ./a:b, and names that start with a dash go after -- (gaxx cp -- -f F:dir/).',
    'LOCALDIR must be yours (or sticky, as /tmp), and each <host> folder yours and',
    'no symlink: where another user could rename things, a download is refused (exit 7). Exit 0',
    'when every host succeeded, else the code of the first failure (12 when an agent could not be',
    'reached, 10 on a checksum mismatch). Ctrl-C (or SIGTERM, SIGHUP) stops the copies: an upload',
    "cut short leaves the agent's file as it was, a download's temp file is removed, every host",
    'not done is reported CANCELLED (--json too), exit 130; a second Ctrl-C quits at once.',
  ].join('\n'),
  flags: {
    agent: { type: 'string', valueName: 'ADDR[,ADDR...]', multiple: true, help: 'agent addresses instead of a fleet (remote side :PATH)' },
    host: { type: 'string', valueName: 'H[,H...]', multiple: true, help: 'only these hosts of the fleet' },
    parallel: { type: 'string', valueName: 'N', help: 'hosts at once, 1 to 1000 (default 16)' },
    json: { ...JSON_FLAG, help: 'print one JSON array: per host ok, bytes, sha256, path, error' },
  },
  positionals: { names: ['SRC', 'DST'], min: 2, complete: 'fleet-path' },
  examples: ['gaxx cp ./tool.tar.gz web:job/tool.tar.gz', 'gaxx cp web:job/out/report.csv ./reports', 'gaxx cp --agent 10.0.0.5,10.0.0.6 ./x :job/x'],
  handlesInterrupt: true,
  interruptNote: 'stopping the copies',
  async run({ flags, positionals, config, out, signal }) {
    const [src, dst] = (positionals as [string, string]).map(parseSide) as [Side, Side];
    if (src.remote === dst.remote) throw usage('exactly one of SRC and DST must be remote (F:PATH or :PATH)');
    const parallel = intFlag(flags, 'parallel', 'cp', 1, 1000) ?? 16;
    const remote = (src.remote ? src : dst) as Extract<Side, { remote: true }>;
    const targets = await targetsFor(remote, flags, config, out, signal);
    let rows: Row[];
    if (!src.remote) {
      try {
        if (!statSync(src.path).isFile()) throw usage(`'${src.path}' is not a regular file`);
      } catch (e) {
        if (isGaxxError(e)) throw e;
        throw new GaxxError('NOT_FOUND', `cannot read '${src.path}': ${(e as Error).message}`);
      }
      // Sized (over the agents' limit: refused before reading) and hashed once, read again per host as it is sent.
      const local = await localFile(src.path, signal);
      const path = remoteTarget(remote.path, src.path);
      rows = await parallelMap(out, 'gaxx cp: uploading', targets, parallel, (t) =>
        onAgent(t, config, signal, async (c) => {
          const res = await c.putFile(path, local, { mode: local.mode, signal });
          return { bytes: Number(res.size), sha256: res.sha256, path: res.path };
        }),
      );
    } else {
      // LOCALDIR holds one folder per host: a directory of the caller's (or a sticky one, as /tmp).
      const localDir = prepareUserDir(dst.path, 'LOCALDIR');
      const dirs = new Map(targets.map((t) => [hostDirName(t.name), t]));
      if (dirs.size !== targets.length) throw usage('two hosts map to the same folder name; copy them separately');
      rows = await parallelMap(out, 'gaxx cp: downloading', targets, parallel, (t) =>
        onAgent(t, config, signal, async (c) => {
          const file = join(localDir, hostDirName(t.name), basename(remote.path));
          const got = await writeDownload(file, (write) => c.getFile(remote.path, write, { signal }));
          return { bytes: got.size, sha256: got.sha256, path: file };
        }),
      );
    }
    out.result(rows, () =>
      renderTable(rows, [
        { header: 'HOST', get: (r) => r.host },
        { header: 'RESULT', get: (r) => (r.ok ? 'ok' : `${r.error?.code}: ${r.error?.message}`) },
        { header: 'BYTES', get: (r) => (r.ok ? String(r.bytes) : '-') },
        { header: 'SHA256', get: (r) => (r.ok ? r.sha256 : '-') },
      ]),
    );
    // Stopped by Ctrl-C (or SIGTERM, SIGHUP): 130 as for a cancelled run, whatever else failed.
    const failed = rows.find((r) => r.error?.code === 'CANCELLED') ?? rows.find((r) => !r.ok);
    return failed?.error ? exitCodeFor(failed.error.code) : 0;
  },
};
