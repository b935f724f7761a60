/** The GaxxError a synchronous call throws (anything else it throws is rethrown; not throwing fails). */
import { isGaxxError, type GaxxError } from '../../proto/index.js';

export function failure(fn: () => unknown): GaxxError {
  try {
    fn();
  } catch (e) {
    if (isGaxxError(e)) return e;
    throw e;
  }
  throw new Error('expected a GaxxError');
}
