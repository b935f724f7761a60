/**
 * Every bench's command line: its flags plus -h/--help, parsed strictly. --help prints the usage
 * and exits 0; an unknown flag or a stray argument prints what was wrong and the usage on stderr
 * and exits 2, so a mistyped flag never starts a long run with the defaults.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The values of `options` from this process's arguments (see the module comment). */
export function benchArgs<O extends Options>(usage: string, options: O, args: string[] = process.argv.slice(2)) {
  const text = usage.endsWith('\n') ? usage : `${usage}\n`;
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${text}`);
    process.exit(2);
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    process.stdout.write(text);
    process.exit(0);
  }
  return parsed.values as ReturnType<typeof parseArgs<{ options: O }>>['values'];
}
