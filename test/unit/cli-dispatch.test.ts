import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/commands.js';
import { knownFailure, reportError, wantsJson } from '../../cli/dispatch.js';
import { ReplyError } from 'ioredis';
import { exitCodeFor, GaxxError } from '../../proto/index.js';
import { misspeltEnv } from '../../cli/settings.js';
import { cliInProcess } from '../helpers/run-cli.js';

function capture() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const text = { out: '', err: '' };
  stdout.on('data', (d: Buffer) => (text.out += d.toString()));
  stderr.on('data', (d: Buffer) => (text.err += d.toString()));
  return { io: { stdout, stderr, stderrLive: false }, text };
}

const cli = (argv: string[], reads = { userName: 0, homeDir: 0 }, env: Record<string, string> = { GAXX_HOME: '/nonexistent-gaxx-home' }) =>
  cliInProcess(argv, { reads, env });

describe('cli dispatch', () => {
  it("an empty program (-- '') is USAGE saying so, the same for exec and run (not 'too large', not 'give the command')", async () => {
    for (const argv of [
      ['exec', '--agent', '127.0.0.1:1', '--', '', 'x'],
      ['run', '--agent', '127.0.0.1:1', '--', ''],
      ['run', '--agent', '127.0.0.1:1', '--tasks', '-', '--', '', '{}'],
    ]) {
      const r = await cliInProcess(argv);
      expect({ argv, code: r.code }).toEqual({ argv, code: exitCodeFor('USAGE') });
      expect(r.err).toMatch(/^gaxx: the command is empty \('' as the program\)/);
    }
    // No command at all is another mistake, said as such.
    expect((await cliInProcess(['exec', '--agent', '127.0.0.1:1', '--'])).err).toMatch(/^gaxx: give the command after --/);
  });

  it('a word that was not UTF-8 (U+FFFD where its bytes differ) is USAGE naming it; the bytes are read only when a word holds U+FFFD', async () => {
    const asked = { n: 0 };
    const bytesOf = (words: (string | Buffer)[]) => () => {
      asked.n += 1;
      return words.map((w) => Buffer.from(w));
    };
    const argv = ['exec', '--agent', '127.0.0.1:1', '--env', 'K=\uFFFD', '--', 'rm', 'a\uFFFD'];
    const lossy = await cliInProcess(argv, {
      argvBytes: bytesOf(['exec', '--agent', '127.0.0.1:1', '--env', 'K=\uFFFD', '--', 'rm', Buffer.from([0x61, 0xff])]),
    });
    expect(lossy.code).toBe(exitCodeFor('USAGE'));
    expect(lossy.err).toMatch(/^gaxx: argument 2 of the command after -- \('a\\xff'\) is not valid UTF-8/);
    expect(asked.n).toBe(1);
    const env = await cliInProcess(argv, {
      argvBytes: bytesOf(['exec', '--agent', '127.0.0.1:1', '--env', Buffer.from([0x4b, 0x3d, 0xc3]), '--', 'rm', 'a\uFFFD']),
    });
    expect(env.err).toMatch(/^gaxx: the argument 'K=\\xc3' \(after --env\) is not valid UTF-8/);
    // U+FFFD typed as such: the check passes (the command then fails on the missing installation).
    const typed = await cliInProcess(argv, { argvBytes: bytesOf(argv) });
    expect(typed.err).not.toMatch(/UTF-8|U\+FFFD/);
    // Bytes that cannot be read: a U+FFFD cannot be told from a byte that was not UTF-8.
    const unknown = await cliInProcess(argv, { argvBytes: () => undefined });
    expect(unknown.code).toBe(exitCodeFor('USAGE'));
    expect(unknown.err).toMatch(/holds U\+FFFD/);
    asked.n = 0;
    await cliInProcess(['exec', '--agent', '127.0.0.1:1', '--', 'true'], { argvBytes: bytesOf([]) });
    expect(asked.n).toBe(0);
  });

  it('unknown command is USAGE (exit 2) with a hint', async () => {
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^gaxx: .*\[USAGE\]\n$/);
  });

  it('asks for the home directory only for a default path: never with GAXX_HOME (without HOME, Node asks the passwd database)', async () => {
    const reads = { userName: 0, homeDir: 0 };
    expect((await cli(['certs', 'list'], reads)).err).toMatch(/gaxx init/);
    expect(reads.homeDir).toBe(0);
    // Without GAXX_HOME the XDG defaults under it are used, so it is asked for.
    const unset = await cli(['certs', 'list'], reads, {});
    expect(unset.err).toMatch(/\/nonexistent\/\.config\/gaxx/);
    expect(reads.homeDir).toBeGreaterThan(0);
    // Both XDG dirs given: not asked.
    const xdg = { userName: 0, homeDir: 0 };
    await cli(['certs', 'list'], xdg, { XDG_CONFIG_HOME: '/nonexistent-c', XDG_STATE_HOME: '/nonexistent-s' });
    expect(xdg.homeDir).toBe(0);
  });

  it("asks for the OS user's name only for the default operator name (gaxx init), not for every command", async () => {
    const reads = { userName: 0, homeDir: 0 };
    // certs list loads the configuration, then finds no installation there.
    const listed = await cli(['certs', 'list'], reads);
    expect(listed.err).toMatch(/gaxx init/);
    expect(reads.userName).toBe(0);
    const { loadConfig } = await import('../../cli/config.js');
    const config = loadConfig({ argv: [], env: {}, readFile: () => undefined, homeDir: '/h', userName: 'Jane Doe!' });
    expect(config.operatorName).toBe('Jane-Doe-');
    // A name set in the configuration is used without asking.
    const asked = { n: 0 };
    const named = loadConfig({
      argv: [],
      env: { GAXX_OPERATOR_NAME: 'ops' },
      readFile: () => undefined,
      homeDir: '/h',
      get userName() {
        asked.n += 1;
        return 'u';
      },
    });
    expect(named.operatorName).toBe('ops');
    expect(asked.n).toBe(0);
  });

  it('global flags before the command: a boolean one takes no value, so the word after it is the command', async () => {
    // certs list loads the configuration, then finds no installation there.
    for (const argv of [
      ['--redis-insecure', 'certs', 'list'],
      ['--home', '/nonexistent-gaxx-home', '--redis-insecure', 'certs', 'list'],
      ['--redis-url=redis://127.0.0.1:1', 'certs', 'list'],
    ]) {
      const r = await cli(argv);
      expect(r.err, argv.join(' ')).toMatch(/gaxx init.*\[NOT_FOUND\]/);
    }
  });

  it('no command is USAGE', async () => {
    expect((await cli([])).code).toBe(2);
  });

  it('unknown flag, missing value and stray positional are USAGE', async () => {
    expect((await cli(['init', '--bogus'])).code).toBe(2);
    expect((await cli(['certs', 'issue', '--role'])).code).toBe(2);
    expect((await cli(['certs', 'list', 'extra'])).code).toBe(2);
    expect((await cli(['certs', 'revoke'])).code).toBe(2);
    expect((await cli(['certs', 'nope'])).code).toBe(2);
  });

  it('a flag value that starts with - is USAGE saying how to give one, in one line', async () => {
    const r = await cli(['run', '--agent', 'h', '--retries', '-1', '--', 'true']);
    expect(r.code).toBe(2);
    expect(r.err).toBe("gaxx: --retries takes a value; write one that starts with '-' as --retries=VALUE (see 'gaxx run --help') [USAGE]\n");
    // So written, the value reaches the command's own check.
    const given = await cli(['run', '--agent', 'h', '--retries=-1', '--', 'true']);
    expect(given.code).toBe(2);
    expect(given.err).toMatch(/--retries/);
    expect(given.err).not.toMatch(/ambiguous/);
  });

  it('-- is refused for commands that take no argv, and exec without one is USAGE', async () => {
    expect((await cli(['certs', 'list', '--', 'x'])).code).toBe(2);
    expect((await cli(['exec', '--agent', '127.0.0.1:1'])).code).toBe(2);
    expect((await cli(['exec', '--', 'true'])).code).toBe(2);
  });

  it('--help and --version print to stdout and exit 0, for the program and every command', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    for (const c of COMMANDS) expect(top.out).toContain(c.name);
    expect((await cli(['--version'])).out).toMatch(/^\d+\.\d+\.\d+/);
    for (const c of COMMANDS) {
      const r = await cli([...c.name.split(' '), '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toContain('Usage: gaxx');
      expect(r.out).toContain('Examples:');
    }
    expect((await cli(['certs', '--help'])).code).toBe(0);
  });

  it('a command that needs the CA reports NOT_FOUND through the funnel', async () => {
    const r = await cli(['certs', 'list']);
    expect(r.code).toBe(exitCodeFor('NOT_FOUND'));
    expect(r.err).toMatch(/\[NOT_FOUND\]\n$/);
  });

  it('the funnel: GaxxError -> its exit code, bare Error -> 70 and says it is a bug', () => {
    const a = capture();
    expect(reportError(new GaxxError('INSECURE_FILE_MODE', 'x'), a.io)).toBe(exitCodeFor('INSECURE_FILE_MODE'));
    const b = capture();
    expect(reportError(new Error('boom'), b.io)).toBe(70);
    b.io.stderr.end();
    expect(b.text.err).toContain('internal error (this is a bug)');
  });

  it('under --json every usage error, flag parsing included, is one error object on stdout', async () => {
    const lines = [
      ['ls', '--json', '--bogus'],
      ['delete', '--json'],
      ['runs', 'show', '--json'],
      ['run', '--json', '--fleet', 'u3', '--bogus', '--', 'true'],
      ['exec', '--json', '--agent', 'X', '--bogus', '--', 'true'],
      ['cp', '--json', '--bogus', 'a', 'u3:b'],
      ['certs', 'list', '--json', '--bogus'],
      ['--json', 'frobnicate'],
    ];
    for (const argv of lines) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(JSON.parse(r.out), argv.join(' ')).toMatchObject({ error: { code: 'USAGE', exitCode: 2 } });
    }
    // Without --json (or with it only in the remote command's argv) stdout stays empty.
    expect((await cli(['ls', '--bogus'])).out).toBe('');
    expect((await cli(['run', '--fleet', 'u3', '--bogus', '--', 'cmd', '--json'])).out).toBe('');
  });

  it("the unknown-option line has balanced quotes and says where a command's own arguments go", async () => {
    for (const argv of [
      ['ls', '--bogus'],
      ['run', '--fleet', 'u3', '--bogus', '--', 'true'],
    ]) {
      const r = await cli(argv);
      expect(r.err).toMatch(/\[USAGE\]\n$/);
      expect((r.err.match(/'/g) ?? []).length % 2).toBe(0);
      expect(r.err).not.toContain('"');
    }
  });

  it('an error that is not a GaxxError is an INTERNAL error object on stdout under --json', () => {
    expect(wantsJson(['ls', '--json'])).toBe(true);
    expect(wantsJson(['run', '--', 'x', '--json'])).toBe(false);
    const c = capture();
    expect(reportError(new Error('boom'), c.io, false, true)).toBe(70);
    c.io.stdout.end();
    expect(JSON.parse(c.text.out)).toMatchObject({ error: { code: 'INTERNAL', exitCode: 70 } });
  });
});

describe('a misspelt setting in the environment', () => {
  it('is named with the setting meant (nothing reads it); correct names, the agent flags and far names are not', async () => {
    expect(misspeltEnv({ GAXX_REDIS_ULR: 'redis://x', GAXX_DEADLINE: '5', GAXX_SCHEDULER_CONCURENCY: '4', GAXX_AGENT_TOKN: 't' })).toEqual([
      { name: 'GAXX_REDIS_ULR', meant: 'GAXX_REDIS_URL' },
      { name: 'GAXX_DEADLINE', meant: 'GAXX_DEADLINE_MS' },
      { name: 'GAXX_SCHEDULER_CONCURENCY', meant: 'GAXX_SCHEDULER_CONCURRENCY' },
      { name: 'GAXX_AGENT_TOKN', meant: 'GAXX_AGENT_TOKEN' },
    ]);
    // Read by gaxx (settings, its home, the agent's flags and mode), or no setting's near miss.
    const quiet = {
      GAXX_REDIS_URL: 'redis://x',
      GAXX_HOME: '/h',
      GAXX_ENV: 'production',
      GAXX_DEBUG: '1',
      GAXX_SPAWN: 'node',
      GAXX_AGENT_CERTS: '/c',
      GAXX_AGENT_CAPACITY: '4',
      GAXX_PACKAGES: 'x',
      GAXX_TEST_CLI: 'x',
      REDIS_ULR: 'x',
    };
    expect(misspeltEnv(quiet)).toEqual([]);
  });

  it('is said on stderr by every command, which goes on (also with --json)', async () => {
    const r = await cliInProcess(['certs', 'list', '--json'], { env: { GAXX_HOME: '/nonexistent-gaxx-home', GAXX_REDIS_ULR: 'redis://127.0.0.1:1' } });
    expect(r.err).toContain('gaxx: GAXX_REDIS_ULR is not a setting gaxx reads (ignored); did you mean GAXX_REDIS_URL?');
    const clean = await cliInProcess(['certs', 'list', '--json'], { env: { GAXX_HOME: '/nonexistent-gaxx-home' } });
    expect(clean.err).not.toContain('not a setting');
    // The command itself ran as without the variable (here: no CA in that home).
    expect(r.code).toBe(clean.code);
    expect(r.out).toBe(clean.out);
  });
});

describe('knownFailure: a failure of the Redis client that no command put in its own words', () => {
  it.each([
    ['a request left unanswered', new Error('Command timed out'), /^the queue's Redis: no answer in time \(it keeps the connection but answers nothing/],
    ['a connection closed under a request', new Error('Connection is closed.'), /^the queue's Redis: Connection is closed\.$/],
    ['a refusal', new ReplyError('OOM command not allowed when used memory > maxmemory'), /^the queue's Redis: OOM command not allowed/],
  ])('%s is REDIS_UNAVAILABLE (12), not an internal error', async (_name, raw, message) => {
    const known = await knownFailure(raw);
    expect(known).toBeInstanceOf(GaxxError);
    expect(known).toMatchObject({ code: 'REDIS_UNAVAILABLE', message: expect.stringMatching(message) });
    const stderr = new PassThrough();
    let text = '';
    stderr.on('data', (b: Buffer) => (text += b.toString()));
    const code = reportError(known, { stdout: new PassThrough(), stderr } as never);
    expect(code).toBe(exitCodeFor('REDIS_UNAVAILABLE'));
    expect(text).toMatch(/\[REDIS_UNAVAILABLE\]\n$/);
  });

  it('leaves a bug a bug, and a gaxx error as it is', async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    expect(await knownFailure(bug)).toBe(bug);
    const own = new GaxxError('NOT_FOUND', 'no such run');
    expect(await knownFailure(own)).toBe(own);
    expect(await knownFailure('a string')).toBe('a string');
  });
});
