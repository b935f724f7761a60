/**
 * The page's files, read once at start: the page itself (./assets next to this module, copied
 * into dist by scripts/copy-assets.mjs) and uPlot, the charting library, from the copy made at
 * build time or else from the installed package. Everything is served by gaxx itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GaxxError } from '../../proto/index.js';

/** A file the server answers with. */
export interface Asset {
  type: string;
  body: Buffer;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The page's own files (under assets/) and uPlot's, by URL path. */
const FILES: Array<[string, string]> = [
  ['/index.html', 'index.html'],
  ['/assets/app.js', 'app.js'],
  ['/assets/charts.js', 'charts.js'],
  ['/assets/app.css', 'app.css'],
];
const VENDOR: Array<[string, string]> = [
  ['/assets/uPlot.iife.min.js', 'uplot/dist/uPlot.iife.min.js'],
  ['/assets/uPlot.min.css', 'uplot/dist/uPlot.min.css'],
];

function vendorPath(dir: string, spec: string): string {
  const copied = join(dir, 'vendor', spec.split('/').at(-1) as string);
  return existsSync(copied) ? copied : createRequire(import.meta.url).resolve(spec);
}

/** Reads every asset; FAILED_PRECONDITION when one is missing (a broken install). */
export function loadAssets(): Map<string, Asset> {
  const dir = fileURLToPath(new URL('./assets/', import.meta.url));
  const out = new Map<string, Asset>();
  const add = (path: string, file: string): void => {
    try {
      out.set(path, { type: TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', body: readFileSync(file) });
    } catch (e) {
      throw new GaxxError('FAILED_PRECONDITION', `dashboard asset ${file} is missing: reinstall gaxx`, { cause: e });
    }
  };
  for (const [path, file] of FILES) add(path, join(dir, file));
  for (const [path, spec] of VENDOR) add(path, vendorPath(dir, spec));
  return out;
}
