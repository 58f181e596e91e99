// Prometheus tooling for tests: the real `promtool` (Debian package `prometheus`, which .ci/run
// installs) and a reader for the text exposition format of a /metrics scrape.
import { spawnSync } from 'node:child_process';

export const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

export const promtoolMissing =
  'promtool not found: install the Debian package "prometheus" (CI installs it) to run these checks';

/** Runs promtool with `args` (and stdin), returning its exit status and combined output. */
export function promtool(args: readonly string[], input?: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { input, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

export type Sample = { name: string; labels: Record<string, string>; value: number };

/** Samples of a text-format scrape (comments skipped). Label values are unescaped. */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) throw new Error(`unreadable sample line: ${line}`);
    samples.push({ name: match[1]!, labels: parseLabels(match[2] ?? ''), value: Number(match[3]) });
  }
  return samples;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const match of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, character: string) =>
      character === 'n' ? '\n' : character,
    );
  }
  return labels;
}

/** The sum of the samples named `name` whose labels include `labels` (0 when none match). */
export function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name)
    .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((total, sample) => total + sample.value, 0);
}

/** GET a /metrics URL; the text and its samples. */
export async function scrape(url: string): Promise<{ text: string; samples: Sample[] }> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`scrape of ${url} answered ${response.status}`);
  const text = await response.text();
  return { text, samples: parseSamples(text) };
}
