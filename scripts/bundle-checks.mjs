// Checks scripts/bundle.mjs makes on its outputs before it makes their code caches.
//
// The CLI's and the agent's files and the vendor files are compiled by vendor-load.cjs through
// vm.Script, which has no loader for import(): a dynamic import left in them (esbuild keeps one
// of a Node built-in or of an external package as it is) builds and type-checks, and fails only
// when that line runs, with ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING. Such a module must be
// required lazily instead (proto/builtins.ts does so for Node's built-ins).

/**
 * The import() calls a vendor file may keep, each as its whole line (trimmed), with why it never
 * runs in gaxx. Any other is refused.
 */
export const KNOWN_DYNAMIC_IMPORTS = {
  // BullMQ's sandboxed processors (a processor given as a file, run in a child process): gaxx's
  // workers take a function, so BullMQ never loads a processor file.
  'vendor-bullmq.cjs': ['const { default: processorFn } = await import(processorFile);'],
};

/** The 1-based line numbers in `text` that call import(), but the lines in `allowed` (trimmed). */
export function dynamicImportLines(text, allowed = []) {
  const lines = [];
  text.split('\n').forEach((line, i) => {
    if (/(^|[^\w$.])import\s*\(/.test(line) && !allowed.includes(line.trim())) lines.push(i + 1);
  });
  return lines;
}

/** Throws when `text` (the file `name`, compiled through vm.Script) calls import() where KNOWN_DYNAMIC_IMPORTS does not say it may. */
export function assertNoDynamicImport(name, text) {
  const lines = dynamicImportLines(text, KNOWN_DYNAMIC_IMPORTS[name] ?? []);
  if (lines.length > 0) {
    throw new Error(
      `${name}: import() at line ${lines.slice(0, 5).join(', ')}; vendor-load.cjs compiles this file through vm.Script, where import() fails when it runs (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING): require the module lazily instead (see proto/builtins.ts)`,
    );
  }
}
