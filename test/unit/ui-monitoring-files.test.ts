/**
 * The Grafana dashboard (docs/grafana/gaxx.json) and the Prometheus alert rules
 * (docs/prometheus/gaxx-alerts.yml): their shape, that every metric they name is one gaxx
 * exports, and, where promtool is installed, that every expression parses and the alert rules
 * pass their unit tests (docs/prometheus/gaxx-alerts.test.yml).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { repoRoot } from '../helpers/agent.js';

const root = repoRoot();
const grafanaText = readFileSync(join(root, 'docs/grafana/gaxx.json'), 'utf8');
const rulesText = readFileSync(join(root, 'docs/prometheus/gaxx-alerts.yml'), 'utf8');
const hasPromtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;

const Target = z.object({ refId: z.string(), expr: z.string().min(1), datasource: z.object({ uid: z.literal('${datasource}') }).passthrough() }).passthrough();
const Panel = z
  .object({
    id: z.number().int(),
    type: z.enum(['row', 'stat', 'timeseries', 'table', 'gauge', 'bargauge']),
    title: z.string().min(1),
    gridPos: z
      .object({ x: z.number().int().min(0), y: z.number().int().min(0), w: z.number().int().min(1), h: z.number().int().min(1) })
      .refine((g) => g.x + g.w <= 24, 'panel wider than the 24-column grid'),
    targets: z.array(Target).optional(),
  })
  .passthrough()
  .refine((p) => p.type === 'row' || (p.targets?.length ?? 0) > 0, 'a panel without queries');
const Dashboard = z
  .object({
    uid: z.string().min(1),
    title: z.string().min(1),
    schemaVersion: z.number().int().min(30),
    panels: z.array(Panel).min(1),
    templating: z.object({ list: z.array(z.object({ name: z.string(), type: z.string() }).passthrough()) }),
  })
  .passthrough();

/** Metric names gaxx exports: the prom-client definitions in the source, plus `up`. */
function exportedNames(): Set<string> {
  const out = execFileSync('grep', ['-rhoE', "name: '(gaxx_[a-z0-9_]+)'", 'agent', 'scheduler'], { cwd: root, encoding: 'utf8' });
  const names = new Set(
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => l.replace(/^name: '|'$/g, '')),
  );
  names.add('up');
  return names;
}

/** The metric names an expression refers to (histogram suffixes mapped to their family). */
function namesIn(expr: string): string[] {
  return [...expr.matchAll(/\b(gaxx_[a-z0-9_]+|up)\b(?=\s*[{[)\s=<>*+-]|$)/g)].map((m) => (m[1] as string).replace(/_bucket$/, ''));
}

const dashboard = Dashboard.parse(JSON.parse(grafanaText));
const grafanaExprs = dashboard.panels.flatMap((p) => p.targets?.map((t) => t.expr) ?? []);
const ruleExprs = [...rulesText.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1] as string);

describe('Grafana dashboard', () => {
  it('has unique panel ids and only the template variables it defines', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    for (const e of grafanaExprs) for (const [, v] of e.matchAll(/\$([a-z]+)/g)) expect(defined.has(v as string), `$${v} in ${e}`).toBe(true);
  });

  it('names only metrics that gaxx exports', () => {
    const known = exportedNames();
    const used = new Set(grafanaExprs.flatMap(namesIn));
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !known.has(n))).toEqual([]);
  });

  it.skipIf(!hasPromtool)('has expressions that promtool parses', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gx-grafana-'));
    try {
      const concrete = grafanaExprs.map((e) => e.replace(/\$__rate_interval/g, '5m').replace(/\$(fleet|host)/g, '.*'));
      const rules = [
        'groups:',
        '  - name: grafana',
        '    rules:',
        ...concrete.flatMap((e, i) => [`      - record: gaxx_grafana_panel_${i}`, `        expr: ${JSON.stringify(e)}`]),
      ];
      writeFileSync(join(dir, 'r.yml'), rules.join('\n') + '\n');
      const r = spawnSync('promtool', ['check', 'rules', join(dir, 'r.yml')], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Prometheus alert rules', () => {
  it('alert on an agent down, a breaker open, a certificate expiring within 7 days, a queue backing up', () => {
    const alerts = [...rulesText.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    expect(alerts).toEqual(expect.arrayContaining(['GaxxAgentDown', 'GaxxBreakerOpen', 'GaxxAgentCertExpiringSoon', 'GaxxQueueBackingUp']));
    expect(ruleExprs.length).toBe(alerts.length);
    expect(rulesText).toContain('7 * 86400');
  });

  it('name only metrics that gaxx exports', () => {
    const known = exportedNames();
    expect([...new Set(ruleExprs.flatMap(namesIn))].filter((n) => !known.has(n))).toEqual([]);
  });

  it.skipIf(!hasPromtool)('pass promtool check rules and their unit tests', () => {
    const dir = join(root, 'docs/prometheus');
    const check = spawnSync('promtool', ['check', 'rules', 'gaxx-alerts.yml'], { cwd: dir, encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const test = spawnSync('promtool', ['test', 'rules', 'gaxx-alerts.test.yml'], { cwd: dir, encoding: 'utf8' });
    expect(test.status, test.stdout + test.stderr).toBe(0);
  });
});
