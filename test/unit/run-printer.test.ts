// `gaxx run`'s human output of a per-host run: a task's last line without a newline is ended
// before its summary line, with one host (output passed through) as with several (prefixed).
import { describe, expect, it } from 'vitest';
import { Output } from '../../cli/output.js';
import { HumanRunPrinter, summaryLine } from '../../cli/run-printer.js';
import { HumanView } from '../../cli/run/views.js';
import { capturedOutput } from '../helpers/output.js';
import { taskResult } from '../../scheduler/index.js';

function printer(hosts: string[], terminal = false): { p: HumanRunPrinter; out: () => string; err: () => string } {
  const c = capturedOutput();
  Object.assign(c.out.io, { stdoutIsTty: terminal, stderrIsTty: terminal });
  const p = new HumanRunPrinter(c.out, new Map(hosts.map((h, i) => [String(i), h])));
  return { p, out: c.stdout, err: c.stderr };
}

const done = (taskId: string, host: string) => taskResult({ runId: 'r1', taskId, host, outcome: 'succeeded', reason: '' }, { exitCode: 0, durationMs: 12 });

describe('summaryLine and the output cap', () => {
  it('says stopped only of a task the agent stopped at its cap; one that ended on its own first has its output truncated', () => {
    const base = { runId: 'r1', taskId: '0', host: 'h1' };
    const stopped = taskResult({ ...base, outcome: 'killed', reason: 'output_cap' }, { signal: 'SIGTERM', durationMs: 5, truncated: true, outputCapped: true });
    expect(summaryLine(stopped)).toBe('== h1: killed (signal SIGTERM, 5 ms; stopped at the output cap (--output-cap), output truncated)\n');
    const own = taskResult({ ...base, outcome: 'succeeded', reason: '' }, { exitCode: 0, durationMs: 5, truncated: true, outputCapped: true });
    expect(summaryLine(own)).toBe('== h1: succeeded (exit 0, 5 ms; output truncated at the cap (--output-cap))\n');
    const failed = taskResult({ ...base, outcome: 'failed', reason: '' }, { exitCode: 3, durationMs: 5, truncated: true, outputCapped: true });
    expect(summaryLine(failed)).toBe('== h1: failed (exit 3, 5 ms; output truncated at the cap (--output-cap))\n');
  });
});

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

describe('one host on a terminal', () => {
  it("shows the task's lines unprefixed with their control characters escaped (an OSC 52 clipboard write, a forged result line moved into place)", () => {
    const { p, out, err } = printer(['h1'], true);
    p.live('0', { stream: 1, data: Buffer.from('X\x1b]52;c;UFdO\x07Y\n\x1b[1A\r== h1: ok') });
    p.live('0', { stream: 2, data: Buffer.from('e\x9b2J\n') });
    p.result(done('0', 'h1'), [], true);
    expect(out()).toBe('X\\x1b]52;c;UFdO\\x07Y\n\\x1b[1A\\r== h1: ok\n== h1: succeeded (exit 0, 12 ms)\n');
    expect(err()).toBe('e\\x9b2J\n');
  });

  it('leaves plain lines as they are, and a pipe gets the bytes unchanged', () => {
    const t = printer(['h1'], true);
    t.p.live('0', { stream: 1, data: Buffer.from('a\tb é\nc') });
    t.p.result(done('0', 'h1'), [], true);
    expect(t.out()).toBe('a\tb é\nc\n== h1: succeeded (exit 0, 12 ms)\n');
    const piped = printer(['h1'], false);
    piped.p.live('0', { stream: 1, data: Buffer.from('\x1b[31mred\x1b[0m\n') });
    piped.p.result(done('0', 'h1'), [], true);
    expect(piped.out()).toBe('\x1b[31mred\x1b[0m\n== h1: succeeded (exit 0, 12 ms)\n');
  });
});

describe('the host a line names', () => {
  const capture = (): { out: Output; text: () => string } => {
    const c = capturedOutput();
    return { out: c.out, text: () => c.stdout() + c.stderr() };
  };

  it("a fleet run's result lines name a host as its output lines do, by its name, not by the agent address it ran at", () => {
    const { out, text } = capture();
    const view = new HumanView(out, {
      colour: false,
      eachHostLabels: new Map([
        ['0-a', 'gaxx-web-0'],
        ['1-b', 'gaxx-web-1'],
      ]),
    });
    view.live('0-a', { stream: 1, data: Buffer.from('up\n') });
    view.result(done('0-a', '127.0.0.2:8088'), [], true);
    view.result(done('1-b', '127.0.0.3:8088'), [{ stream: 1, data: Buffer.from('late\n') }], false);
    expect(text()).toBe('gaxx-web-0: up\n== gaxx-web-0: succeeded (exit 0, 12 ms)\ngaxx-web-1: late\n== gaxx-web-1: succeeded (exit 0, 12 ms)\n');
  });

  it("a fleet's task list labels each task's output by its host's name; an address the fleet does not name stays as it is", () => {
    const { out, text } = capture();
    const view = new HumanView(out, { colour: false, hostNames: new Map([['127.0.0.2:8088', 'gaxx-web-0']]) });
    view.result(done('1', '127.0.0.2:8088'), [{ stream: 1, data: Buffer.from('a\n') }], false);
    view.result(done('2', '127.0.0.9:8088'), [{ stream: 1, data: Buffer.from('b\n') }], false);
    expect(text()).toBe('gaxx-web-0 [1]: a\n127.0.0.9:8088 [2]: b\n');
  });
});

describe('a labelled line', () => {
  it("shows a task's control characters escaped, so no output writes over its label or another host's line", () => {
    const { p, out } = printer(['h1', 'h2']);
    // A carriage return and "erase line" to pose as gaxx's own line, a title set, a bidi override.
    p.live('0', { stream: 1, data: Buffer.from('real\n\x1b[1A\x1b[2K\rgaxx: run X: all good\x1b]0;pwned\x07\n\u202eevil\n') });
    p.result(done('0', '127.0.0.2:8088'), [], true);
    expect(out()).toBe('h1: real\nh1: \\x1b[1A\\x1b[2K\\rgaxx: run X: all good\\x1b]0;pwned\\x07\nh1: \\u202eevil\n== h1: succeeded (exit 0, 12 ms)\n');
  });

  it('keeps text, UTF-8 and tabs as they are; a task list labels lines the same way', () => {
    const { p, out } = printer(['h1', 'h2']);
    p.live('0', { stream: 1, data: Buffer.from('a\tb é 漢\n') });
    p.result(done('0', 'x'), [], true);
    expect(out()).toBe('h1: a\tb é 漢\n== h1: succeeded (exit 0, 12 ms)\n');
    const c = capturedOutput();
    const text = (): string => c.stdout() + c.stderr();
    const view = new HumanView(c.out, { colour: false });
    view.result(done('7', '127.0.0.2:8088'), [{ stream: 1, data: Buffer.from('x\ry') }], false);
    expect(text()).toBe('127.0.0.2:8088 [7]: x\\ry\n');
  });

  it('with one host, passes the bytes through unchanged (as ssh does)', () => {
    const { p, out } = printer(['h1']);
    p.live('0', { stream: 1, data: Buffer.from('\x1b[31mred\x1b[0m\n') });
    p.result(done('0', 'h1'), [], true);
    expect(out()).toBe('\x1b[31mred\x1b[0m\n== h1: succeeded (exit 0, 12 ms)\n');
  });
});
