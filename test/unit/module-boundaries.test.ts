// STYLE §6 as a test: an import that crosses a module boundary fails here instead of in review.
// Imports are read with regular expressions because TypeScript 7 ships no JavaScript compiler API; ESM
// keeps static imports at the top level, so matching at the start of a line is enough.
import { readdirSync, readFileSync } from 'node:fs';
import { posix, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const scannedRoots = ['services', 'workers', 'shared', 'test'];
const onnxAdapter = 'shared/clip/onnx-runtime.ts';
/** Builds the worker roles inside the serve process, so it alone may reach into workers/. */
const workerRoles = 'services/cli/worker-roles.ts';

/**
 * Deep imports that predate this test, importer → targets. Delete a line once its import goes through
 * the module's index.ts: the last test fails on entries that no longer occur, so the list only shrinks.
 */
const allowedDeepImports: Readonly<Record<string, readonly string[]>> = {
  // Production code written before shared/clip/index.ts existed; the index exports every name they use.
  // Tests and test tooling that pin down module internals; several use names the index also exports.
  'test/bench/preprocess-bench.ts': ['shared/clip/preprocess.ts'],
  'test/helpers/global-setup.ts': ['shared/redis/embedded-redis.ts'],
  'test/integration/clip-model.test.ts': ['shared/clip/clip-model.ts'],
  'test/integration/model-fetch.test.ts': ['shared/clip/model-folder.ts'],
  'test/integration/text-embedding-cache.test.ts': [
    'shared/clip/clip-model.ts',
    'shared/clip/text-embedding-cache.ts',
  ],
  'test/unit/config.test.ts': ['shared/config/config-schema.ts'],
  'test/unit/execution-providers.test.ts': ['shared/clip/execution-providers.ts'],
  'test/unit/image-completeness.test.ts': ['shared/clip/image-completeness.ts'],
  'test/unit/image-probe.test.ts': ['shared/clip/image-probe.ts', 'shared/clip/preprocess.ts'],
  'test/unit/lifecycle.test.ts': ['shared/runtime/lifecycle.ts'],
  // The ONNX adapter is deliberately not re-exported by shared/clip/index.ts; tests that run graphs use it.
  'test/unit/model-build-color.test.ts': [onnxAdapter],
  'test/unit/model-build-protobuf.test.ts': [
    'shared/clip/model-build/onnx-graph.ts',
    'shared/clip/model-build/onnx-model-encoder.ts',
    'shared/clip/model-build/protobuf-writer.ts',
    onnxAdapter,
  ],
  'test/unit/model-build-reference.test.ts': ['shared/clip/model-build/onnx-graph.ts', onnxAdapter],
  'test/unit/model-build-tiny.test.ts': [onnxAdapter],
  'test/unit/model-build-vit-b-32.test.ts': [
    'shared/clip/model-build/onnx-graph.ts',
    'shared/clip/model-build/onnx-model-encoder.ts',
  ],
  'test/unit/model-folder.test.ts': ['shared/clip/model-folder.ts', onnxAdapter],
  'test/unit/onnx-runtime.test.ts': [onnxAdapter],
  'test/unit/preprocess-config.test.ts': ['shared/clip/preprocessor-config.ts'],
  'test/unit/preprocess-frames.test.ts': [
    'shared/clip/image-frames.ts',
    'shared/clip/preprocess.ts',
    'shared/clip/preprocessor-config.ts',
  ],
  'test/unit/preprocess-golden.test.ts': ['shared/clip/preprocess.ts'],
  'test/unit/preprocess-resample.test.ts': ['shared/clip/pillow-resample.ts'],
  'test/unit/preprocess.test.ts': ['shared/clip/preprocess.ts', 'shared/clip/preprocessor-config.ts'],
  'test/unit/text-cleaning.test.ts': ['shared/clip/html-unescape.ts', 'shared/clip/text-cleaning.ts'],
  'test/unit/tokenizer.test.ts': ['shared/clip/clip-tokenizer.ts'],
  'test/unit/zero-shot.test.ts': ['shared/clip/zero-shot.ts'],
};

/** One import: `target` is the repo-relative path for a relative specifier, else the package name. */
type ImportEdge = { importer: string; target: string };

const importPatterns = [
  /^[ \t]*(?:import|export)\s[\w$*\s,{}]*?\bfrom\s*['"]([^'"\n]+)['"]/gm,
  /^[ \t]*import\s*['"]([^'"\n]+)['"]/gm,
  /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g,
  /\brequire\(\s*['"]([^'"\n]+)['"]\s*\)/g,
];

function importsOf(importer: string, source: string): ImportEdge[] {
  const specifiers = importPatterns.flatMap((pattern) =>
    [...source.matchAll(pattern)].map((match) => match[1]!),
  );
  return specifiers.map((specifier) => ({
    importer,
    target: specifier.startsWith('.')
      ? posix.normalize(posix.join(posix.dirname(importer), specifier))
      : specifier,
  }));
}

function sourceFiles(): string[] {
  return scannedRoots.flatMap((root) =>
    readdirSync(`${repoRoot}${root}`, { recursive: true, encoding: 'utf8' })
      .map((path) => `${root}/${path.split(sep).join('/')}`)
      .filter((path) => /\.[cm]?[jt]s$/.test(path) && !path.split('/').includes('node_modules')),
  );
}

const files = sourceFiles();
const edges = files.flatMap((file) => importsOf(file, readFileSync(`${repoRoot}${file}`, 'utf8')));
// Every folder under shared/ with an index.ts is a module, so shared/clip/model-build is one of its own.
const moduleDirs = files
  .filter((file) => file.startsWith('shared/') && posix.basename(file) === 'index.ts')
  .map((file) => `${posix.dirname(file)}/`);

function moduleDirOf(target: string): string {
  const owners = moduleDirs.filter((dir) => target.startsWith(dir));
  const deepest = owners.sort((a, b) => b.length - a.length)[0];
  return deepest ?? `shared/${target.split('/')[1]}/`;
}

function isDeepSharedImport({ importer, target }: ImportEdge): boolean {
  if (!target.startsWith('shared/')) return false;
  const moduleDir = moduleDirOf(target);
  return !importer.startsWith(moduleDir) && target !== `${moduleDir}index.ts`;
}

const describeEdge = ({ importer, target }: ImportEdge) => `${importer} -> ${target}`;
const isAllowed = ({ importer, target }: ImportEdge) =>
  allowedDeepImports[importer]?.includes(target) ?? false;

describe('import scanner', () => {
  it('finds static, multi-line, type-only, re-export, side-effect and dynamic imports', () => {
    const source = [
      "import { a,\n  type B } from './a.ts';",
      "import type { C } from '../c/index.ts';",
      "export * from 'pkg';",
      "import './side-effect.ts';",
      "const d = await import('./d.ts');",
      "const text = 'not an import from here';",
    ].join('\n');
    expect(importsOf('shared/x/y.ts', source).map((edge) => edge.target)).toEqual([
      'shared/x/a.ts',
      'shared/c/index.ts',
      'pkg',
      'shared/x/side-effect.ts',
      'shared/x/d.ts',
    ]);
  });
});

describe('module boundaries', () => {
  it('imports onnxruntime in shared/clip/onnx-runtime.ts and nowhere else', () => {
    const importers = edges.filter((edge) => /^onnxruntime-/.test(edge.target)).map((edge) => edge.importer);
    expect([...new Set(importers)]).toEqual([onnxAdapter]);
  });

  it('never imports workers from services (except where the worker roles are built), nor services from workers', () => {
    const crossings = edges.filter(
      ({ importer, target }) =>
        (importer.startsWith('services/') && target.startsWith('workers/') && importer !== workerRoles) ||
        (importer.startsWith('workers/') && target.startsWith('services/')),
    );
    expect(crossings.map(describeEdge)).toEqual([]);
  });

  it('imports a shared module from outside only through its index.ts', () => {
    const deepImports = edges.filter((edge) => isDeepSharedImport(edge) && !isAllowed(edge));
    expect(deepImports.map(describeEdge)).toEqual([]);
  });

  it('keeps no allow-list entry for a deep import that no longer exists', () => {
    const present = new Set(edges.filter(isDeepSharedImport).map(describeEdge));
    const stale = Object.entries(allowedDeepImports)
      .flatMap(([importer, targets]) => targets.map((target) => describeEdge({ importer, target })))
      .filter((edge) => !present.has(edge));
    expect(stale).toEqual([]);
  });
});
