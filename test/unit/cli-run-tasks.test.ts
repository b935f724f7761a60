// gaxx run --tasks building blocks: template, record reader, record checks, batch puller, results-dir names, summary, progress, plan.
import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { exitCodeFor } from '../../proto/index.js';
import { planRun, DEFAULT_WINDOW } from '../../cli/run/plan.js';
import { progressText } from '../../cli/run/progress.js';
import { resultName } from '../../cli/run/results-dir.js';
import { noteUnreachable, summarize, summaryExitCode, summaryText } from '../../cli/run/summary.js';
import { recordTask } from '../../cli/run/records.js';
import { MAX_RECORD_BYTES, readRecords, type RawRecord } from '../../cli/run/task-source.js';
import { optionSlots } from '../../cli/run/option-records.js';
import { walk } from '../../cli/run/programs.js';
import { shellCode } from '../../cli/run/shell-code.js';
import { CommandTemplate } from '../../cli/run/template.js';
import { BatchPuller } from '../../scheduler/queue/batches.js';

async function rawRecords(chunks: Array<string | Buffer>, sep: '\n' | '\0' = '\n'): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const r of readRecords(Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c))), sep)) out.push(r);
  return out;
}

/** Records as text, an over-long one as '<too long>'. */
async function records(chunks: Array<string | Buffer>, sep: '\n' | '\0' = '\n'): Promise<string[]> {
  return (await rawRecords(chunks, sep)).map((r) => (Buffer.isBuffer(r) ? r.toString('latin1') : '<too long>'));
}

/** Each argv holds code with {} in it: shellCode finds it and CommandTemplate refuses it (USAGE). */
function expectCode(argvs: string[][]): void {
  for (const argv of argvs) {
    expect(
      shellCode(argv).some((w) => w.includes('{}')),
      argv.join(' '),
    ).toBe(true);
    expect(() => CommandTemplate.compile(argv), argv.join(' ')).toThrow(expect.objectContaining({ code: 'USAGE' }));
  }
}

/** Each argv has {} only where it stays data: CommandTemplate compiles it. */
function expectNoCode(argvs: string[][]): void {
  for (const argv of argvs) expect(() => CommandTemplate.compile(argv), argv.join(' ')).not.toThrow();
}

