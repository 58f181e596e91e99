// Small statistics and machine facts for benchmark reports: every figure is the median of several
// runs with its min and max (PERFORMANCE.md), and a report states the machine and how loaded it was.
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import sharp from 'sharp';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** One figure over several runs. */
export type Summary = { median: number; min: number; max: number; runs: number[] };

export function summarize(values: readonly number[]): Summary {
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    runs: [...values],
  };
}

/** Runs `run` `count` times in sequence (never in parallel: runs must not compete for the cores). */
export async function repeat<T>(count: number, run: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < count; i++) results.push(await run(i));
  return results;
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** `median (min–max)`, or the bare value when the runs agree. */
export function formatSummary(summary: Summary, digits = 2): string {
  const [med, min, max] = [summary.median, summary.min, summary.max].map((v) => round(v, digits));
  return min === max ? String(med) : `${med} (${min}–${max})`;
}

export type MachineFacts = {
  cores: number;
  cpu: string;
  /** The SIMD and matrix flags that decide how fast onnxruntime and libvips run. */
  cpuFlags: string[];
  memoryGiB: number;
  /** 1, 5 and 15-minute load averages: how busy the shared machine was around the measurement. */
  loadAverage: number[];
  versions: Record<string, string>;
};

const interestingFlags = [
  'sse4_2',
  'avx',
  'avx2',
  'fma',
  'avx512f',
  'avx512_vnni',
  'avx512_bf16',
  'amx_tile',
];

function cpuFlags(): string[] {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    const present = new Set(line?.split(/\s+/) ?? []);
    return interestingFlags.filter((flag) => present.has(flag));
  } catch {
    return []; // Not Linux: the CPU model alone will do.
  }
}

function packageVersion(name: string): string {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

export function machineFacts(): MachineFacts {
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown CPU',
    cpuFlags: cpuFlags(),
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    loadAverage: loadavg().map((value) => round(value, 2)),
    versions: {
      node: process.version,
      'onnxruntime-node': packageVersion('onnxruntime-node'),
      sharp: packageVersion('sharp'),
      libvips: sharp.versions.vips,
      '@huggingface/transformers': packageVersion('@huggingface/transformers'),
      bullmq: packageVersion('bullmq'),
    },
  };
}

export function machineDescription(facts: MachineFacts = machineFacts()): string {
  const flags = facts.cpuFlags.length > 0 ? ` (${facts.cpuFlags.join(' ')})` : '';
  return `${facts.cores} × ${facts.cpu}${flags}, ${facts.memoryGiB} GiB, Node ${facts.versions.node}`;
}

export function versionsLine(facts: MachineFacts): string {
  return Object.entries(facts.versions)
    .filter(([name]) => name !== 'node')
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
}
