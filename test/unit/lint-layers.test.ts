/**
 * The import rules are enforced, not conventions: code that breaks a layer, reaches into a
 * module's internals or loads queue code into the agent client fails lint, and a new top-level
 * folder is refused until it has rules of its own.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';

const root = repoRoot();
const eslintBin = join(root, 'node_modules', 'eslint', 'bin', 'eslint.js');

/** Lints `code` as if it were the file `path` of the checkout; returns the rule messages. */
function lintAs(path: string, code: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [eslintBin, '--stdin', '--stdin-filename', path, '--format', 'json'], { cwd: root, input: code, encoding: 'utf8' });
  const results = JSON.parse(r.stdout || '[]') as Array<{ messages: Array<{ ruleId: string | null; message: string }> }>;
  return { status: r.status, out: results.flatMap((x) => x.messages.map((m) => `${m.ruleId}: ${m.message}`)).join('\n') };
}

describe('layer rules', () => {
  it('refuses an agent file importing the scheduler, and certs internals', () => {
    const r = lintAs('agent/exec/probe.ts', "export * from '../../scheduler/index.js';\nexport * from '../../certs/ca.js';\n");
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/no-restricted-imports.*agent may import only proto, certs/);
    expect(r.out).toMatch(/no-restricted-imports.*enter certs\//);
  });

  it('keeps the agent client free of queue code and of the rest of the scheduler', () => {
    const r = lintAs('scheduler/client/probe.ts', "import 'bullmq';\nexport * from '../redis/redis.js';\n");
    expect(r.status).toBe(1);
    expect(r.out.split('\n').filter((l) => l.startsWith('no-restricted-imports'))).toHaveLength(2);
  });

  it('lets cli enter the scheduler through its index and its client entry only', () => {
    expect(lintAs('cli/commands/probe.ts', "export * from '../../scheduler/client/index.js';\nexport * from '../../scheduler/index.js';\n").status).toBe(0);
    const bad = lintAs('cli/commands/probe.ts', "export * from '../../scheduler/queue/queue.js';\n");
    expect(bad.status).toBe(1);
    expect(bad.out).toMatch(/no-restricted-imports/);
  });

  it('refuses a new top-level folder that has no layer rules', () => {
    const check = join(root, 'scripts', 'check-layers.mjs');
    const bad = spawnSync(process.execPath, [check, '--files', 'newmod/a.ts', 'agent/index.ts'], { cwd: root, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/newmod/);
    const good = spawnSync(process.execPath, [check, '--files', 'agent/index.ts', 'cli/main.ts'], { cwd: root, encoding: 'utf8' });
    expect(good.status).toBe(0);
  });
});
