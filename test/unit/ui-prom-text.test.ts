/** The collector's Prometheus text handling: parsing, relabelling, merging many agents' scrapes. */
import { describe, expect, it } from 'vitest';
import { mergeExpositions, parsePrometheusText, parseSampleLine, relabel } from '../../scheduler/ui/prom-text.js';
import { parseAgentItem } from '../../scheduler/ui/targets.js';
import { isGaxxError } from '../../proto/index.js';

const AGENT = `# HELP gaxx_agent_exec_total Finished executions by outcome
# TYPE gaxx_agent_exec_total counter
gaxx_agent_exec_total{outcome="succeeded"} 12
gaxx_agent_exec_total{outcome="fa\\"il\\\\ed\\n"} 1
# HELP gaxx_agent_exec_duration_seconds Execution wall time
# TYPE gaxx_agent_exec_duration_seconds histogram
gaxx_agent_exec_duration_seconds_bucket{le="0.5"} 3
gaxx_agent_exec_duration_seconds_bucket{le="+Inf"} 13
gaxx_agent_exec_duration_seconds_sum 4.5
gaxx_agent_exec_duration_seconds_count 13
# a plain comment
nodejs_heap_size_total_bytes 1.5e+7 1700000000000
weird{host="evil"} NaN
`;

describe('parsePrometheusText', () => {
  it('reads families, suffixed histogram samples, escapes, NaN/Inf and timestamps', () => {
    const p = parsePrometheusText(AGENT);
    expect(p.invalid).toBe(0);
    expect(p.families.get('gaxx_agent_exec_total')?.samples[1]?.labels).toEqual([['outcome', 'fa"il\\ed\n']]);
    expect(p.families.get('gaxx_agent_exec_duration_seconds')?.samples.map((s) => s.name)).toEqual([
      'gaxx_agent_exec_duration_seconds_bucket',
      'gaxx_agent_exec_duration_seconds_bucket',
      'gaxx_agent_exec_duration_seconds_sum',
      'gaxx_agent_exec_duration_seconds_count',
    ]);
    expect(p.families.get('gaxx_agent_exec_duration_seconds')?.samples[1]?.labels).toEqual([['le', '+Inf']]);
    expect(p.families.get('nodejs_heap_size_total_bytes')?.samples[0]).toMatchObject({ value: 1.5e7, timestamp: 1700000000000 });
    expect(Number.isNaN(p.families.get('weird')?.samples[0]?.value)).toBe(true);
  });

  it('counts and skips lines that are not exposition, never throws', () => {
    const bad = ['x{a="unterminated} 1', 'x{a=1} 1', 'x 1 2 3', '9bad 1', 'x{a="b"}1', 'x notanumber', 'x{a="\\q"} 1', '# TYPE x wrongtype'];
    const p = parsePrometheusText(['good 1', ...bad].join('\n'));
    expect(p.invalid).toBe(bad.length);
    expect(p.families.get('good')?.samples[0]?.value).toBe(1);
    for (const l of bad.slice(0, -1)) expect(parseSampleLine(l), l).toBeUndefined();
  });
});

describe('mergeExpositions', () => {
  it("writes each family once with every source's samples, labelled; a scraped host label is kept as exported_host", () => {
    const a = parsePrometheusText(AGENT).families;
    const text = mergeExpositions([
      {
        families: a,
        labels: [
          ['fleet', 'web'],
          ['host', 'h1'],
        ],
      },
      {
        families: a,
        labels: [
          ['fleet', 'web'],
          ['host', 'h2'],
        ],
      },
    ]);
    expect(text.match(/^# TYPE gaxx_agent_exec_total counter$/gm)?.length).toBe(1);
    expect(text).toContain('gaxx_agent_exec_total{fleet="web",host="h2",outcome="fa\\"il\\\\ed\\n"} 1');
    expect(text).toContain('weird{fleet="web",host="h1",exported_host="evil"} NaN');
    // Round trip: what we write parses back to the same samples.
    const back = parsePrometheusText(text);
    expect(back.invalid).toBe(0);
    expect(back.families.get('gaxx_agent_exec_duration_seconds')?.samples.length).toBe(8);
  });

  it("drops a family whose type disagrees with the first source's", () => {
    const g = parsePrometheusText('# TYPE m gauge\nm 1\n').families;
    const c = parsePrometheusText('# TYPE m counter\nm 2\n').families;
    const text = mergeExpositions([
      { families: g, labels: [['host', 'a']] },
      { families: c, labels: [['host', 'b']] },
    ]);
    expect(text).toBe('# TYPE m gauge\nm{host="a"} 1\n');
  });

  it('relabel puts the added labels first', () => {
    expect(
      relabel(
        [
          ['a', '1'],
          ['fleet', 'x'],
        ],
        [['fleet', 'f']],
      ),
    ).toEqual([
      ['fleet', 'f'],
      ['a', '1'],
      ['exported_fleet', 'x'],
    ]);
  });
});

describe('parseAgentItem', () => {
  it('takes host:port (metrics on :9091) and host:port/metricsPort; refuses others with INVALID_ARGUMENT', () => {
    expect(parseAgentItem('10.0.0.5:8088')).toMatchObject({ address: '10.0.0.5:8088', metricsAddress: '10.0.0.5:9091' });
    expect(parseAgentItem('[::1]:8088/9200')).toMatchObject({ address: '[::1]:8088', metricsAddress: '[::1]:9200' });
    for (const bad of ['10.0.0.5', '10.0.0.5:8088/x', '10.0.0.5:8088/1/2', 'h:8088/70000']) {
      let err: unknown;
      try {
        parseAgentItem(bad);
      } catch (e) {
        err = e;
      }
      expect(isGaxxError(err, 'INVALID_ARGUMENT'), bad).toBe(true);
    }
  });
});
