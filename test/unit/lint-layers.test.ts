/**
 * The import rules are enforced, not conventions: code that breaks a layer, reaches into a
 * module's internals or loads queue code into the agent client fails lint, and a new top-level
 * folder is refused until it has rules of its own.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/agent.js';

const root = repoRoot();
let eslint: ESLint;

beforeAll(() => {
  // The project's own config, without its type-aware block (these files exist in no tsconfig).
  process.env.GAXX_LINT_UNTYPED = '1';
  eslint = new ESLint({ cwd: root });
});

/** Lints `code` as if it were the file `path` of the checkout; status 1 when a rule fails. */
async function lintAs(path: string, code: string): Promise<{ status: number; out: string }> {
  const results = await eslint.lintText(code, { filePath: join(root, path) });
  const messages = results.flatMap((x) => x.messages.map((m) => `${m.ruleId}: ${m.message}`));
  return { status: results.some((x) => x.errorCount > 0) ? 1 : 0, out: messages.join('\n') };
}

describe('layer rules', () => {
  it('refuses an agent file importing the scheduler, and certs internals', async () => {
    const r = await lintAs('agent/exec/probe.ts', "export * from '../../scheduler/index.js';\nexport * from '../../certs/ca.js';\n");
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/no-restricted-imports.*agent may import only proto, certs/);
    expect(r.out).toMatch(/no-restricted-imports.*enter certs\//);
  });

  it('keeps the agent client free of queue code and of the rest of the scheduler', async () => {
    const r = await lintAs('scheduler/client/probe.ts', "import 'bullmq';\nexport * from '../redis/redis.js';\n");
    expect(r.status).toBe(1);
    expect(r.out.split('\n').filter((l) => l.startsWith('no-restricted-imports'))).toHaveLength(2);
  });

  it('lets cli enter the scheduler through its index and its client entry only', async () => {
    expect(
      (await lintAs('cli/commands/probe.ts', "export * from '../../scheduler/client/index.js';\nexport * from '../../scheduler/index.js';\n")).status,
    ).toBe(0);
    const bad = await lintAs('cli/commands/probe.ts', "export * from '../../scheduler/queue/queue.js';\n");
    expect(bad.status).toBe(1);
    expect(bad.out).toMatch(/no-restricted-imports/);
  });

  it('refuses localeCompare and Intl.Collator in product code (ICU collator start-up), and takes compareText', async () => {
    const bad = await lintAs(
      'cli/run/probe.ts',
      "export const a = ['b', 'a'].sort((x, y) => x.localeCompare(y));\nexport const c = new Intl.Collator('en');\n",
    );
    expect(bad.status).toBe(1);
    expect(bad.out.split('\n').filter((l) => l.startsWith('no-restricted-syntax: order text with compareText'))).toHaveLength(2);
    const good = await lintAs('cli/run/probe.ts', "import { compareText } from '../../proto/index.js';\nexport const a = ['b', 'a'].sort(compareText);\n");
    expect(good.status, good.out).toBe(0);
  });

  it('refuses a JWK key export everywhere (Node 20 can deadlock on it), in product code beside the text-order rule, and takes DER', async () => {
    const jwk = "import { generateKeyPairSync } from 'node:crypto';\nexport const k = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });\n";
    for (const path of ['cli/ssh/probe.ts', 'test/unit/probe.test.ts', 'bench/probe.ts', 'scripts/probe.mjs']) {
      const bad = await lintAs(path, jwk);
      expect(bad.status, path).toBe(1);
      expect(bad.out, path).toMatch(/no-restricted-syntax: export keys as DER/);
    }
    const both = await lintAs('cli/ssh/probe.ts', `${jwk}export const a = ['b', 'a'].sort((x, y) => x.localeCompare(y));\n`);
    expect(both.out).toMatch(/export keys as DER/);
    expect(both.out).toMatch(/order text with compareText/);
    const der =
      "import { generateKeyPairSync } from 'node:crypto';\nexport const k = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'der' });\n";
    const good = await lintAs('cli/ssh/probe.ts', der);
    expect(good.status, good.out).toBe(0);
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
