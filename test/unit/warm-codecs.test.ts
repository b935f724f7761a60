// proto/warm-codecs.ts: the samples an agent builds Exec's message code with set every field of
// every message the method carries (a field added to agent.proto fails here until its sample has
// it, or its type's code would be built by the first task again), and the warm-up decodes and
// encodes them as the agent's own service definition does.
import { describe, expect, it } from 'vitest';
import { decodeExecEvent } from '../../proto/exec-codec.js';
import { AGENT_PROTO } from '../../proto/gen/descriptors.js';
import { loadProtos } from '../../proto/index.js';
import { EXEC_EVENT_SAMPLES, EXEC_REQUEST_SAMPLE, warmExecMethod } from '../../proto/warm-codecs.js';

type Fields = Record<string, { type: string; keyType?: string; rule?: string }>;
type Types = Record<string, { fields?: Fields; oneofs?: object }>;
const types = (AGENT_PROTO as { nested: { gaxx: { nested: { agent: { nested: { v1: { nested: Types } } } } } } }).nested.gaxx.nested.agent.nested.v1.nested;

/** Whether a value is what proto3 leaves out (so a sample holding it would not reach its code). */
function isDefault(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === 0 || v === false) return true;
  if (Buffer.isBuffer(v) || Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  return false;
}

/** Fields of message `name` that `samples` (objects of that message) leave at their default, nested messages of agent.proto followed. */
function unset(name: string, samples: Record<string, unknown>[]): string[] {
  const fields = types[name]?.fields;
  if (!fields) throw new Error(`no message ${name} in agent.proto`);
  const missing: string[] = [];
  for (const [field, f] of Object.entries(fields)) {
    const values = samples.map((s) => s[field]).filter((v) => !isDefault(v));
    if (values.length === 0) missing.push(`${name}.${field}`);
    else if (types[f.type]?.fields && f.keyType === undefined) {
      const nested = f.rule === 'repeated' ? (values as unknown[][]).flat() : values;
      missing.push(...unset(f.type, nested as Record<string, unknown>[]));
    }
  }
  return missing;
}

describe('Exec codec warm-up samples', () => {
  it('set every field of ExecRequest and of the messages it holds', () => {
    expect(unset('ExecRequest', [EXEC_REQUEST_SAMPLE as Record<string, unknown>])).toEqual([]);
  });

  it('set every member of ExecEvent and every field of the messages they hold', () => {
    expect(unset('ExecEvent', EXEC_EVENT_SAMPLES as Record<string, unknown>[])).toEqual([]);
  });

  it('find a field left out of a sample', () => {
    const { signed, ...rest } = EXEC_REQUEST_SAMPLE;
    expect(unset('ExecRequest', [{ ...rest, signed: { ...signed, target: { ...signed?.target, agents: [] } } }])).toEqual(['TaskTarget.agents']);
    expect(unset('ExecEvent', EXEC_EVENT_SAMPLES.slice(1) as Record<string, unknown>[])).toEqual(['ExecEvent.started']);
  });
});

describe('warmExecMethod', () => {
  it("decodes the request and encodes each event with the agent's own Exec definition, as a call would", () => {
    const exec = loadProtos().agent.gaxx.agent.v1.Agent.service.Exec;
    const { request, events } = warmExecMethod(exec);
    expect(request).toEqual({ ...EXEC_REQUEST_SAMPLE, signed: { ...EXEC_REQUEST_SAMPLE.signed } });
    expect(events).toHaveLength(EXEC_EVENT_SAMPLES.length);
    events.forEach((bytes, i) => {
      const sample = EXEC_EVENT_SAMPLES[i] as Record<string, unknown>;
      const kind = Object.keys(sample)[0] as string;
      const decoded = decodeExecEvent(bytes) as unknown as Record<string, unknown>;
      expect(decoded.event).toBe(kind);
      expect(decoded[kind]).toEqual(sample[kind]);
    });
  });
});
