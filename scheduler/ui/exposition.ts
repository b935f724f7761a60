/**
 * The collector's `/metrics`: the local process's own metrics, the collector's view of every
 * agent (`up`, `gaxx_ui_agent_reachable`, certificate expiry, scrape duration), and each agent's own series labelled
 * with `fleet` and `host`, as one exposition a plain Prometheus can scrape.
 */
import type { AgentState } from './collector.js';
import { mergeExpositions, parsePrometheusText, type Family, type Sample } from './prom-text.js';

function gauge(name: string, help: string, samples: Sample[]): Family {
  return { name, help, type: 'gauge', samples };
}

/** The collector's own families about the agents it watches. */
export function collectorFamilies(states: readonly AgentState[]): Map<string, Family> {
  const lbl = (s: AgentState): Array<[string, string]> => [
    ['fleet', s.fleet],
    ['host', s.host],
    ['instance', s.metricsAddress],
  ];
  const fams = [
    gauge(
      'up',
      "Whether the last scrape of the agent's metrics succeeded (1) or not (0)",
      states.map((s) => ({ name: 'up', labels: lbl(s), value: s.metricsUp ? 1 : 0 })),
    ),
    gauge(
      'gaxx_ui_agent_reachable',
      'Whether the agent answered its Info RPC in the last round',
      states.map((s) => ({ name: 'gaxx_ui_agent_reachable', labels: lbl(s), value: s.reachable ? 1 : 0 })),
    ),
    gauge(
      'gaxx_ui_scrape_duration_seconds',
      'How long the last look at the agent took',
      states.map((s) => ({ name: 'gaxx_ui_scrape_duration_seconds', labels: lbl(s), value: s.scrapeMs / 1000 })),
    ),
    gauge(
      'gaxx_ui_scrape_invalid_lines',
      "Lines of the agent's last scrape that were not valid exposition",
      states.map((s) => ({ name: 'gaxx_ui_scrape_invalid_lines', labels: lbl(s), value: s.invalidLines })),
    ),
    gauge(
      'gaxx_ui_agent_cert_expiry_timestamp_seconds',
      "When the agent's certificate expires (from Info)",
      states.flatMap((s) => (s.info ? [{ name: 'gaxx_ui_agent_cert_expiry_timestamp_seconds', labels: lbl(s), value: s.info.certNotAfterMs / 1000 }] : [])),
    ),
    gauge(
      'gaxx_ui_agent_capacity',
      'Tasks the agent runs at once (from Info)',
      states.flatMap((s) => (s.info ? [{ name: 'gaxx_ui_agent_capacity', labels: lbl(s), value: s.info.capacity }] : [])),
    ),
    gauge(
      'gaxx_ui_agent_load1',
      "The agent host's 1-minute load average (from Info)",
      states.flatMap((s) => (s.info ? [{ name: 'gaxx_ui_agent_load1', labels: lbl(s), value: s.info.load[0] ?? 0 }] : [])),
    ),
  ];
  return new Map(fams.map((f) => [f.name, f]));
}

/** The whole exposition: `own` (this process's metrics as text), the collector's, then every agent's. */
export function buildExposition(own: string, states: readonly AgentState[]): string {
  const sources: Array<{ families: Map<string, Family>; labels: Array<[string, string]> }> = [
    { families: parsePrometheusText(own).families, labels: [] },
    { families: collectorFamilies(states), labels: [] },
  ];
  for (const s of states)
    if (s.families)
      sources.push({
        families: s.families,
        labels: [
          ['fleet', s.fleet],
          ['host', s.host],
        ],
      });
  return mergeExpositions(sources);
}