describe('command template', () => {
  it('replaces {} and {#} as (parts of) single arguments, never splitting them', () => {
    const t = CommandTemplate.compile(['curl', '-o', 'out/{#}-{}.html', '{}']);
    expect(t.render('a b; rm -rf /', 7)).toEqual(['curl', '-o', 'out/7-a b; rm -rf /.html', 'a b; rm -rf /']);
  });

  it('appends the record when there is no {}', () => {
    expect(CommandTemplate.compile(['echo', 'x']).render('r', 1)).toEqual(['echo', 'x', 'r']);
  });

  it('refuses {} inside a shell -c script (USAGE), but allows it as a positional parameter, and {#} in the script', () => {
    for (const argv of [
      ['sh', '-c', 'echo {}'],
      ['/bin/bash', '-ec', 'x={}'],
      ['env', 'sh', '-c', 'echo {}'],
      ['busybox', 'sh', '-c', '{}'],
    ]) {
      expect(() => CommandTemplate.compile(argv)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    }
    expect(CommandTemplate.compile(['sh', '-c', 'echo "$1"', '_', '{}']).render('$(id)', 1)).toEqual(['sh', '-c', 'echo "$1"', '_', '$(id)']);
    // {#} is a number gaxx makes, not input: it may stand in a script.
    expect(CommandTemplate.compile(['sh', '-c', 'echo {#} "$1"', '_', '{}']).render('x; id', 7)).toEqual(['sh', '-c', 'echo 7 "$1"', '_', 'x; id']);
    for (const argv of [
      ['env', 'sh', '-c', 'echo {#}'],
      ['bash', '-O', 'extglob', '-c', 'echo {#}'],
      ['flock', 'L', '-c', 'echo {#}'],
      ['watch', 'echo', '{#}'],
      ['env', '-S', 'echo {#}'],
    ]) {
      expect(() => CommandTemplate.compile(argv), argv.join(' ')).not.toThrow();
    }
    expect(() => CommandTemplate.compile([])).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  it('finds a shell given a script anywhere in argv: behind wrappers, with clustered and long options', () => {
    const refused = [
      ['nice', 'sh', '-c', 'echo {}'],
      ['nice', '-n', '5', 'sh', '-c', 'echo {}'],
      ['timeout', '5', 'sh', '-c', 'echo {}'],
      ['xargs', 'sh', '-c', 'echo {}'],
      ['setsid', 'sh', '-c', 'echo {}'],
      ['stdbuf', '-oL', 'sh', '-c', 'echo {}'],
      ['env', 'VAR=1', 'sh', '-c', 'echo {}'],
      ['/usr/bin/env', '-i', 'PATH=/bin', '/bin/dash', '-c', 'echo {}'],
      ['sudo', '-u', 'nobody', 'bash', '-c', 'echo {}'],
      ['sh', '-xc', 'echo {}'],
      ['bash', '--norc', '-c', 'echo {}'],
      ['bash', '--noprofile', '--rcfile', 'x', '-c', 'echo {}'],
      ['bash', '-euo', 'pipefail', '-c', 'echo {}'],
      ['bash', '-O', 'extglob', '-c', 'echo {}'],
      ['bash', '-c', '--', 'echo {}'],
      ['zsh', '-c', 'echo out/{}.txt'],
      ['fish', '-c', 'echo {}'],
      // A shell script that runs another shell on a script of its own: each script counts.
      ['sh', '-c', 'exec "$@"', '_', 'sh', '-c', 'echo {}'],
    ];
    for (const argv of refused) {
      expect(() => CommandTemplate.compile(argv), argv.join(' ')).toThrow(expect.objectContaining({ code: 'USAGE' }));
      expect(
        shellCode(argv).some((s) => s.includes('{}')),
        argv.join(' '),
      ).toBe(true);
    }
    const accepted = [
      ['echo', '{}'],
      ['sh', 'script.sh', '{}'],
      ['bash', '-e', 'script.sh', '{}'],
      ['sh', '-c', 'echo "$1"', '_', '{}'],
      ['nice', 'sh', '-c', 'echo "$1"', 'x-{}', '{}'],
      ['timeout', '5', 'bash', '--norc', '-c', 'printf %s "$1"', '_', '{#}-{}'],
      ['sh', '--', 'script.sh', '-c', '{}'],
      ['shellcheck', '-s', 'sh', '{}'],
      ['cp', '{}', '/tmp/sh'],
    ];
    for (const argv of accepted) expect(() => CommandTemplate.compile(argv), argv.join(' ')).not.toThrow();
    expect(shellCode(['timeout', '5', 'bash', '--norc', '-c', 'S', '_', '{}'])).toEqual(['S']);
    expect(shellCode(['sh', 'script.sh', '-c', 'x'])).toEqual([]);
  });

  it('finds the code of other programs that run a word as shell code: more shells, flock/script/su/runuser -c, sg, watch, env -S', () => {
    const refused = [
      ['rbash', '-c', 'echo {}'],
      ['csh', '-fc', 'echo {}'],
      ['tcsh', '-c', 'echo {}'],
      ['mksh', '-c', 'echo {}'],
      ['yash', '-c', 'echo {}'],
      ['posh', '-c', 'echo {}'],
      ['/usr/bin/ksh93', '-c', 'echo {}'],
      ['bash5', '-c', 'echo {}'],
      ['fish', '--command=echo {}'],
      ['flock', '/tmp/l', '-c', 'echo {}'],
      ['flock', '-w', '5', '/tmp/l', '--command', 'echo {}'],
      ['nice', 'flock', '--timeout', '5', '-n', '/tmp/l', '-c', 'echo {}'],
      ['script', '-q', '-c', 'echo {}', '/dev/null'],
      ['script', '-qc', 'echo {}', '/dev/null'],
      ['script', '-qcecho {}', '/dev/null'],
      ['script', '/dev/null', '--command=echo {}'],
      ['script', '-E', 'never', '--comm', 'echo {}'],
      ['su', '-c', 'echo {}', 'nobody'],
      ['su', '-', 'nobody', '-c', 'echo {}'],
      ['su', '-s', '/bin/sh', '--session-command', 'echo {}', 'nobody'],
      ['runuser', '-u', 'nobody', '-c', 'echo {}'],
      ['runuser', '--command=echo {}', 'nobody'],
      ['watch', 'echo {}'],
      ['watch', '-n', '1', 'echo', '{}'],
      ['timeout', '5', 'watch', '-t', '--', 'cat', 'out/{}'],
      ['nice', '-n', '5', 'watch', 'echo {}'],
      ['sudo', '-u', 'nobody', 'watch', 'echo {}'],
      ['env', 'TERM=dumb', 'watch', 'echo {}'],
      ['env', '-S', 'sh -c "echo {}"'],
      ['env', '-S', 'echo {}'],
      ['env', '-iS', 'sh -c', 'echo {}'],
      ['env', '--split-string=FOO=1 bash -ec', 'echo {}'],
      ['env', '-S', "env -S 'sh -c' 'echo {}'"],
      ['env', '-S', "env -S 'sh -c'", 'echo {}'],
      // sg hands its command to /bin/sh -c, with -c or without it.
      ['sg', 'nogroup', '-c', '{}'],
      ['sg', 'nogroup', 'echo {}'],
      ['sg', '-', 'nogroup', '-c', 'echo {}'],
      ['/usr/bin/sg', 'nogroup', '{}'],
      ['timeout', '5', 'sg', 'nogroup', '-c', '{}'],
      // Behind wrappers that run the words after them: a program that needs no option to run code.
      ['unshare', '-r', 'sg', 'nogroup', '{}'],
      ['nsenter', '-t', '1', '-n', 'watch', 'echo {}'],
      ['prlimit', '--nofile=64', 'watch', 'echo {}'],
      ['setpriv', '--reuid=1', 'watch', 'echo {}'],
      ['numactl', '--cpunodebind=0', 'watch', 'echo {}'],
      ['runuser', '-u', 'nobody', '--', 'watch', 'echo {}'],
      ['chroot', '/srv/root', 'watch', 'echo {}'],
      ['flock', '/tmp/l', 'watch', 'echo {}'],
      ['flock', '-n', '/tmp/l', 'sg', 'nogroup', '{}'],
    ];
    for (const argv of refused) {
      expect(() => CommandTemplate.compile(argv), argv.join(' ')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    }
    // Options that only look alike, and programs that run their argv as it is (no -c, watch -x, after `--`).
    const accepted = [
      ['grep', '-c', '{}'],
      ['wc', '-c', '{}'],
      ['curl', '-c', 'cookies', '{}'],
      ['git', '-c', 'k=v', 'log', '{}'],
      ['ssh', '-c', 'aes128-ctr', '{}', 'uptime'],
      ['tar', '-c', '-f', 'out.tar', '{}'],
      ['flock', 'L', 'cmd', '{}'],
      ['flock', 'L', 'grep', '-c', '{}'],
      ['flock', '-w', '5', 'L', 'cat', '{}'],
      ['flock', 'L', '-c', 'cat "$1"', '{}'],
      ['script', '-q', '-c', 'cat out.log', 'log-{}'],
      ['su', 'nobody', '-s', '/bin/sh', '-c', 'echo "$1"', '--', '_', '{}'],
      ['runuser', '-u', 'nobody', '--', 'grep', '-c', '{}'],
      ['watch', '-x', 'cat', '{}'],
      ['watch', '-n', '{#}', '--exec', 'cat', 'out/{}'],
      ['env', '-S', 'sh -c \'echo "$1"\' _', '{}'],
      ['env', '-u', 'X', 'cat', '{}'],
      ['env', '-C', '/tmp', 'grep', '-c', '{}'],
      // The word watch where no program stands: data, not a program.
      ['grep', 'watch', '{}'],
      ['grep', '-i', 'watch', '{}'],
      ['grep', 'sg', 'x', '{}'],
      ['sg', 'nogroup', '-c', 'cat', '{}'],
      ['sg', '{}', '-c', 'id'],
      ['chroot', '/srv/root', 'cat', '{}'],
    ];
    for (const argv of accepted) expect(() => CommandTemplate.compile(argv), argv.join(' ')).not.toThrow();
    expect(shellCode(['env', '-S', 'sh -c', 'echo {}'])).toEqual(['sh -c', 'echo {}']);
    // env splits its string with quotes and escapes; a nested env -S is looked into too.
    expect(shellCode(['env', '-S', 'X=\'a b\' "sh" -\\c', 'echo {}'])).toEqual(['X=\'a b\' "sh" -\\c', 'echo {}']);
    expect(shellCode(['env', '-S', "env -S 'sh -c'", 'echo {}'])).toContain('echo {}');
  });

  it('refuses {} in python -c code (USAGE), and allows it as an argument of the code or a script', () => {
    expect(() => CommandTemplate.compile(['python3', '-c', "print('{}')"])).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expectCode([
      ['python3', '-c', "print('{}')"],
      ['python', '-c', 'x = "{}"'],
      ['python2', '-c', 'print "{}"'],
      ['/usr/bin/python3.11', '-c', '{}'],
      ['pypy', '-c', '{}'],
      ['pypy3', '-c', '{}'],
      ['python3', '-Bc', 'print("{}")'],
      ['python3', '-cprint("{}")'],
      ['python3', '-BEs', '-uc', '{}'],
      ['python3', '-W', 'ignore', '-c', '{}'],
      ['python3', '-Wignore', '-X', 'dev', '-c', '{}'],
      ['python3', '-X', 'importtime', '-I', '-c', '{}'],
      ['python3', '--check-hash-based-pycs', 'never', '-c', '{}'],
      ['python3', '-c', '{}', 'arg'],
      ['timeout', '5', 'python3', '-c', '{}'],
      ['nice', '-n', '5', 'env', 'PYTHONPATH=.', 'python3', '-c', '{}'],
      ['env', '-S', 'python3 -c', 'print("{}")'],
    ]);
    expectNoCode([
      ['python3', 'script.py', '{}'],
      ['python3', '-c', 'import sys; print(sys.argv[1])', '{}'],
      ['python3', '-u', 'script.py', '-c', '{}'],
      // -c and -m end the options: what follows is the program's.
      ['python3', '-c', 'import sys; print(sys.argv)', '-c', '{}'],
      ['python3', '-m', 'http.server', '-c', '{}'],
      ['python3', '-Bm', 'mod', '-c', '{}'],
      ['python3', '-W', '{}', '-c', 'print(1)'],
      ['python3', '--', '-c', '{}'],
      ['grep', 'python3', '{}'],
      ['grep', '-c', 'python', '{}'],
    ]);
  });

  it('refuses {} in perl -e/-E lines (clustered, attached, several), and in -M, -F and -d: code', () => {
    expectCode([
      ['perl', '-e', 'print "{}"'],
      ['perl', '-E', 'say "{}"'],
      ['perl', '-ne', 'print if /{}/'],
      ['perl', '-lne', 'print "{}"'],
      ['perl', '-pe', 's/x/{}/'],
      ['perl', '-eprint "{}"'],
      ['perl', '-neprint if /{}/'],
      ['perl', '-e', '1;', '-e', '{}'],
      ['perl', '-0777', '-ne', '{}'],
      ['perl', '-0777ne', '{}'],
      ['perl', '-i.bak', '-pe', 's/{}//'],
      ['perl', '-I', 'lib', '-Mstrict', '-we', '{}'],
      ['perl', '-F:', '-lane', '{}'],
      ['perl', '-d:Size', '-e', '{}'],
      ['perl', '-M{}', '-e', '1'],
      ['perl', '-F/{}/', '-ane', '1'],
      ['perl', '-d:{}', '-e', '1'],
      ['/usr/bin/perl5.36', '-e', '{}'],
      ['timeout', '5', 'perl', '-e', '{}'],
    ]);
    expectNoCode([
      ['perl', '-ne', 'print', '{}'],
      ['perl', 'script.pl', '{}'],
      ['perl', '-e', 'print $ARGV[0]', '{}'],
      ['perl', '-i.bak', '-pe', 's/a/b/', '{}'],
      ['perl', '-I', '{}', '-e', 'print 1'],
      ['perl', 'script.pl', '-e', '{}'],
      ['perl', '--', 'script.pl', '-e', '{}'],
      ['grep', 'perl', '{}'],
    ]);
  });

  it('refuses {} in ruby -e lines', () => {
    expectCode([
      ['ruby', '-e', 'puts "{}"'],
      ['ruby', '-ne', 'puts "{}"'],
      ['ruby', '-e{}'],
      ['ruby', '-e', '1', '-e', '{}'],
      ['ruby', '-I', 'lib', '-r', 'json', '-e', '{}'],
      ['ruby', '-W:no-deprecated', '-e', '{}'],
      ['ruby', '-i.bak', '-pe', '{}'],
      ['ruby', '--disable', 'gems', '-e', '{}'],
      ['ruby3.1', '-e', '{}'],
      ['xargs', 'ruby', '-e', '{}'],
    ]);
    expectNoCode([
      ['ruby', 'script.rb', '{}'],
      ['ruby', '-e', 'puts ARGV[0]', '{}'],
      ['ruby', '-i.bak', '-pe', 'x', '{}'],
      ['ruby', '-r', '{}', 'script.rb'],
      ['ruby', 'script.rb', '-e', '{}'],
    ]);
  });

  it('refuses {} in node -e/--eval and -p/--print code, and in a module it loads first by --import', () => {
    expectCode([
      ['node', '-e', 'console.log("{}")'],
      ['node', '--eval', '{}'],
      ['node', '--eval={}'],
      ['node', '-p', '"{}"'],
      ['node', '-pe', '"{}"'],
      ['node', '--print', '{}'],
      ['node', '--print={}'],
      // -p takes no value that starts with -: it is --print, then --eval CODE.
      ['node', '-p', '-e', '{}'],
      ['node', '-r', './setup.js', '--title', 't', '-e', '{}'],
      ['node', '--inspect', '--no-warnings', '-e', '{}'],
      ['node', '--import', '{}', 'app.js'],
      ['nodejs', '-e', '{}'],
      ['/usr/local/bin/node20', '-e', '{}'],
      ['timeout', '5', 'node', '-e', '{}'],
    ]);
    expectNoCode([
      ['node', 'app.js', '{}'],
      ['node', 'app.js', '-e', '{}'],
      ['node', '-e', 'console.log(process.argv[1])', '{}'],
      ['node', '--title', '{}', 'app.js'],
      ['node', '-r', './setup.js', 'app.js', '-p', '{}'],
      ['node', '--', 'app.js', '-e', '{}'],
      ['grep', 'node', '{}'],
    ]);
  });

  it('refuses {} in an awk program (the first operand without -f/-e), and gawk -e/--source text', () => {
    expectCode([
      ['awk', '{print "{}"}'],
      ['awk', '/{}/'],
      ['awk', '-F:', '$1 == "{}"'],
      ['awk', '-F', ':', '-v', 'x=1', '/{}/', 'file'],
      ['awk', '-vx=1', '-f', 'lib.awk', '-e', '/{}/'],
      ['gawk', '-e', 'BEGIN { print "{}" }'],
      ['gawk', '--source', '/{}/'],
      ['gawk', '--source=/{}/', 'file'],
      ['gawk', '-W', 'source=/{}/'],
      ['gawk', '-dvars.txt', '/{}/'],
      ['mawk', '--', '/{}/', 'file'],
      ['nawk', '/{}/'],
      ['/usr/bin/gawk-5.1.0', '/{}/'],
      ['timeout', '5', 'awk', '/{}/'],
      ['sudo', '-u', 'nobody', 'awk', '/{}/'],
      ['env', 'LC_ALL=C', 'awk', '/{}/'],
      ['busybox', 'awk', '/{}/'],
      ['xargs', '-0', 'awk', '/{}/'],
    ]);
    expectNoCode([
      ['awk', '-f', 'prog.awk', '{}'],
      // {print $1} holds no {}: the record is the file operand.
      ['awk', '{print $1}', '{}'],
      ['awk', '-F', '{}', '{print $1}', 'file'],
      ['awk', '-v', 'pat={}', '$0 ~ pat', 'file'],
      ['awk', '{print x}', 'x={}', 'file'],
      ['gawk', '--file=prog.awk', '{}'],
      ['mawk', '-W', 'exec', 'prog.awk', '{}'],
      // awk as a word where no program stands: data.
      ['grep', 'awk', '{}'],
      ['grep', '-e', 'awk', '{}'],
    ]);
  });

  it('refuses {} in a sed script (-e/--expression values, else the first operand)', () => {
    expectCode([
      ['sed', 's/x/{}/'],
      ['sed', '-n', '/{}/p', 'file'],
      ['sed', '-e', 's/a/b/', '-e', 's/{}//'],
      ['sed', '-es/{}//'],
      ['sed', '--expression=s/{}//'],
      ['sed', '--expr', 's/{}//'],
      ['sed', '-ne', 's/{}//p'],
      ['sed', '-E', '-s', 's/({})//'],
      // GNU sed permutes: an option after an operand is read.
      ['sed', 'file', '-e', 's/{}//'],
      ['sed', '-i.bak', 's/{}//', 'file'],
      ['sed', '-ie', 's/{}//', 'file'],
      ['sed', '-l', '5', 'l;s/{}//'],
      ['timeout', '5', 'sed', 's/{}//'],
      ['find', '.', '-exec', 'sed', '-i', 's/{}//', ';'],
    ]);
    expectNoCode([
      ['sed', '-e', 's/a/b/', '{}'],
      ['sed', 's/a/b/', '{}'],
      ['sed', '-f', 'script.sed', '{}'],
      ['sed', '-i', 's/a/b/', '{}'],
      ['sed', '-l', '5', 's/a/b/', '{}'],
      ['sed', '-n', '--', 'p', '{}'],
      ['grep', 'sed', 'x', '{}'],
    ]);
  });

  it("refuses {} in ssh's remote command and in -o options that run a command; the destination is no code", () => {
    expectCode([
      ['ssh', 'host', 'echo {}'],
      ['ssh', 'host', 'cat', '{}'],
      ['ssh', '-p', '22', '-i', 'key', 'user@host', 'ls', 'out/{}'],
      ['ssh', '-c', 'aes128-ctr', 'host', 'cat', '{}'],
      ['ssh', '-tt', '-J', 'jump', 'host', '{}'],
      // ssh reads options after the destination too, unless -- came before it.
      ['ssh', 'host', '-l', 'u', 'ls', '{}'],
      ['ssh', '--', 'host', '-l', '{}'],
      ['ssh', 'host', '--', 'ls', '{}'],
      ['ssh', '-oProxyCommand=nc {} 22', 'host'],
      ['ssh', '-o', 'proxycommand nc {} 22', 'host', 'uptime'],
      ['ssh', '-o', 'LocalCommand={}', '-o', 'PermitLocalCommand=yes', 'host'],
      ['ssh', '-o', 'RemoteCommand=cat {}', 'host'],
      ['ssh', '-o', 'KnownHostsCommand = /bin/x {}', 'host'],
      ['ssh', 'host', '-o', 'ProxyCommand={}'],
      // A key from the record could name any option.
      ['ssh', '-o', '{}', 'host'],
      ['timeout', '5', 'ssh', 'host', 'cat', '{}'],
      ['sudo', '-u', 'deploy', 'ssh', 'host', 'cat', '{}'],
    ]);
    expectNoCode([
      ['ssh', '{}', 'uptime'],
      ['ssh', '-p', '22', '{}'],
      ['ssh', '-l', '{}', 'host', 'uptime'],
      ['ssh', '-i', 'keys/{}', 'host', 'uptime'],
      ['ssh', '-o', 'Port={}', 'host', 'uptime'],
      ['ssh', '-oUser={}', 'host'],
      ['ssh', '--', '{}', 'uptime'],
      ['grep', 'ssh', 'x', '{}'],
      ['rsync', '-e', 'ssh', 'src', '{}'],
    ]);
  });

  it('refuses {} in php -r code and in -B, -R, -E code', () => {
    expectCode([
      ['php', '-r', 'echo "{}";'],
      ['php', '-r', '{}'],
      ['php', '-r={}'],
      ['php', '-r{}'],
      ['php', '--run', '{}'],
      ['php', '-n', '-d', 'memory_limit=1G', '-r', '{}'],
      ['php', '-B', '{}', '-R', 'echo $argn;'],
      ['php', '-R', 'echo "{}";'],
      ['php', '-E', '{}'],
      ['php8.2', '-r', '{}'],
      ['timeout', '5', 'php', '-r', '{}'],
    ]);
    expectNoCode([
      ['php', 'script.php', '{}'],
      ['php', '-f', 'script.php', '{}'],
      ['php', '-r', 'echo $argv[1];', '{}'],
      ['php', '-d', 'x={}', 'script.php'],
      ['php', 'script.php', '-r', '{}'],
    ]);
  });

  it('finds a program behind more wrappers: strace, capsh, bwrap (options with two words), systemd-run, ssh-agent, dbus-run-session...', () => {
    expectCode([
      ['strace', '-f', 'awk', '{}'],
      ['strace', '-f', '-e', 'trace=file', '-o', 'trace.txt', 'sed', 's/{}//'],
      ['ltrace', 'awk', '{}'],
      // capsh hands the words after -- (or -+) to bash, after == to capsh again.
      ['capsh', '--', '-c', '{}'],
      ['capsh', '--user=nobody', '--', '-c', 'echo {}'],
      ['capsh', '--drop=cap_net_raw', '==', '--', '-ec', 'echo {}'],
      ['capsh', '-+', '-c', '{}'],
      ['bwrap', '--ro-bind', '/', '/', 'awk', '{}'],
      ['bwrap', '--bind', '/tmp', '/tmp', '--dev', '/dev', '--setenv', 'A', 'B', '--unshare-all', 'sed', 's/{}//'],
      ['bwrap', '--overlay', 'rw', 'work', '/', '--', 'watch', 'echo {}'],
      ['nice', 'bwrap', '--ro-bind', '/', '/', 'awk', '{}'],
      ['cat', 'x', 'bwrap', '--ro-bind', '/', '/', 'awk', '{}'],
      ['systemd-run', 'awk', '{}'],
      ['systemd-run', '--user', '-p', 'MemoryMax=1G', '--unit', 'u', 'awk', '{}'],
      ['ssh-agent', 'awk', '{}'],
      ['ssh-agent', '-a', '/tmp/agent.sock', 'sed', 's/{}//'],
      ['dbus-run-session', 'awk', '{}'],
      ['dbus-run-session', '--config-file', 'session.conf', '--', 'awk', '{}'],
      ['valgrind', '--tool=memcheck', '-q', 'awk', '{}'],
      ['setarch', 'x86_64', '-R', 'awk', '{}'],
      ['linux32', 'awk', '{}'],
      ['perf', 'stat', '-e', 'cycles', 'awk', '{}'],
      ['gdb', '--args', 'awk', '{}'],
      ['fakeroot', 'sed', 's/{}//'],
      ['ip', 'netns', 'exec', 'ns1', 'awk', '{}'],
      ['unbuffer', 'awk', '{}'],
      ['firejail', '--quiet', 'awk', '{}'],
      ['sshpass', '-p', 'secret', 'ssh', 'host', 'cat', '{}'],
      ['srun', '-n', '4', 'awk', '{}'],
      // fish: -c takes the next word as getopt does, and -C (--init-command) is code too.
      ['fish', '-d', '3', '-c', 'echo {}'],
      ['fish', '-C', 'echo {}'],
      ['fish', '--init-command=echo {}', '-c', 'true'],
    ]);
    expectNoCode([
      ['bwrap', '--ro-bind', '/', '/', 'cat', '{}'],
      ['capsh', '--', '-c', 'echo "$1"', '_', '{}'],
      ['strace', '-f', 'cat', '{}'],
      ['fish', '-c', 'echo $argv', '{}'],
      ['ip', 'addr', 'show', '{}'],
      ['grep', 'capsh', '{}'],
    ]);
  });

  it('refuses {} in option values that are a command line or a program: git, tar, rsync, scp, sftp, make, gdb, strace -o, parallel', () => {
    expectCode([
      // git's configuration keys whose value git runs, from -c, --config-env, git config, clone -c.
      ['git', '-c', 'core.sshCommand={}', 'fetch'],
      ['git', '-c', 'core.sshCommand=ssh -i {}', 'fetch'],
      ['git', '-c', 'Core.SSHCommand={}', 'fetch'],
      ['git', '-ccore.pager=less {}', 'log'],
      ['git', '-C', 'repo', '-c', 'core.fsmonitor={}', 'status'],
      ['git', '-c', 'core.editor={}', 'commit'],
      ['git', '-c', 'alias.x=!echo {}', 'x'],
      ['git', '-c', 'credential.helper=!f() { echo {}; }; f', 'fetch'],
      ['git', '-c', 'filter.lfs.smudge={}', 'checkout', '.'],
      ['git', '-c', 'diff.x.textconv={}', 'diff'],
      ['git', '-c', '{}', 'log'],
      ['git', '-c', '{}=x', 'log'],
      ['git', '--config-env={}=VAR', 'log'],
      ['git', 'config', 'core.sshCommand', '{}'],
      ['git', 'config', '--global', 'alias.up', '!echo {}'],
      ['git', 'config', 'set', 'core.pager', '{}'],
      ['git', 'config', '{}', 'x'],
      ['git', 'clone', '-u', '{}', 'repo', 'dir'],
      ['git', 'clone', '--upload-pack={}', 'repo'],
      ['git', 'clone', '--upload', '{}', 'repo'],
      ['git', 'clone', '-c', 'core.sshCommand={}', 'host:repo'],
      ['git', 'fetch', '--upload-pack', '{}', 'origin'],
      ['git', 'ls-remote', '--upload-pack={}', 'origin'],
      ['git', 'push', '--receive-pack={}', 'origin'],
      ['git', 'archive', '--remote=r', '--exec={}', 'HEAD'],
      ['git', 'rebase', '-x', '{}', 'main'],
      ['git', 'rebase', '--exec=make {}', 'main'],
      ['git', 'submodule', 'foreach', 'echo {}'],
      ['git', 'submodule', '--quiet', 'foreach', '--recursive', 'echo', '{}'],
      ['git', 'filter-branch', '--tree-filter', 'rm -f {}', 'HEAD'],
      ['git', 'difftool', '-x', '{}'],
      ['timeout', '60', 'git', '-c', 'core.sshCommand={}', 'fetch'],
      // tar: programs and commands it runs, old-style clusters too.
      ['tar', '-I', '{}', '-xf', 'a.tar'],
      ['tar', '-xf', 'a.tar', '-I{}'],
      ['tar', '--use-compress-program={}', '-xf', 'a.tar'],
      ['tar', '--use-compress', '{}', '-xf', 'a.tar'],
      ['tar', '--to-command={}', '-xf', 'a.tar'],
      ['tar', '-xf', 'a.tar', '--to-command', 'cat > {}'],
      ['tar', 'xIf', '{}', 'a.tar'],
      ['tar', 'xfI', 'a.tar', '{}'],
      ['tar', '-cf', 'a.tar', '--checkpoint-action=exec={}', 'dir'],
      ['tar', '-cf', 'a.tar', '--checkpoint-action={}', 'dir'],
      ['tar', '-F', '{}', '-cf', 'a.tar', 'dir'],
      ['tar', '--info-script={}', '-cf', 'a.tar', 'dir'],
      ['tar', '--new-volume-script', '{}', '-cf', 'a.tar', 'dir'],
      ['tar', '--rsh-command={}', '-xf', 'h:a.tar'],
      // rsync: the remote shell and the remote rsync command.
      ['rsync', '-e', '{}', 'a', 'h:b'],
      ['rsync', '-avze', 'ssh -i {}', 'a', 'h:b'],
      ['rsync', '--rsh={}', 'a', 'h:b'],
      ['rsync', 'a', 'h:b', '--rsh', '{}'],
      ['rsync', '--rsync-path=sudo {}', 'a', 'h:b'],
      // scp, sftp: the program run as ssh, sftp's server command, -o options that run a command.
      ['scp', '-S', '{}', 'a', 'h:b'],
      ['scp', '-o', 'ProxyCommand={}', 'a', 'h:b'],
      ['scp', '-oProxyCommand=nc {} 22', 'a', 'h:b'],
      ['scp', '-o', '{}', 'a', 'h:b'],
      ['sftp', '-D', '{}', 'h'],
      ['sftp', '-S', '{}', 'h'],
      ['sftp', '-o', 'LocalCommand={}', 'h'],
      // make: its variables end up in the recipes its shell runs; --eval is makefile text.
      ['make', 'SHELL={}'],
      ['make', 'CC={}'],
      ['make', '-C', 'dir', 'URL={}', 'all'],
      ['make', 'all', 'X:={}'],
      ['make', '--eval={}'],
      ['make', '-E', '$(shell {})'],
      ['nice', 'make', 'X={}'],
      // gdb commands (shell ...), strace piping its output to a command.
      ['gdb', '-batch', '-ex', '{}', 'prog'],
      ['gdb', '--eval-command={}', 'prog'],
      ['gdb', '-iex', 'shell {}', 'prog'],
      ['strace', '-o', '{}', 'ls'],
      ['strace', '-o', '|cat > {}', 'ls'],
      ['strace', '-o!tee {}', 'ls'],
      // GNU parallel (and sem) run their command with a shell, as entr -s does.
      ['parallel', 'echo', '{}', ':::', 'a'],
      ['parallel', '-j', '4', 'echo {}', ':::', 'a'],
      ['sem', '-j', '2', 'echo {}'],
      ['entr', '-s', 'echo {}'],
    ]);
    expectNoCode([
      ['git', '-c', 'user.name={}', 'commit'],
      ['git', '-c', 'http.proxy=http://{}', 'fetch'],
      ['git', 'log', '--', '{}'],
      ['git', 'config', 'user.email', '{}'],
      ['git', 'clone', 'https://example.com/{}.git'],
      ['git', 'rebase', '--onto', '{}', 'main'],
      ['tar', '-xf', '{}'],
      ['tar', '-cf', 'out-{}.tar', 'dir'],
      ['tar', 'xf', '{}'],
      ['tar', '-cf', 'a.tar', '--checkpoint-action=echo={}', 'dir'],
      ['rsync', '-av', '{}', 'dst/'],
      ['rsync', '-e', 'ssh', 'src', 'h:{}'],
      ['scp', '-i', 'key', '{}', 'h:dst'],
      ['scp', '-o', 'User={}', 'a', 'h:b'],
      ['sftp', '-b', 'batch', '{}'],
      ['make', '-C', '{}', 'all'],
      ['make', 'all', '{}'],
      ['grep', 'make', 'X={}'],
      ['strace', '-o', 'trace-{}.txt', 'ls'],
      ['gdb', '-batch', '-x', 'cmds.gdb', '{}'],
      ['parallel', 'echo', ':::', '{}'],
      ['entr', 'cat', '{}'],
    ]);
  });

  it("with --replace STR, looks for STR where a record could name an option's key (ssh -o STR, git -c STR)", () => {
    for (const argv of [
      ['ssh', '-o', '@@', 'host'],
      ['ssh', '-o@@', 'host'],
      ['scp', '-o', '@@', 'a', 'h:b'],
      ['git', '-c', '@@', 'log'],
      ['git', 'config', '@@', 'x'],
    ]) {
      expect(() => CommandTemplate.compile(argv, '@@'), argv.join(' ')).toThrow(expect.objectContaining({ code: 'USAGE' }));
      expect(
        shellCode(argv, '@@').some((w) => w.includes('@@')),
        argv.join(' '),
      ).toBe(true);
    }
    expect(() => CommandTemplate.compile(['ssh', '-o', 'Port=@@', 'host'], '@@')).not.toThrow();
  });
});

describe('record reader', () => {
  it('splits on newlines across chunk borders; a final newline adds no empty record; empty lines are tasks', async () => {
    expect(await records(['ab\nc', 'd\n\ne', 'f\n'])).toEqual(['ab', 'cd', '', 'ef']);
    expect(await records(['x'])).toEqual(['x']);
    expect(await records([])).toEqual([]);
  });

  it('splits on NUL with -0 (newlines are data then)', async () => {
    expect(await records(['a\nb\0c', '\0'], '\0')).toEqual(['a\nb', 'c']);
  });

  it('marks a record longer than the limit and reads on past it, in any chunking, without holding it', async () => {
    const long = Buffer.alloc(MAX_RECORD_BYTES + 1, 97);
    expect(await records([long])).toEqual(['<too long>']);
    expect(await records(['a\n', long, '\nb\n'])).toEqual(['a', '<too long>', 'b']);
    // Fed in small pieces, and split right at the separator.
    const pieces = Array.from({ length: 40 }, (_, i) => long.subarray(i * 4000, (i + 1) * 4000)).filter((p) => p.length);
    expect(await records(['x\n', ...pieces, '\n', 'y'])).toEqual(['x', '<too long>', 'y']);
    // Exactly the limit is a record.
    expect((await records([Buffer.alloc(MAX_RECORD_BYTES, 98), '\nz']))[0]).toHaveLength(MAX_RECORD_BYTES);
  });

  it('keeps bytes as they are: not UTF-8, NUL (with \\n), a lone \\r', async () => {
    const raw = await rawRecords([Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a, 0x61, 0x00, 0x62, 0x0a, 0x78, 0x0d, 0x79, 0x0a])]);
    expect(raw).toEqual([Buffer.from([0x63, 0x61, 0x66, 0xe9]), Buffer.from('a\0b'), Buffer.from('x\ry')]);
  });

  it('CRLF: when the first line ends in \\r\\n, one \\r ending each record is removed; else \\r is data; -0 never', async () => {
    expect(await records(['a\r\n\r\nb\r', '\nc\r\r\nd'])).toEqual(['a', '', 'b', 'c\r', 'd']);
    expect(await records(['a\nb\r\n'])).toEqual(['a', 'b\r']);
    expect(await records(['a\r\0b\r\0'], '\0')).toEqual(['a\r', 'b\r']);
    // A CR split from its LF by a chunk border.
    expect(await records(['a\r', '\nb\r', '\n'])).toEqual(['a', 'b']);
  });

  it('a UTF-8 byte order mark at the start of the input is removed, in every format and however the input is chunked; elsewhere it is data', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const text = async (chunks: Array<string | Buffer>, sep: '\n' | '\0' = '\n'): Promise<string[]> =>
      (await rawRecords(chunks, sep)).map((r) => (Buffer.isBuffer(r) ? r.toString('utf8') : '<too long>'));
    expect(await text([Buffer.concat([bom, Buffer.from('a\nb\n')])])).toEqual(['a', 'b']);
    expect(await text([Buffer.concat([bom, Buffer.from('a\r\nb\r\n')])])).toEqual(['a', 'b']);
    expect(await text([Buffer.concat([bom, Buffer.from('a\0b\0')])], '\0')).toEqual(['a', 'b']);
    // Split across chunks, one byte at a time.
    expect(await text([bom.subarray(0, 1), bom.subarray(1, 2), bom.subarray(2), 'a\n'])).toEqual(['a']);
    // Only a BOM: no record; only its first bytes: those bytes are the record.
    expect(await text([bom])).toEqual([]);
    expect(await rawRecords([bom.subarray(0, 2)])).toEqual([bom.subarray(0, 2)]);
    // Not at the start: data; a second one at the start: the first only is removed.
    expect(await text(['a\n', Buffer.concat([bom, Buffer.from('b\n')])])).toEqual(['a', '\ufeffb']);
    expect(await text([Buffer.concat([bom, bom, Buffer.from('a')])])).toEqual(['\ufeffa']);
  });
});

describe('record checks (one for every source)', () => {
  const plan = (rest: string[], sep = false): ReturnType<typeof planRun> => planRun({ fleet: 'web', tasks: '-', ...(sep ? { null: true } : {}) }, rest, 8088);
  const refusal = (rest: string[], raw: RawRecord, seq = 3): unknown => {
    const { task } = recordTask(plan(rest), raw, seq);
    return 'refused' in task ? task.refused : undefined;
  };

  it('a record that is UTF-8 and makes a valid argv becomes its task, exactly', () => {
    const { task, record } = recordTask(plan(['echo', '{}']), Buffer.from('café ✓'), 1);
    expect(record).toBe('café ✓');
    expect(task).toMatchObject({ taskId: '1', argv: ['echo', 'café ✓'] });
    expect(recordTask(plan(['echo']), Buffer.alloc(0), 2).task).toMatchObject({ argv: ['echo', ''] });
  });

  it('refuses, with the record number and INVALID_ARGUMENT: not UTF-8, too long, NUL, an empty command, over the argv limits', () => {
    const cases: Array<[string[], RawRecord]> = [
      [['echo', '{}'], Buffer.from([0x63, 0x61, 0x66, 0xe9])],
      [['echo', '{}'], Buffer.from([0xed, 0xa0, 0x80])], // an encoded surrogate is not UTF-8 either
      [['echo', '{}'], { tooLong: true }],
      [['printf', '%s', '{}'], Buffer.from('a\0b')],
      [['{}', 'x'], Buffer.alloc(0)],
      // Under 128 KiB, but too long once substituted three times into one argument.
      [['echo', '{}{}{}'], Buffer.alloc(50_000, 97)],
    ];
    for (const [rest, raw] of cases) {
      expect(refusal(rest, raw), JSON.stringify(rest)).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^record 3 /) });
    }
    // Its text is kept for the report when it has one.
    expect(recordTask(plan(['printf', '{}']), Buffer.from('a\0b'), 1).record).toBe('a\0b');
    expect(recordTask(plan(['printf', '{}']), Buffer.from([0xff]), 1).record).toBeUndefined();
  });

  it("refuses a record starting with '-' where the command would read it as an option, and keeps it where it stays data", () => {
    const dash = Buffer.from('-oProxyCommand=touch /tmp/pwned');
    // A word the record begins: whole, at a word's start, or appended when there is no {}.
    for (const rest of [
      ['ssh', '{}', 'uptime'],
      ['curl', '{}'],
      ['curl', '{}.txt'],
      ['nmap', '-sV'],
      ['timeout', '5', 'ssh', '{}', 'true'],
      ['python3', '{}'],
      // python -m: the module reads the words after it (pip's -r FILE, ...).
      ['python3', '-m', 'json.tool', '{}'],
    ]) {
      expect(refusal(rest, dash), JSON.stringify(rest)).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/^record 3 starts with '-'.*put -- before \{\}/),
      });
    }
    // Kept an operand: a -- before it; a shell -c script's positional parameter; python -c's argument;
    // inside a word; a record that does not start with '-'.
    for (const rest of [
      ['ssh', '--', '{}', 'uptime'],
      ['curl', '--', '{}'],
      ['nmap', '-sV', '-p', '80', '--'],
      ['sh', '-c', 'curl -- "$1"', '_', '{}'],
      ['bash', '-ec', 'echo "$1"', 'bash', '{}'],
      ['timeout', '5', 'sh', '-c', 'echo "$1"', '_', '{}'],
      ['python3', '-c', 'import sys; print(sys.argv[1])', '{}'],
      ['python3', '-m', 'json.tool', '--', '{}'],
      ['curl', '--url={}'],
      ['echo', 'x{}'],
    ]) {
      expect(refusal(rest, dash), JSON.stringify(rest)).toBeUndefined();
    }
    expect(refusal(['ssh', '{}', 'uptime'], Buffer.from('host-1'))).toBeUndefined();
    expect(recordTask(plan(['ssh', '--', '{}', 'uptime']), dash, 1).task).toMatchObject({ argv: ['ssh', '--', '-oProxyCommand=touch /tmp/pwned', 'uptime'] });
  });

  it("a -- keeps a record data only for the program that reads it as the end of its own options: a wrapper's -- is the wrapper's", () => {
    const dash = Buffer.from('-oProxyCommand=sh -c "id > /tmp/pwned"');
    for (const rest of [
      // A wrapper's --: the program after it parses its own options.
      ['env', '--', 'ssh', '{}', 'true'],
      ['env', '-i', '--', 'ssh', '{}', 'true'],
      ['env', 'A=1', 'ssh', '--help', '{}'],
      ['nice', '--', 'ssh', '{}', 'true'],
      ['nice', '-n', '5', '--', 'ssh', '{}', 'true'],
      ['timeout', '--', '5', 'ssh', '{}', 'true'],
      ['timeout', '-s', 'KILL', '--', '5', 'ssh', '{}'],
      ['sudo', '-u', 'deploy', '--', 'ssh', '{}', 'true'],
      ['xargs', '--', 'ssh', '{}', 'true'],
      ['stdbuf', '-oL', '--', 'ssh', '{}'],
      ['setsid', '--', 'ssh', '{}'],
      ['chroot', '--', '/srv', 'ssh', '{}'],
      ['flock', '--', '/tmp/l', 'ssh', '{}'],
      ['runuser', '-u', 'nobody', '--', 'ssh', '{}'],
      ['bwrap', '--ro-bind', '/', '/', '--', 'ssh', '{}'],
      ['nice', '--', 'timeout', '--', '5', 'env', '--', 'ssh', '{}'],
      ['busybox', 'nice', '--', 'ssh', '{}'],
      // capsh's -- hands the words after it to bash, which reads them as options.
      ['capsh', '--', '{}'],
      // A -- that is an option's value (grep's -e pattern, ssh's -l login), or may be one.
      ['grep', '-e', '--', '{}'],
      ['grep', '--regexp', '--', '{}'],
      ['grep', '-ve', '--', '{}'],
      ['ssh', '-l', '--', '{}'],
      ['my-tool', '-x', '--', '{}'],
      ['my-tool', '--name', '--', '{}'],
      // An interpreter's --: its script or module reads the words after it.
      ['python3', '-m', 'pip', 'download', '--no-deps', '-d', 'dl', '{}'],
      ['/usr/bin/python3.11', '-Bm', 'pip', 'install', '{}'],
      ['python3', '-mpip', 'install', '{}'],
      ['python3', '--', 'script.py', '{}'],
      ['python3', '-u', 'script.py', '{}'],
      ['pypy3', '-m', 'pytest', '{}'],
      ['perl', '--', 'script.pl', '{}'],
      ['perl', '-e', 'print @ARGV', '{}'],
      ['sh', '--', 'script.sh', '{}'],
      ['bash', 'script.sh', '{}'],
      ['bash', '-s', '{}'],
      // find reads a word starting with - as a test or action even after -- (-delete...).
      ['find', '--', '{}'],
      ['find', '.', '-name', '--', '{}'],
      ['find', '.', '-exec', 'ssh', '{}', 'true', ';'],
      // A wrapper whose options are not read here: what follows it is not known.
      ['strace', '-f', '--', 'ssh', '--', '{}'],
      // The record as a wrapper's option or value.
      ['nice', '{}', 'ssh', 'host'],
      ['timeout', '-s', '{}', '5', 'cat'],
    ]) {
      expect(refusal(rest, dash), JSON.stringify(rest)).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/^record 3 starts with '-'/),
      });
    }
    for (const rest of [
      ['env', '--', 'ssh', '--', '{}', 'true'],
      ['env', 'A=1', 'ssh', '--', '{}'],
      ['nice', '-n', '5', '--', 'ssh', '-v', '--', '{}'],
      ['timeout', '5', 'ssh', '--', '{}', 'true'],
      ['timeout', '--', '5', 'ssh', '--', '{}', 'true'],
      ['sudo', '-u', 'deploy', 'A=1', 'ssh', '--', '{}'],
      ['xargs', '-0', 'ssh', '--', '{}'],
      ['chroot', '/srv', 'ssh', '--', '{}'],
      ['bwrap', '--ro-bind', '/', '/', 'ssh', '--', '{}'],
      ['busybox', 'nice', 'ssh', '--', '{}'],
      ['capsh', '--', '-c', 'echo "$1"', '_', '{}'],
      ['grep', '-e', 'x', '--', '{}'],
      ['grep', '-e', '--', '--', '{}'],
      ['grep', '-c', '--', '{}'],
      ['ssh', '-v', '--', '{}', 'uptime'],
      ['my-tool', '--', '{}'],
      ['my-tool', '-o', 'out', '--', '{}'],
      ['my-tool', '--name=x', '--', '{}'],
      ['python3', '-m', 'pip', 'download', '--no-deps', '-d', 'dl', '--', '{}'],
      ['python3', 'script.py', '--', '{}'],
      ['nice', 'python3', '-c', 'import sys; print(sys.argv[1])', '{}'],
      ['perl', '-e', 'print @ARGV', '--', '{}'],
      ['bash', '-s', '--', '{}'],
      ['find', '.', '-exec', 'ssh', '--', '{}', 'true', ';'],
      // The record as the name of the program a wrapper runs, or as its operand after its --.
      ['env', '--', '{}'],
      ['timeout', '--', '{}', 'cat'],
    ]) {
      expect(refusal(rest, dash), JSON.stringify(rest)).toBeUndefined();
    }
  });

  it("optionSlots: a word is an option slot unless its own program's options ended before it", () => {
    const slots = (argv: string[]): number[] =>
      optionSlots(
        argv,
        argv.flatMap((a, i) => (a === '{}' ? [i] : [])),
      ).options;
    expect(slots(['env', '--', 'curl', '{}', '--', '{}'])).toEqual([3]);
    expect(slots(['grep', '-e', '--', '{}', '--', '{}'])).toEqual([3]);
    expect(slots(['python3', '-m', 'pip', '{}', '--', '{}'])).toEqual([3]);
    expect(slots(['sh', '-c', 'S', '{}', '{}'])).toEqual([]);
    expect(optionSlots(['nice', 'ssh'], [2]).options).toEqual([2]);
    expect(optionSlots(['nice', 'ssh', '--'], [3]).options).toEqual([]);
    // The programs of the chain, where each is named and from where it reads no option.
    expect(walk(['timeout', '-k', '1', '--', '5', 'env', 'A=1', 'ssh', '-v', '--', 'host']).programs).toEqual([
      { at: 0, name: 'timeout', data: 4 },
      { at: 5, name: 'env', data: 7 },
      { at: 7, name: 'ssh', data: 10 },
    ]);
    expect(walk(['python3', '-m', 'pip', 'install', 'x']).programs.map((p) => p.name)).toEqual(['python3', 'pip']);
    expect(walk(['capsh', '--user=u', '--', '-c', 'S']).programs.map((p) => [p.at, p.name])).toEqual([
      [0, 'capsh'],
      [2, 'bash'],
    ]);
    expect(walk(['strace', '-f', 'ssh', 'host'])).toMatchObject({ unsure: 0 });
  });

  it("refuses a record with '=' where make reads it: make takes it as a variable assignment (X!=CMD runs CMD), even after --", () => {
    const assignment = Buffer.from('X!=id > /tmp/pwned');
    for (const rest of [
      ['make', '{}'],
      ['make', '-C', 'dir', '--', '{}'],
      ['nice', 'make', '-k', '{}'],
    ]) {
      expect(refusal(rest, assignment), JSON.stringify(rest)).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/^record 3 holds '='/),
      });
    }
    expect(refusal(['make', '{}'], Buffer.from('all'))).toBeUndefined();
    expect(refusal(['echo', '{}'], assignment)).toBeUndefined();
    expect(refusal(['make', '-C', '{}', 'all'], Buffer.from('dir'))).toBeUndefined();
  });
});

