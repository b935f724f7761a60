// readExecStdin against real streams and files: which input is read, the bound, cancellation, and
// a stdin that cannot be read (FILE_ACCESS, never sent as empty); stdinUnreadable on real descriptors.
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_EXEC_STDIN_BYTES, readExecStdin } from '../../cli/exec-stdin.js';
import type { Io } from '../../cli/output.js';
import { stdinUnreadable } from '../../cli/std-streams.js';
import { GaxxError } from '../../proto/index.js';
import { MAX_MESSAGE_BYTES } from '../../scheduler/client/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gaxx-exec-stdin-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io(stdin: Readable | undefined, tty = false): Io {
  return { stdout: new PassThrough(), stderr: new PassThrough(), stderrLive: false, ...(stdin ? { stdin } : {}), stdinIsTty: tty };
}
const live = (): AbortSignal => new AbortController().signal;

describe('readExecStdin', () => {
  it('leaves room in one request for the rest of the message', () => {
    expect(MAX_EXEC_STDIN_BYTES).toBeGreaterThan(0);
    expect(MAX_EXEC_STDIN_BYTES).toBeLessThan(MAX_MESSAGE_BYTES);
  });

  it('reads piped stdin whole; empty input is no stdin', async () => {
    expect((await readExecStdin({ none: false }, io(Readable.from([Buffer.from('a\n'), Buffer.from('b\n')])), live()))?.toString()).toBe('a\nb\n');
    expect(await readExecStdin({ none: false }, io(Readable.from([])), live())).toBeUndefined();
    expect(await readExecStdin({ none: false }, io(undefined), live())).toBeUndefined();
  });

  it('never reads a terminal unless --stdin - asks for it', async () => {
    const never = new PassThrough(); // never ends: reading it would hang the test
    expect(await readExecStdin({ none: false }, io(never, true), live())).toBeUndefined();
    const asked = new PassThrough();
    asked.end('typed\n');
    expect((await readExecStdin({ file: '-', none: false }, io(asked, true), live()))?.toString()).toBe('typed\n');
  });

  it('the null device is not read, nor its stream made (with --stdin - too); a pipe is read as ever', async () => {
    const untouched = (): Io => {
      const base = io(undefined);
      return Object.defineProperty({ ...base, stdinIsNull: true }, 'stdin', {
        get: () => {
          throw new Error('stdin was made');
        },
      });
    };
    expect(await readExecStdin({ none: false }, untouched(), live())).toBeUndefined();
    expect(await readExecStdin({ file: '-', none: false }, untouched(), live())).toBeUndefined();
    expect((await readExecStdin({ none: false }, { ...io(Readable.from([Buffer.from('p')])), stdinIsNull: false }, live()))?.toString()).toBe('p');
  });

  it('--no-stdin reads nothing, even a pipe', async () => {
    const never = new PassThrough();
    expect(await readExecStdin({ none: true }, io(never), live())).toBeUndefined();
  });

  it('refuses input over the limit with INVALID_ARGUMENT, from a pipe and from a file', async () => {
    const pipe = Readable.from([Buffer.alloc(6), Buffer.alloc(5)]);
    await expect(readExecStdin({ none: false }, io(pipe), live(), 10)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const file = join(dir, 'eleven');
    writeFileSync(file, Buffer.alloc(11));
    await expect(readExecStdin({ file, none: false }, io(undefined), live(), 10)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await readExecStdin({ file, none: false }, io(undefined), live(), 11))?.length).toBe(11);
  });

  it('a missing file is NOT_FOUND and a directory INVALID_ARGUMENT', async () => {
    await expect(readExecStdin({ file: join(dir, 'nope'), none: false }, io(undefined), live())).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(readExecStdin({ file: dir, none: false }, io(undefined), live())).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('Ctrl-C while waiting for input is CANCELLED', async () => {
    const open = new PassThrough();
    open.write('partial');
    const ac = new AbortController();
    const reading = readExecStdin({ none: false }, io(open), ac.signal);
    setImmediate(() => ac.abort());
    await expect(reading).rejects.toMatchObject({ code: 'CANCELLED' });
    const pre = new AbortController();
    pre.abort();
    await expect(readExecStdin({ none: false }, io(new PassThrough()), pre.signal)).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('a stdin that cannot be read is FILE_ACCESS naming stdin and the errno, with --stdin - too; never sent as empty', async () => {
    const reset = (): Readable => {
      const s = new PassThrough();
      s.write('partial');
      setImmediate(() => s.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })));
      return s;
    };
    for (const file of [undefined, '-']) {
      const choice = { ...(file ? { file } : {}), none: false };
      await expect(readExecStdin(choice, io(reset()), live())).rejects.toMatchObject({
        code: 'FILE_ACCESS',
        message: 'cannot read stdin: the connection stdin reads from was reset (ECONNRESET)',
        details: { stream: 'stdin', errno: 'ECONNRESET' },
      });
      // Known before reading (a directory, open only for writing): said, and no stream made.
      const unreadable = new GaxxError('FILE_ACCESS', 'cannot read stdin (/tmp): stdin is a directory (EISDIR)');
      const untouched = Object.defineProperty({ ...io(undefined), stdinUnreadable: unreadable }, 'stdin', {
        get: () => {
          throw new Error('stdin was made');
        },
      });
      await expect(readExecStdin(choice, untouched, live())).rejects.toBe(unreadable);
    }
    // --stdin FILE whose read fails (/proc/self/mem at address 0: EIO): FILE_ACCESS naming the file.
    await expect(readExecStdin({ file: '/proc/self/mem', none: false }, io(undefined), live())).rejects.toMatchObject({
      code: 'FILE_ACCESS',
      details: { path: '/proc/self/mem', errno: 'EIO' },
    });
  });
});

describe('stdinUnreadable', () => {
  it('says what shows without reading: a directory (EISDIR), a descriptor open only for writing (EBADF); nothing for a readable one', () => {
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    const fds = { dir: openSync(dir, 'r'), writeOnly: openSync(file, 'a'), readable: openSync(file, 'r'), both: openSync(file, 'r+') };
    try {
      expect(stdinUnreadable(fds.dir)).toMatchObject({
        code: 'FILE_ACCESS',
        message: `cannot read stdin (${dir}): stdin is a directory (EISDIR)`,
        details: { stream: 'stdin', errno: 'EISDIR', path: dir },
      });
      expect(stdinUnreadable(fds.writeOnly)).toMatchObject({
        code: 'FILE_ACCESS',
        message: `cannot read stdin (${file}): stdin is not open for reading (EBADF)`,
        details: { errno: 'EBADF' },
      });
      expect(stdinUnreadable(fds.readable)).toBeUndefined();
      expect(stdinUnreadable(fds.both)).toBeUndefined();
    } finally {
      for (const fd of Object.values(fds)) closeSync(fd);
    }
  });
});
