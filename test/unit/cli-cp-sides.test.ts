// gaxx cp's SRC and DST: which side is remote, and the path each names.
import { describe, expect, it } from 'vitest';
import { parseSide } from '../../cli/commands/cp.js';

describe('parseSide', () => {
  it('F:PATH and :PATH are remote, whatever characters PATH holds (line breaks, a leading dash, unicode)', () => {
    for (const path of ['job/out.csv', 'job/a\nb', 'a\r\nb\n', '-x', 'ünï€😀', ' lead space']) {
      expect(parseSide(`web:${path}`)).toEqual({ remote: true, fleet: 'web', path });
      expect(parseSide(`:${path}`)).toEqual({ remote: true, fleet: '', path });
    }
  });

  it('./a:b, /a:b and names that are no fleet before the colon are local', () => {
    for (const s of ['./web:x', '/tmp/web:x', 'file', 'a b:x', 'we\nb:x', '-x']) expect(parseSide(s)).toEqual({ remote: false, path: s });
  });

  it('F: alone names no remote path (USAGE)', () => {
    expect(() => parseSide('web:')).toThrow(/names no remote path/);
  });
});
