/** A named check that /readyz runs; `warning` marks a degraded-but-serving state (e.g. a test model). */
export type ReadinessCheck = {
  name: string;
  check(): Promise<{ ok: boolean; detail?: string; warning?: string }>;
};

export type ReadinessReport = {
  status: 'ready' | 'not_ready';
  checks: Record<string, { ok: boolean; detail?: string }>;
  warnings: string[];
};

/** Runs every check (each bounded by timeoutMs) and reports them all; ready only when all pass. */
export async function evaluateReadiness(
  isStarted: boolean,
  checks: readonly ReadinessCheck[],
  timeoutMs = 1_000,
): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async (entry) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<{ ok: boolean; detail: string }>((resolve) => {
        timer = setTimeout(
          () => resolve({ ok: false, detail: `no answer within ${timeoutMs} ms` }),
          timeoutMs,
        );
      });
      const result = await Promise.race([
        entry.check().catch((error: unknown) => ({ ok: false, detail: (error as Error).message })),
        timeout,
      ]);
      clearTimeout(timer);
      return [entry.name, result] as const;
    }),
  );
  const checksOut: ReadinessReport['checks'] = { lifecycle: { ok: isStarted } };
  const warnings: string[] = [];
  for (const [name, result] of results) {
    checksOut[name] = { ok: result.ok, ...(result.detail ? { detail: result.detail } : {}) };
    if ('warning' in result && typeof result.warning === 'string') warnings.push(result.warning);
  }
  const isReady = Object.values(checksOut).every((c) => c.ok);
  return { status: isReady ? 'ready' : 'not_ready', checks: checksOut, warnings };
}