describe('batch puller', () => {
  it('takes what is ready up to max, and ends', async () => {
    async function* gen(): AsyncGenerator<number> {
      for (let i = 0; i < 5; i++) yield i;
    }
    const p = new BatchPuller(gen());
    expect(await p.take(3, 50)).toEqual([0, 1, 2]);
    expect(p.ended).toBe(false);
    expect(await p.take(10, 50)).toEqual([3, 4]);
    expect(await p.take(10, 50)).toEqual([]);
    expect(p.ended).toBe(true);
  });

  it('knows the source ended when a batch takes its last item exactly (a run whose input fills one window)', async () => {
    async function* gen(): AsyncGenerator<number> {
      for (let i = 0; i < 3; i++) yield i;
    }
    const p = new BatchPuller(gen());
    expect(await p.take(3, 50)).toEqual([0, 1, 2]);
    expect(p.ended).toBe(true);
    expect(await p.take(3, 50)).toEqual([]);
  });

  it('after a full batch, a source that has not said whether it ends keeps its next item for the next batch', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    async function* gen(): AsyncGenerator<number> {
      yield 0;
      await gate;
      yield 1;
    }
    const p = new BatchPuller(gen());
    expect(await p.take(1, 5)).toEqual([0]);
    expect(p.ended).toBe(false);
    release();
    expect(await p.take(5, 50)).toEqual([1]);
    expect(p.ended).toBe(true);
  });

  it('after a full batch, a source whose end comes later than the short wait for it is known ended when it comes, with no take waiting', async () => {
    // A run whose input fills its window exactly takes no more until a slot frees, which may be
    // never (its wait times out): the end read on a slow machine must still count.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    async function* gen(): AsyncGenerator<number> {
      yield 0;
      yield 1;
      await gate;
    }
    const p = new BatchPuller(gen());
    expect(await p.take(2, 5)).toEqual([0, 1]);
    expect(p.ended).toBe(false);
    release();
    await vi.waitFor(() => expect(p.ended).toBe(true));
    expect(await p.take(2, 5)).toEqual([]);
  });

  it('returns a partial batch when the source is slow, keeping the pending item for the next', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    async function* gen(): AsyncGenerator<string> {
      yield 'a';
      await gate;
      yield 'b';
    }
    const p = new BatchPuller(gen());
    expect(await p.take(10, 5)).toEqual(['a']);
    release();
    expect(await p.take(10, 5)).toEqual(['b']);
  });

  it('stops waiting when aborted', async () => {
    const never = { next: () => new Promise<IteratorResult<number>>(() => undefined) };
    const stop = new AbortController();
    const taking = new BatchPuller(never).take(10, 5, stop.signal);
    stop.abort();
    expect(await taking).toEqual([]);
  });
});

