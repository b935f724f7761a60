/**
 * Signed-work helpers for tests: signers from cert dirs (also ones loadCertDir would refuse,
 * such as a foreign CA's operator), signed Exec requests built by hand, a marker file a task
 * appends to (so a test can tell that a refused task never ran), and a job written into Redis
 * by hand, the way an attacker with write access to the queue would.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Queue } from 'bullmq';
import {
  createTaskSigner,
  execTaskId,
  sha256Hex,
  signTaskFields,
  type ExecRequest,
  type SignedTarget,
  type SignedTaskFields,
  type TaskSigner,
} from '../../proto/index.js';

/** A signer from a cert dir's raw cert.pem and key.pem (no verification: the agent must refuse bad ones). */
export function rawSigner(certDir: string): TaskSigner {
  return createTaskSigner(readFileSync(join(certDir, 'cert.pem')), readFileSync(join(certDir, 'key.pem')));
}

/** Files tasks append to; the dir is writable by the agent's user. */
export class Markers {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o777);
  }

  /** A fresh marker path (the file does not exist until a task writes it). */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** argv that appends a line to marker `name`. */
  argv(name: string): string[] {
    return ['sh', '-c', 'echo ran >> "$0"', this.path(name)];
  }

  ran(name: string): boolean {
    return existsSync(this.path(name));
  }

  /** Creates marker `name` empty (for tests that count lines). */
  touch(name: string): void {
    writeFileSync(this.path(name), '');
    chmodSync(this.path(name), 0o666);
  }
}

export interface SignedExecOptions {
  runId: string;
  taskId: string;
  argv: string[];
  target: SignedTarget;
  env?: Record<string, string>;
  stdin?: Buffer;
  /** Default: an hour from now. */
  expiresAtUnixMs?: number;
  /** Default: now. */
  signedAtUnixMs?: number;
  maxRounds?: number;
  /** The request's task id; default execTaskId(runId, taskId). */
  execId?: string;
}

/** An Exec request signed by `signer` exactly as a scheduler would forward it. */
export function signedExec(signer: TaskSigner, o: SignedExecOptions): ExecRequest & { signed: NonNullable<ExecRequest['signed']> } {
  const stdin = o.stdin ?? Buffer.alloc(0);
  const fields: SignedTaskFields = {
    runId: o.runId,
    taskId: o.taskId,
    argv: o.argv,
    env: o.env ?? {},
    stdinSha256: sha256Hex(stdin),
    workDir: '',
    timeoutMs: 0,
    outputCapBytes: 0,
    target: o.target,
    maxRounds: o.maxRounds ?? 1,
    expiresAtUnixMs: o.expiresAtUnixMs ?? Date.now() + 3600_000,
    signedAtUnixMs: o.signedAtUnixMs ?? Date.now(),
  };
  return {
    taskId: o.execId ?? execTaskId(o.runId, o.taskId),
    argv: o.argv,
    env: fields.env,
    stdin,
    timeoutMs: 0,
    outputCapBytes: 0,
    signed: {
      runId: o.runId,
      taskId: o.taskId,
      target: o.target,
      expiresAtUnixMs: fields.expiresAtUnixMs,
      maxRounds: fields.maxRounds,
      signature: signTaskFields(fields, signer),
      signerCertPem: signer.certPem,
      signedAtUnixMs: fields.signedAtUnixMs,
    },
  };
}

/** Adds a job straight to the queue (no validation, no signing): what a Redis writer can do. */
export async function addJobByHand(queue: Queue, jobId: string, data: Record<string, unknown>): Promise<void> {
  await queue.add('_agents', data, { jobId, attempts: 1, removeOnComplete: true });
}
