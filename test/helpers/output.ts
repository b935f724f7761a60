/** An Output (cli/output.ts) whose stdout and stderr are kept as text, for tests of what the CLI writes. */
import { Output } from '../../cli/output.js';

export interface CapturedOutput {
  out: Output;
  stdout: () => string;
  stderr: () => string;
}

/** A fresh Output writing into strings; `json` as the command's --json. */
export function capturedOutput(json = false): CapturedOutput {
  let o = '';
  let e = '';
  const io = {
    stdout: { write: (s: string | Buffer) => void (o += s.toString()) },
    stderr: { write: (s: string | Buffer) => void (e += s.toString()) },
  } as unknown as ConstructorParameters<typeof Output>[0];
  return { out: new Output(io, json), stdout: () => o, stderr: () => e };
}