describe('results and summary', () => {
  it('folder names follow GNU parallel (/ as \\_, \\ as \\\\); unusable names get the sequence number', () => {
    expect(resultName('a/b\\c', '3')).toBe('a\\_b\\\\c');
    expect(resultName('', '4')).toBe('\\#4');
    expect(resultName('..', '5')).toBe('\\#5');
    expect(resultName('x'.repeat(300), '6')).toBe('\\#6');
  });

  it('the summary line counts tasks in words: "1 task", "2 tasks"', () => {
    expect(summaryText(summarize('r1', { failed: 1 }, 1234))).toBe('gaxx: run r1: 1 task: 0 succeeded, 1 failed, 0 timed out, 0 unknown in 1.2 s');
    expect(summaryText(summarize('r2', { succeeded: 2 }, 50))).toMatch(/^gaxx: run r2: 2 tasks: 2 succeeded, /);
    expect(summaryText(summarize('r0', {}, 0))).toMatch(/^gaxx: run r0: 0 tasks: /);
  });

  it("a run's unreachable hosts: never reached, or gone while the task ran (its end lost); not a wait that ended", () => {
    const down = new Set<string>();
    const r = (host: string, outcome: string, reason: string) => ({ host, outcome, reason });
    for (const x of [
      r('a:1', 'unreachable', 'UNAVAILABLE'),
      r('b:1', 'unknown', 'UNAVAILABLE'),
      r('c:1', 'unknown', 'DEADLINE_EXCEEDED'),
      r('d:1', 'failed', ''),
      r('', 'unreachable', 'UNAVAILABLE'),
    ])
      noteUnreachable(down, x);
    expect([...down]).toEqual(['a:1', 'b:1']);
  });

  it('exit codes: 0 all succeeded, 1 some failed, 12 unreachable, error or unknown outcomes, 130 cancelled', () => {
    expect(summaryExitCode(summarize('r', { succeeded: 3 }, 1), false)).toBe(0);
    for (const o of ['unreachable', 'error', 'unknown'] as const)
      expect(summaryExitCode(summarize('r', { succeeded: 1, [o]: 1 }, 1), false)).toBe(exitCodeFor('UNAVAILABLE'));
    expect(summaryExitCode(summarize('r', { succeeded: 2, timeout: 1 }, 1), false)).toBe(1);
    expect(summaryExitCode(summarize('r', { succeeded: 2, killed: 1 }, 1), false)).toBe(1);
    expect(summaryExitCode(summarize('r', { failed: 1, unreachable: 1 }, 1), false)).toBe(exitCodeFor('UNAVAILABLE'));
    expect(summaryExitCode(summarize('r', { cancelled: 1 }, 1), true)).toBe(exitCodeFor('CANCELLED'));
    expect(summarize('r', { failed: 1, killed: 2, error: 1, unreachable: 1, timeout: 1 }, 5, ['h2', 'h1', 'h2'])).toMatchObject({
      total: 6,
      failed: 3,
      unreachable: 1,
      errors: 1,
      unknown: 0,
      timedOut: 1,
      unreachableHosts: ['h1', 'h2'],
    });
  });

  it('summary: unreachable tasks (never ran) and errors are counted as what they are, not as unknown', () => {
    const s = summarize('r', { succeeded: 1, unreachable: 2, error: 1, unknown: 3 }, 1000);
    expect(s).toMatchObject({ total: 7, unreachable: 2, errors: 1, unknown: 3 });
    expect(summaryText(s)).toBe('gaxx: run r: 7 tasks: 1 succeeded, 0 failed, 0 timed out, 2 unreachable, 1 error, 3 unknown in 1.0 s');
    expect(summaryText(summarize('r', { unreachable: 1 }, 0))).toBe(
      'gaxx: run r: 1 task: 0 succeeded, 0 failed, 0 timed out, 1 unreachable, 0 unknown in 0.0 s',
    );
  });

  it('progress text: done/total, failed, refused and cancelled apart, rate, ETA; total unknown while input is read', () => {
    const none = { refused: 0, cancelled: 0 };
    expect(progressText({ done: 50, failed: 2, ...none, enqueued: 100, total: 200 }, 10_000)).toBe('gaxx: 50/200 done, 2 failed, 5.0/s, ETA 30s');
    expect(progressText({ done: 50, failed: 0, ...none, enqueued: 100, total: undefined }, 10_000)).toBe('gaxx: 50/100+ done, 0 failed, 5.0/s');
    expect(progressText({ done: 10, failed: 0, refused: 1, cancelled: 9, enqueued: 10, total: undefined }, 1000)).toBe(
      'gaxx: 10/10+ done, 0 failed, 1 refused, 9 cancelled, 10.0/s',
    );
  });

  it('refused records: counted apart, exit 1 (not 12, not 2); the summary carries the state and where unread input starts', () => {
    const s = summarize('r', { succeeded: 3, refused: 2 }, 1, [], { state: 'done' });
    expect(s).toMatchObject({ total: 5, succeeded: 3, failed: 0, unknown: 0, refused: 2, state: 'done' });
    expect(summaryExitCode(s, false)).toBe(1);
    expect(summaryText(s)).toBe('gaxx: run r: 5 tasks: 3 succeeded, 0 failed, 0 timed out, 0 unknown, 2 refused in 0.0 s');
    expect(summarize('r', { succeeded: 18 }, 1, [], { state: 'interrupted', notEnqueuedFrom: 19 })).toMatchObject({
      state: 'interrupted',
      notEnqueuedFrom: 19,
    });
  });
});

