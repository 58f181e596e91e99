// Collects one benchmark run's figures as JSON and Markdown, prints the Markdown as it goes, and writes
// both to .cache/bench/ (every run, timestamped) and, for a full run, to test/bench/results.{json,md}:
// the committed copy that README §Performance summarises.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type MachineFacts, machineDescription, round, versionsLine } from './bench-stats.ts';

const cacheDir = fileURLToPath(new URL('../../.cache/bench/', import.meta.url));
const committedDir = fileURLToPath(new URL('./', import.meta.url));
const biomeBin = fileURLToPath(new URL('../../node_modules/.bin/biome', import.meta.url));

export class BenchReport {
  readonly results: Record<string, unknown>;
  readonly #lines: string[] = [];
  readonly #startedMs = performance.now();

  constructor(facts: MachineFacts, settings: Record<string, unknown>) {
    this.results = { startedAt: new Date().toISOString(), machine: facts, settings };
    this.say(`# clipmod benchmark — ${this.results.startedAt}`);
    this.say();
    this.say(`Machine: ${machineDescription(facts)}; ${versionsLine(facts)}.`);
    this.say(`Load average at start (1/5/15 min): ${facts.loadAverage.join(' / ')}.`);
    this.say(
      'Each figure: median of the runs, (min–max) when they differ. Ratios compare runs made in this process and minute.',
    );
    this.say();
  }

  say(line = ''): void {
    this.#lines.push(line);
    console.log(line);
  }

  heading(title: string): void {
    this.say(`## ${title}`);
  }

  table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
    this.say(`| ${header.join(' | ')} |`);
    this.say(`|${header.map(() => '---').join('|')}|`);
    for (const row of rows) this.say(`| ${row.join(' | ')} |`);
    this.say();
  }

  set(key: string, value: unknown): void {
    this.results[key] = value;
  }

  /** Writes the files; `isCommitted` also replaces test/bench/results.{json,md}. Returns the paths. */
  write(isCommitted: boolean): string[] {
    const elapsedSeconds = round((performance.now() - this.#startedMs) / 1000, 0);
    this.set('elapsedSeconds', elapsedSeconds);
    this.set(
      'loadAverageAtEnd',
      loadavg().map((value) => round(value, 2)),
    );
    this.say(
      `Finished in ${elapsedSeconds} s; load average at end: ${loadavg()
        .map((v) => round(v, 2))
        .join(' / ')}.`,
    );
    const json = `${JSON.stringify(this.results, null, 2)}\n`;
    const markdown = `${this.#lines.join('\n')}\n`;
    mkdirSync(cacheDir, { recursive: true });
    const stamp = String(this.results.startedAt).replace(/[:.]/g, '-');
    const paths = [`${cacheDir}bench-${stamp}.json`, `${cacheDir}bench-${stamp}.md`];
    if (isCommitted) paths.push(`${committedDir}results.json`, `${committedDir}results.md`);
    for (const path of paths) writeFileSync(path, path.endsWith('.json') ? json : markdown);
    // `npm test` runs Biome over the tree: the committed JSON is written in its format.
    if (isCommitted)
      execFileSync(biomeBin, ['format', '--write', `${committedDir}results.json`], { stdio: 'ignore' });
    return paths;
  }
}

/** What every section receives. */
export type SectionContext = {
  report: BenchReport;
  /** How many times each measurement is repeated (its median, min and max are reported). */
  runs: number;
  isQuick: boolean;
  /** Large photographs (≈ 2.8 MP JPEG) generated from the reference images. */
  photos: readonly Uint8Array[];
};
