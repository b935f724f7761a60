/**
 * node-forge, loaded on first use: it is ~600 KiB of JavaScript that only issuing and
 * certificate requests need, so commands that merely read a cert dir (gaxx exec) never parse it.
 */
import type forgeModule from 'node-forge';

/** The node-forge namespace. */
export type Forge = typeof forgeModule;

let loading: Promise<Forge> | undefined;

/** node-forge, imported once per process. */
export function loadForge(): Promise<Forge> {
  loading ??= import('node-forge').then((m) => m.default);
  return loading;
}
