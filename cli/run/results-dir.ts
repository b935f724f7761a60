/**
 * `--results DIR`: per task a folder in GNU parallel's `--results` layout,
 * `DIR/1/<input>/{seq,stdout,stderr}`, plus `result.json` (the task's result), written as each
 * result arrives. stdout and stderr hold the exact bytes. The folder name is the task's input
 * record (each-host runs: the host) with `\` written `\\` and `/` written `\_` (as parallel
 * does); an empty name, `.`, `..` or a name longer than 200 bytes is written `\#<seq>`, and a
 * second task with the same input gets `<input>\#<seq>`, so every task has exactly one folder.
 * DIR must not exist yet or be empty: two runs never mix their results.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GaxxError } from '../../proto/index.js';
import type { OutputChunk, TaskResult } from '../../scheduler/index.js';
import { makeOwnSubdir, prepareUserDir } from '../local-dirs.js';
import type { RunView } from './views.js';

/** The folder name for an input record. */
export function resultName(input: string, seq: string): string {
  const name = input.replace(/\\/g, '\\\\').replace(/\//g, '\\_').replace(/\0/g, '\\0');
  if (name === '' || name === '.' || name === '..' || Buffer.byteLength(name) > 200) return `\\#${seq}`;
  return name;
}

/** Checks DIR (missing or empty) and creates it; ALREADY_EXISTS when it holds anything. */
export function prepareResultsDir(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new GaxxError('USAGE', `--results: '${dir}' is not a directory`);
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new GaxxError('FAILED_PRECONDITION', `--results: cannot read '${dir}': ${(e as Error).message}`);
  }
  if (entries.length > 0) throw new GaxxError('ALREADY_EXISTS', `--results: '${dir}' is not empty; give a new directory`);
  // Another user's directory could have what gaxx makes in it swapped for symlinks.
  prepareUserDir(dir, '--results');
  makeOwnSubdir(join(dir, '1'), '--results');
}

/** Writes each task's folder as its result arrives. */
export class ResultsDirView implements RunView {
  constructor(private readonly dir: string) {}

  start(): void {}
  live(): void {}
  end(): void {}

  result(r: TaskResult, output: OutputChunk[], _liveShown: boolean, input: string | undefined): void {
    const base = resultName(input ?? r.host, r.taskId);
    let folder = join(this.dir, '1', base);
    try {
      mkdirSync(folder);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      folder = join(this.dir, '1', `${base}\\#${r.taskId}`);
      mkdirSync(folder);
    }
    const bytes = (s: 1 | 2): Buffer => Buffer.concat(output.filter((c) => c.stream === s).map((c) => c.data));
    writeFileSync(join(folder, 'seq'), `${r.taskId}\n`);
    writeFileSync(join(folder, 'stdout'), bytes(1));
    writeFileSync(join(folder, 'stderr'), bytes(2));
    writeFileSync(join(folder, 'result.json'), `${JSON.stringify({ ...r, ...(input !== undefined ? { input } : {}) }, null, 2)}\n`);
  }
}
