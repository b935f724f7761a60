/** Validation of provider replies at the edge: a reply that does not match is UNAVAILABLE with its dot-paths. */
import type { z } from 'zod';
import { GaxxError } from '../../proto/index.js';

/** Parses `body` with `schema`; UNAVAILABLE naming each bad dot-path when it does not fit. */
export function parseReply<S extends z.ZodTypeAny>(provider: string, what: string, schema: S, body: unknown): z.output<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data as z.output<S>;
  const issues = r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  const text = issues
    .slice(0, 3)
    .map((i) => `${i.path || '(root)'}: ${i.message}`)
    .join('; ');
  throw new GaxxError('UNAVAILABLE', `${provider} API returned an unexpected ${what} (${text})`, { details: { issues } });
}
