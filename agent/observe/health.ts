/**
 * grpc.health.v1.Health: SERVING for the whole server ('') and for gaxx.agent.v1.Agent while the
 * agent runs, NOT_SERVING once it drains, and while its tasks cannot get a work dir (disk-guard.ts
 * tasksWritable). The call guard authorizes it like Info (monitor may call it).
 */
import type * as grpc from '@grpc/grpc-js';
import { GaxxError, type HealthHandlers } from '../../proto/index.js';

const KNOWN = new Set(['', 'gaxx.agent.v1.Agent']);

/** Health handlers; `serving()` says whether the agent still takes work. */
export function createHealthService(serving: () => boolean, fail: (e: unknown) => Partial<grpc.StatusObject>): HealthHandlers {
  const status = (service: string) => {
    if (!KNOWN.has(service)) throw new GaxxError('NOT_FOUND', `unknown service '${service}'`);
    return serving() ? ('SERVING' as const) : ('NOT_SERVING' as const);
  };
  return {
    Check(call, cb) {
      try {
        cb(null, { status: status(call.request.service) });
      } catch (e) {
        cb(fail(e));
      }
    },
    // Minimal Watch: the current status once; the stream stays open until the caller leaves.
    Watch(call) {
      try {
        call.write({ status: status(call.request.service) });
      } catch (e) {
        call.emit('error', fail(e));
      }
    },
  };
}
