// Small statistics and machine facts for benchmark reports.

import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

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

export function machineDescription(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  let flags = '';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const line = info.split('\n').find((l) => l.startsWith('flags')) ?? '';
    flags = ['avx2', 'avx512f', 'fma', 'avx512_vnni', 'amx_tile']
      .filter((f) => line.split(/\s+/).includes(f))
      .join(' ');
  } catch {
    // Not Linux: the CPU model alone will do.
  }
  return `${cpus().length} × ${cpu}${flags ? ` (${flags})` : ''}, Node ${process.version}`;
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
