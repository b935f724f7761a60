// Every top-level folder holding TypeScript must be a layer of eslint.config.js, so that a new
// folder gets import rules from its first file instead of none.
import { execFileSync } from 'node:child_process';
import { LAYERS } from '../eslint.config.js';

// `--files A B ...` checks the given paths instead of the checkout (used by the lint tests).
const given = process.argv.indexOf('--files');
const files =
  given >= 0
    ? process.argv.slice(given + 1)
    : execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts'], { encoding: 'utf8' }).split('\n').filter(Boolean);
const folders = new Set(files.filter((f) => f.includes('/')).map((f) => f.split('/')[0]));
const unknown = [...folders].filter((f) => !(f in LAYERS)).sort();
if (unknown.length > 0) {
  console.error(`check-layers: top-level folder(s) without import rules: ${unknown.join(', ')}`);
  console.error('add each to LAYERS in eslint.config.js (what it may import), and to ARCHITECTURE.md');
  process.exit(1);
}