describe('run plan', () => {
  const plan = (flags: Record<string, string | boolean | string[]>, rest: string[]): ReturnType<typeof planRun> => planRun(flags, rest, 8088);

  it('each-host by default, tasks mode with --tasks; window from --concurrency', () => {
    expect(plan({ agent: ['a,b:9'] }, ['true'])).toMatchObject({ mode: 'each-host', agents: ['a:8088', 'b:9'], window: DEFAULT_WINDOW });
    expect(plan({ fleet: 'web', tasks: '-', concurrency: '8', 'output-cap': '1024', null: true }, ['echo', '{}'])).toMatchObject({
      mode: 'tasks',
      fleet: 'web',
      window: 8,
      separator: '\0',
      common: { outputCapBytes: 1024 },
    });
  });

  it("without --tasks, replaces nothing: {} and {#} are the command's own (find -exec ls {} +, a dict literal)", () => {
    expect(plan({ fleet: 'web' }, ['find', '/etc', '-exec', 'ls', '{}', '+'])).toMatchObject({
      mode: 'each-host',
      argv: ['find', '/etc', '-exec', 'ls', '{}', '+'],
    });
    expect(plan({ fleet: 'web' }, ['python3', '-c', 'd = {}; print(d, "{#}")']).template).toBeUndefined();
  });

  it('--replace STR stands for the record instead of {}, which then stays literal, in code too', () => {
    const t = plan({ fleet: 'web', tasks: '-', replace: '@@' }, ['find', '@@', '-name', '*.{#}', '-exec', 'ls', '{}', '+']).template;
    expect(t?.render('/srv', 3)).toEqual(['find', '/srv', '-name', '*.3', '-exec', 'ls', '{}', '+']);
    // A literal {} inside code is no record there: only --replace's string is looked for.
    expect(plan({ fleet: 'web', tasks: '-', replace: '@@' }, ['python3', '-c', 'import sys; print({}, sys.argv[1])', '@@']).template?.render('x', 1)).toEqual([
      'python3',
      '-c',
      'import sys; print({}, sys.argv[1])',
      'x',
    ]);
    // Without the string in the command, the record is appended, as without --replace.
    expect(plan({ fleet: 'web', tasks: '-', replace: '@@' }, ['echo', '{}']).template?.render('r', 1)).toEqual(['echo', '{}', 'r']);
    // A record starting with - where @@ begins a word is still refused.
    expect(plan({ fleet: 'web', tasks: '-', replace: '@@' }, ['ssh', '@@', 'uptime']).template?.recordProblem('-oProxyCommand=x')).toMatch(/starts with '-'/);
    // A string with regex characters is taken literally.
    expect(plan({ fleet: 'web', tasks: '-', replace: '(.*)' }, ['echo', 'a(.*)b']).template?.render('X', 1)).toEqual(['echo', 'aXb']);
  });

  it('refuses contradictions and bad values (USAGE)', () => {
    const bad: Array<[Record<string, string | boolean | string[]>, string[]]> = [
      [{ fleet: 'web' }, []],
      [{ fleet: 'web', agent: ['a'] }, ['true']],
      // --replace names a task list's record: nothing to stand for without one; a space or {#} in it.
      [{ fleet: 'web', replace: '@@' }, ['echo', '@@']],
      [{ fleet: 'web', tasks: '-', replace: 'a b' }, ['echo']],
      [{ fleet: 'web', tasks: '-', replace: '' }, ['echo']],
      [{ fleet: 'web', tasks: '-', replace: 'x{#}' }, ['echo']],
      [{ fleet: 'web', tasks: '-', replace: '@@' }, ['sh', '-c', 'echo @@']],
      [{}, ['true']],
      [{ fleet: 'web', tasks: '-', 'each-host': true }, ['true']],
      [{ fleet: 'web', null: true }, ['true']],
      [{ fleet: 'web', tasks: '-', concurrency: '1.5' }, ['true']],
      // A per-host run has one task per host: nothing for --concurrency to bound.
      [{ fleet: 'web', concurrency: '5' }, ['true']],
      [{ fleet: 'bad name' }, ['true']],
      [{ fleet: 'web', 'output-cap': '0' }, ['true']],
    ];
    for (const [f, r] of bad) expect(() => plan(f, r), JSON.stringify([f, r])).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
