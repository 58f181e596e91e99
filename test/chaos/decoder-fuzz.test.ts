import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { sized } from './chaos-deployment.ts';
import { typedImageCodes } from './hostile-image-service.ts';

// RELIABILITY.md I8: mutants of valid images through the production decode path, in a child process
// (decoder-fuzz-child.ts) so that a native crash shows up as a signal instead of killing vitest.
// CI runs 1,500 mutants; `npm run test:chaos` runs 20,000 (bounded at 8 minutes).

const repoRoot = new URL('../../', import.meta.url).pathname;

type FuzzSummary = {
  done: number;
  outcomes: Record<string, number>;
  findings: string[];
  maxMs: number;
  rssStartMb: number;
  rssEndMb: number;
  rssMaxMb: number;
};

/** Runs the child, killing it by pid if it overruns; resolves with its exit and its summary line. */
function runFuzzChild(mutants: number, seed: number, budgetMs: number) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/chaos/decoder-fuzz-child.ts', String(mutants), String(seed), String(budgetMs)],
    { cwd: repoRoot, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const killer = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), budgetMs + 30_000);
  return new Promise<{ code: number | null; signal: string | null; summary?: FuzzSummary; stderr: string }>(
    (resolve) => {
      child.once('exit', (code, signal) => {
        clearTimeout(killer);
        const line = stdout.trim().split('\n').at(-1) ?? '';
        const summary = line.startsWith('{') ? (JSON.parse(line) as FuzzSummary) : undefined;
        resolve({ code, signal, stderr, ...(summary ? { summary } : {}) });
      });
    },
  );
}

describe('I8: decoder fuzz in a child process', () => {
  it('ends every mutant in a typed error or a tensor, with no child death, no slow decode and bounded RSS', async () => {
    const mutants = sized(1_500, 20_000);
    const result = await runFuzzChild(mutants, 20_261_129, sized(60_000, 480_000));
    expect({ code: result.code, signal: result.signal }, result.stderr.slice(-2_000)).toEqual({
      code: 0,
      signal: null,
    });
    const summary = result.summary!;
    expect(summary.done).toBe(mutants);
    expect(summary.findings).toEqual([]);
    expect(
      Object.keys(summary.outcomes).every((kind) => kind === 'ok' || typedImageCodes.includes(kind)),
    ).toBe(true);
    // Some mutants still decode: the mutations are not all rejected at the magic bytes.
    expect(summary.outcomes.ok ?? 0).toBeGreaterThan(0);
    expect(summary.maxMs).toBeLessThan(5_000);
    expect(summary.rssMaxMb - summary.rssStartMb).toBeLessThan(200);
    process.stderr.write(`[chaos] I8 ${JSON.stringify(summary)}\n`);
  }, 600_000);
});
