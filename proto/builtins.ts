/**
 * Node built-ins that a command's start does not need, loaded on their first use. Every command
 * loads the proto barrel, so a built-in imported at the top of one of its modules is set up on
 * every start, `gaxx --version` included: node:crypto (with some fifteen internal modules of its
 * own, ~3.5 ms here) and node:net (the stream machinery) were. A module that needs one at once
 * imports it as usual; these are for code that runs later, if at all.
 */
import { createRequire } from 'node:module';

type Crypto = typeof import('node:crypto');
type Net = typeof import('node:net');
type Tty = typeof import('node:tty');
type FsPromises = typeof import('node:fs/promises');
type Http = typeof import('node:http');
type Https = typeof import('node:https');

const load = createRequire(import.meta.url);
let crypto: Crypto | undefined;
let net: Net | undefined;
let tty: Tty | undefined;
let fsPromises: FsPromises | undefined;
let http: Http | undefined;
let https: Https | undefined;

/** node:crypto, loaded on first use. */
export function nodeCrypto(): Crypto {
  return (crypto ??= load('node:crypto') as Crypto);
}

/** node:net, loaded on first use. */
export function nodeNet(): Net {
  return (net ??= load('node:net') as Net);
}

/** node:tty, loaded on first use (it brings the stream and socket machinery with it). */
export function nodeTty(): Tty {
  return (tty ??= load('node:tty') as Tty);
}

/** node:fs/promises, loaded on first use (~2 ms to set up). */
export function nodeFsPromises(): FsPromises {
  return (fsPromises ??= load('node:fs/promises') as FsPromises);
}

/** node:http, loaded on first use (~2.5 ms to set up; only servers and the collector need it). */
export function nodeHttp(): Http {
  return (http ??= load('node:http') as Http);
}

/** node:https, loaded on first use (it brings node:http with it). */
export function nodeHttps(): Https {
  return (https ??= load('node:https') as Https);
}
