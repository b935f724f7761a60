// bench/lib/on-signal: a bench stopped by Ctrl-C or `timeout` cleans up what it started, then
// exits as a process killed by that signal would.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanUpOnSignal } from '../../bench/lib/on-signal.js';

describe('bench clean-up on a signal', () => {
  afterEach(() => vi.restoreAllMocks());

  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal}: runs the clean-up to its end, then exits ${code}, once`, async () => {
      const listeners = { SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') };
      let exited: (code: number | undefined) => void = () => undefined;
      const exit = new Promise<number | undefined>((r) => (exited = r));
      vi.spyOn(process, 'exit').mockImplementation(((c?: number) => exited(c)) as typeof process.exit);
      const steps: string[] = [];
      cleanUpOnSignal(async () => {
        steps.push('cleaning');
        await new Promise((r) => setImmediate(r));
        steps.push('cleaned');
      });
      expect(process.listenerCount('SIGINT')).toBe(listeners.SIGINT + 1);
      expect(process.listenerCount('SIGTERM')).toBe(listeners.SIGTERM + 1);
      process.emit(signal, signal);
      expect(await exit).toBe(code);
      expect(steps).toEqual(['cleaning', 'cleaned']);
      // Both handlers are gone: a second signal is the default's (or another handler's) again.
      expect(process.listenerCount('SIGINT')).toBe(listeners.SIGINT);
      expect(process.listenerCount('SIGTERM')).toBe(listeners.SIGTERM);
    });
  }

  it('a clean-up that fails still exits; the returned function removes the handlers', async () => {
    let exited: (code: number | undefined) => void = () => undefined;
    const exit = new Promise<number | undefined>((r) => (exited = r));
    vi.spyOn(process, 'exit').mockImplementation(((c?: number) => exited(c)) as typeof process.exit);
    cleanUpOnSignal(() => Promise.reject(new Error('redis already gone')));
    process.emit('SIGTERM', 'SIGTERM');
    expect(await exit).toBe(143);
    const before = process.listenerCount('SIGTERM');
    const off = cleanUpOnSignal(() => undefined);
    off();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
