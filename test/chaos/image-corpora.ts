// The malformed-image corpora that RELIABILITY.md I1 names, taken from Debian packages: fetched once
// with `apt-get download` into .cache/image-corpora and unpacked with `dpkg -x`. apt talks only to the
// configured Debian mirror; where apt or the mirror is missing, the caller skips with the reason.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const corpusPackages = [
  'golang-1.19-src',
  'libjxl-testdata',
  'golang-golang-x-image-dev',
  'libsdl2-image-tests',
] as const;

const corpusDir = fileURLToPath(new URL('../../.cache/image-corpora/', import.meta.url));
const rootDir = join(corpusDir, 'root');
const doneMarker = join(rootDir, '.complete');

/** Extensions worth feeding to the decoder: images and the formats clipmod must refuse. */
const imageExtension =
  /\.(png|jpe?g|gif|webp|bmp|tiff?|svg|jxl|avif|qoi|ico|cur|tga|pnm|p[bgp]m|xcf|pcx|lbm|xpm|xv|jp2|heic)$/i;

export type Corpus = { files: string[]; root: string } | { skipped: string };

/** Unpacked corpus files (absolute paths, sorted), downloading the packages on first use. */
export function loadImageCorpora(): Corpus {
  if (!existsSync(doneMarker)) {
    const problem = fetchPackages();
    if (problem) return { skipped: problem };
  }
  const files = walk(rootDir).filter((path) => imageExtension.test(path));
  return { files: files.sort(), root: rootDir };
}

function fetchPackages(): string | undefined {
  const debs = join(corpusDir, 'debs');
  mkdirSync(debs, { recursive: true });
  const download = spawnSync('apt-get', ['download', ...corpusPackages], {
    cwd: debs,
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (download.error || download.status !== 0) {
    const why = download.error?.message ?? download.stderr.trim().split('\n').at(-1);
    return `apt-get download ${corpusPackages.join(' ')} failed (${why}); the I1 corpus sweep needs Debian apt`;
  }
  for (const deb of readdirSync(debs).filter((name) => name.endsWith('.deb'))) {
    const unpacked = spawnSync('dpkg', ['-x', join(debs, deb), rootDir], { encoding: 'utf8' });
    if (unpacked.error || unpacked.status !== 0) return `dpkg -x ${deb} failed: ${unpacked.stderr}`;
  }
  writeFileSync(doneMarker, `${new Date().toISOString()}\n`);
  return undefined;
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat) return [];
    return stat.isDirectory() ? walk(path) : stat.isFile() ? [path] : [];
  });
}

/** A file's key in the golden file: its path inside the unpacked packages. */
export function corpusKey(root: string, path: string): string {
  return relative(root, path);
}
