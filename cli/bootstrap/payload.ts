/**
 * What goes to a host: the agent as one bundled file (plus the .proto files the bundle loads
 * from beside itself, when the bundle does not embed them), and the controller's Node binary
 * when the host has no Node >= 20. Kept behind these functions so the bundle's shape can change
 * without touching the install steps.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { GaxxError } from '../../proto/index.js';
import { AGENT_COMPANION_FILES } from '../providers/agent-bundle.js';

/** One file of the agent payload, relative to the agent's install dir. */
export interface PayloadFile {
  path: string;
  data: Buffer;
}

/** The agent bundle renamed to gaxx-agent.mjs, its companion files (launcher, code, code cache), and any proto files beside it. */
export function loadAgentPayload(bundlePath: string): PayloadFile[] {
  let data: Buffer;
  try {
    data = readFileSync(bundlePath);
  } catch (e) {
    throw new GaxxError('NOT_FOUND', `agent bundle ${bundlePath} not found (build it first)`, { cause: e });
  }
  const files: PayloadFile[] = [{ path: 'gaxx-agent.mjs', data }];
  const dir = dirname(bundlePath);
  // The task launcher, the agent's code its entry loads, and that code's V8 cache go beside it.
  for (const name of AGENT_COMPANION_FILES) {
    const p = join(dir, name);
    if (existsSync(p)) files.push({ path: name, data: readFileSync(p) });
  }
  for (const top of ['gaxx', 'grpc']) {
    for (const f of walk(join(dir, top))) if (f.endsWith('.proto')) files.push({ path: relative(dir, f), data: readFileSync(f) });
  }
  if (!files.some((f) => basename(f.path) === 'gaxx-agent.mjs')) throw new GaxxError('INTERNAL', 'agent payload lost its entry');
  return files;
}

function walk(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** `uname -m` names of Node's process.arch values. */
const UNAME_OF: Record<string, string[]> = {
  x64: ['x86_64', 'amd64'],
  arm64: ['aarch64', 'arm64'],
  arm: ['armv7l', 'armv6l'],
  ppc64: ['ppc64le'],
  s390x: ['s390x'],
};

/** True when a Node binary built for `nodeArch` runs on a host whose `uname -m` is `hostArch`. */
export function archMatches(nodeArch: string, hostArch: string): boolean {
  return (UNAME_OF[nodeArch] ?? [nodeArch]).includes(hostArch);
}

/** True for a `node --version` of 20 or newer. */
export function nodeUsable(version: string | undefined): boolean {
  const m = /^v(\d+)\./.exec(version ?? '');
  return m !== null && Number(m[1]) >= 20;
}
