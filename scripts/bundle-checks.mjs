// Checks scripts/bundle.mjs makes on its outputs before it makes their code caches.
//
// The CLI's and the agent's files and the vendor files are compiled by vendor-load.cjs through
// vm.Script, which has no loader for import(): a dynamic import left in them (esbuild keeps one
// of a Node built-in or of an external package as it is) builds and type-checks, and fails only
// when that line runs, with ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING. Such a module must be
// required lazily instead (proto/builtins.ts does so for Node's built-ins).

/**
 * The import() calls a vendor file may keep, each as a snippet of text that holds the call (the
 * vendor files are minified, so a snippet, not a whole line), with why it never runs in gaxx. Any
 * other is refused.
 */
export const KNOWN_DYNAMIC_IMPORTS = {
  // BullMQ's sandboxed processors (a processor given as a file, run in a child process): gaxx's
  // workers take a function, so BullMQ never loads a processor file.
  'vendor-bullmq.cjs': ['await import(processorFile)'],
};

const IMPORT_CALL = /(^|[^\w$.])import\s*\(/g;

/** Each import() call in `text` that none of the `allowed` snippets holds: its 1-based line and the text around it. */
export function dynamicImports(text, allowed = []) {
  const held = [];
  for (const s of allowed) for (let at = text.indexOf(s); at !== -1; at = text.indexOf(s, at + 1)) held.push([at, at + s.length]);
  const found = [];
  let line = 1;
  let counted = 0;
  for (const m of text.matchAll(IMPORT_CALL)) {
    const at = m.index + m[1].length;
    if (held.some(([from, to]) => at >= from && at < to)) continue;
    for (; counted < at; counted++) if (text.charCodeAt(counted) === 10) line++;
    found.push({ line, text: text.slice(Math.max(0, at - 40), at + 40) });
  }
  return found;
}

/** The distinct line numbers of `found` (dynamicImports' result), in order. */
const linesOf = (found) => [...new Set(found.map((f) => f.line))];

/** The 1-based numbers of the lines of `text` that call import() outside the `allowed` snippets. */
export function dynamicImportLines(text, allowed = []) {
  return linesOf(dynamicImports(text, allowed));
}

/** Throws when `text` (the file `name`, compiled through vm.Script) calls import() where KNOWN_DYNAMIC_IMPORTS does not say it may. */
export function assertNoDynamicImport(name, text) {
  const found = dynamicImports(text, KNOWN_DYNAMIC_IMPORTS[name] ?? []);
  if (found.length > 0) {
    const lines = linesOf(found);
    throw new Error(
      `${name}: import() at line ${lines.slice(0, 5).join(', ')}; vendor-load.cjs compiles this file through vm.Script, where import() fails when it runs (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING): require the module lazily instead (see proto/builtins.ts); the first: ${JSON.stringify(found[0].text)}`,
    );
  }
}
