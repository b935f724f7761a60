// `gaxx run`'s human output of a per-host run: a task's last line without a newline is ended
// before its summary line, with one host (output passed through) as with several (prefixed).
import { describe, expect, it } from 'vitest';
import { Output } from '../../cli/output.js';
import { HumanRunPrinter } from '../../cli/run-printer.js';
import { taskResult } from '../../scheduler/index.js';

function printer(hosts: string[]): { p: HumanRunPrinter; out: () => string; err: () => string } {
  let outText = '';
  let errText = '';
  const io = {
    stdout: { write: (s: string | Buffer) => void (outText += s.toString()) },
    stderr: { write: (s: string | Buffer) => void (errText += s.toString()) },
  } as unknown as ConstructorParameters<typeof Output>[0];
  const p = new HumanRunPrinter(new Output(io, false), new Map(hosts.map((h, i) => [String(i), h])));
  return { p, out: () => outText, err: () => errText };
}

const done = (taskId: string, host: string) => taskResult({ runId: 'r1', taskId, host, outcome: 'succeeded', reason: '' }, { exitCode: 0, durationMs: 12 });

describe('HumanRunPrinter', () => {
  it('with one host, passes output through and ends a last line without a newline before the summary', () => {
    const { p, out, err } = printer(['h1']);
    p.live('0', { stream: 1, data: Buffer.from('foo') });
    p.live('0', { stream: 2, data: Buffer.from('warn') });
    p.result(done('0', 'h1'), [], true);
    expect(out()).toBe('foo\n== h1: succeeded (exit 0, 12 ms)\n');
    expect(err()).toBe('warn\n');
  });

  it('with one host, adds nothing to output that ends its lines', () => {
    const { p, out, err } = printer(['h1']);
    p.live('0', { stream: 1, data: Buffer.from('a\nb') });
    p.live('0', { stream: 1, data: Buffer.from('c\n') });
    p.result(done('0', 'h1'), [], true);
    expect(out()).toBe('a\nbc\n== h1: succeeded (exit 0, 12 ms)\n');
    expect(err()).toBe('');
  });

  it('with several hosts, prefixes each line and ends a held partial line before the summary', () => {
    const { p, out } = printer(['h1', 'h2']);
    p.live('0', { stream: 1, data: Buffer.from('one\ntw') });
    p.live('1', { stream: 1, data: Buffer.from('x\n') });
    p.live('0', { stream: 1, data: Buffer.from('o') });
    p.result(done('0', 'h1'), [], true);
    expect(out()).toBe('h1: one\nh2: x\nh1: two\n== h1: succeeded (exit 0, 12 ms)\n');
  });
});
