// fileAccessError: the fix it suggests follows the cause. A full, over-quota or read-only file
// system is not fixed by the owner and mode of a dir, so the caller's permission hint is kept for
// permission problems only.
import { describe, expect, it } from 'vitest';
import { fileAccessError } from '../../proto/index.js';

const errno = (code: string, path?: string) => Object.assign(new Error(code), { code, syscall: 'write', ...(path ? { path } : {}) });
const hints = { access: 'create it for the agent user', elsewhere: 'point --data-dir elsewhere' };

describe('fileAccessError', () => {
  it('keeps the permission hint for permission problems', () => {
    const e = fileAccessError(errno('EACCES', '/srv/a/f'), hints);
    expect([e?.code, e?.details?.errno, e?.message.includes(hints.access)]).toEqual(['FILE_ACCESS', 'EACCES', true]);
  });

  it.each(['ENOSPC', 'EDQUOT', 'EROFS'])('gives %s a fix of its own, naming the file system, never the permission hint', (code) => {
    const e = fileAccessError(errno(code, '/srv/a/f'), hints);
    expect([e?.code, e?.details?.errno, e?.details?.path]).toEqual(['FILE_ACCESS', code, '/srv/a/f']);
    expect(e?.message.includes(hints.access)).toBe(false);
    expect(e?.message.includes('df -h /srv/a')).toBe(true);
    expect(e?.message.includes(hints.elsewhere)).toBe(true);
  });

  it('leaves other errors alone', () => {
    expect(fileAccessError(errno('EIO', '/srv/a/f'))).toBeUndefined();
  });
});
