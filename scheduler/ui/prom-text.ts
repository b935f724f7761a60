/**
 * The Prometheus text exposition format (0.0.4): parsing an agent's scrape, adding labels, and
 * writing many scrapes back out as one valid exposition. Written out by hand because the
 * collector must never trust a scrape: a malformed line is counted and skipped, not thrown, and
 * every family is written once (one HELP/TYPE, all its samples together) however many agents
 * sent it, since a second TYPE line for a name makes the whole exposition unparseable.
 */

/** One sample line: metric name, labels in order, the value as written. */
export interface Sample {
  name: string;
  labels: Array<[string, string]>;
  value: number;
  timestamp?: number;
}

/** A metric family: the samples under one HELP/TYPE (histogram `_bucket` etc. included). */
export interface Family {
  name: string;
  help?: string;
  type?: string;
  samples: Sample[];
}

export interface Parsed {
  families: Map<string, Family>;
  /** Lines that were not valid exposition, skipped. */
  invalid: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', '_info'];

function parseValue(s: string): number | undefined {
  if (s === 'NaN') return NaN;
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

/** Parses `{a="x",b="y\"z"}` starting at `i` (the `{`); returns labels and the index after `}`. */
function parseLabels(line: string, i: number): { labels: Array<[string, string]>; end: number } | undefined {
  const labels: Array<[string, string]> = [];
  i++;
  for (;;) {
    while (line[i] === ' ') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const m = LABEL_NAME.exec(line.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    while (line[i] === ' ') i++;
    if (line[i] !== '=' || line[i + 1] !== '"') return undefined;
    i += 2;
    let v = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) return undefined;
      if (c === '"') break;
      if (c === '\\') {
        const n = line[i + 1];
        if (n === 'n') v += '\n';
        else if (n === '\\' || n === '"') v += n;
        else return undefined;
        i += 2;
      } else {
        v += c;
        i++;
      }
    }
    labels.push([m[0], v]);
    i++;
    while (line[i] === ' ') i++;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') return undefined;
  }
}

/** One sample line, or undefined when it is not valid. */
export function parseSampleLine(line: string): Sample | undefined {
  const m = NAME.exec(line);
  if (!m) return undefined;
  let i = m[0].length;
  let labels: Array<[string, string]> = [];
  if (line[i] === '{') {
    const l = parseLabels(line, i);
    if (!l) return undefined;
    labels = l.labels;
    i = l.end;
  }
  const rest = line
    .slice(i)
    .trim()
    .split(/[ \t]+/);
  if (rest.length < 1 || rest.length > 2 || i >= line.length || !/[ \t]/.test(line[i] ?? '')) return undefined;
  const value = parseValue(rest[0] ?? '');
  if (value === undefined) return undefined;
  const sample: Sample = { name: m[0], labels, value };
  if (rest.length === 2) {
    const ts = Number(rest[1]);
    if (!Number.isInteger(ts)) return undefined;
    sample.timestamp = ts;
  }
  return sample;
}

/** The family a sample belongs to: its TYPE'd name when a suffix was added to it. */
function familyOf(name: string, families: Map<string, Family>): string {
  if (families.has(name)) return name;
  for (const s of SUFFIXES) if (name.endsWith(s) && families.has(name.slice(0, -s.length))) return name.slice(0, -s.length);
  return name;
}

/** Parses a whole exposition; never throws. */
export function parsePrometheusText(text: string): Parsed {
  const families = new Map<string, Family>();
  let invalid = 0;
  const fam = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, samples: [] }));
    return f;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/.exec(line);
      if (!m) continue; // a plain comment
      const f = fam(m[2] as string);
      if (m[1] === 'HELP') f.help = (m[3] ?? '').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      else if (/^(counter|gauge|histogram|summary|untyped)$/.test(m[3] ?? '')) f.type = m[3];
      else invalid++;
      continue;
    }
    const s = parseSampleLine(line);
    if (!s) invalid++;
    else fam(familyOf(s.name, families)).samples.push(s);
  }
  return { families, invalid };
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * Labels with `extra` put first; a scraped label of the same name is kept as `exported_<name>`,
 * as Prometheus does with honor_labels off, so an agent cannot pose as another host.
 */
export function relabel(labels: Array<[string, string]>, extra: Array<[string, string]>): Array<[string, string]> {
  const taken = new Set(extra.map(([k]) => k));
  return [...extra, ...labels.map(([k, v]): [string, string] => (taken.has(k) ? [`exported_${k}`, v] : [k, v]))];
}

/** Writes one sample line. */
export function formatSample(s: Sample): string {
  const labels = s.labels.length ? `{${s.labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
  return `${s.name}${labels} ${formatValue(s.value)}${s.timestamp === undefined ? '' : ` ${s.timestamp}`}`;
}

/**
 * Merges sources into one exposition: families by name in order of first appearance, each
 * with one HELP and TYPE (the first source's) and every source's samples, relabelled.
 */
export function mergeExpositions(sources: Array<{ families: Map<string, Family>; labels: Array<[string, string]> }>): string {
  const merged = new Map<string, { help?: string; type?: string; lines: string[] }>();
  for (const src of sources) {
    for (const f of src.families.values()) {
      let m = merged.get(f.name);
      if (!m) merged.set(f.name, (m = { help: f.help, type: f.type, lines: [] }));
      // Two sources disagreeing on a family's type: the later one's samples would be misread.
      if (m.type && f.type && m.type !== f.type) continue;
      for (const s of f.samples) m.lines.push(formatSample({ ...s, labels: relabel(s.labels, src.labels) }));
    }
  }
  const out: string[] = [];
  for (const [name, m] of merged) {
    // A family without samples yet (a labelled counter never incremented) keeps its HELP/TYPE.
    if (m.help !== undefined) out.push(`# HELP ${name} ${escapeHelp(m.help)}`);
    if (m.type) out.push(`# TYPE ${name} ${m.type}`);
    out.push(...m.lines);
  }
  return out.join('\n') + '\n';
}

/** The first sample value of `name` whose labels include `match`, if any. */
export function sampleValue(families: Map<string, Family>, name: string, match: Record<string, string> = {}): number | undefined {
  const f = families.get(name) ?? families.get(familyOf(name, families));
  const s = f?.samples.find((x) => x.name === name && Object.entries(match).every(([k, v]) => x.labels.some(([lk, lv]) => lk === k && lv === v)));
  return s?.value;
}
