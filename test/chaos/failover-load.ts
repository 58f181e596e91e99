// Load and throughput figures for the Redis failover test (RELIABILITY.md Q6). Closed-loop clients:
// each submits one image, retrying refusals (503, connection errors) with the same Idempotency-Key as
// README tells clients to, then waits for its verdict before submitting the next. With more clients
// than the workers have slots, completions per second measure what the workers deliver, and a worker
// that stops taking jobs shows as a drop (an open loop below capacity would hide it: the other
// worker would take its share).
import { randomUUID } from 'node:crypto';
import { solidImage } from '../helpers/images.ts';
import type { ServiceHarness } from '../helpers/service-harness.ts';

/** One answer to a POST /v1/moderations: when the request was sent, when its answer arrived. */
export type Answer = {
  sentAt: number;
  at: number;
  kind: 'accepted' | 'refused' | 'unexpected';
  detail: string;
};

export type Outcome = {
  id: string;
  expected: 'block' | 'allow';
  /** The final record's status and verdict; `status` is not `completed` when the verdict never came. */
  status: string;
  action: string | undefined;
  /** The worker's completedAt (epoch ms); undefined when not completed. */
  completedAt: number | undefined;
};

export type FailoverLoad = {
  answers: Answer[];
  outcomes: Outcome[];
  /** Submissions refused for longer than a client retries (60 s): none expected. */
  abandoned: string[];
  stop(): Promise<void>;
};

const retryPauseMs = 100;
const submitDeadlineMs = 60_000;
const verdictDeadlineMs = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A few red and green variants; repeated bytes are fine (clipmod does not dedupe on content). */
async function imagePool(): Promise<{ image: Uint8Array; expected: Outcome['expected'] }[]> {
  return Promise.all(
    Array.from({ length: 16 }, async (_, n) => {
      const isRed = n % 2 === 0;
      const rgb: [number, number, number] = isRed ? [230, 10 + n, 20] : [20, 200, 10 + n];
      return { image: await solidImage('png', 32, 32, rgb), expected: isRed ? 'block' : 'allow' };
    }),
  );
}

export async function startFailoverLoad(api: ServiceHarness, clients: number): Promise<FailoverLoad> {
  const pool = await imagePool();
  const load: Omit<FailoverLoad, 'stop'> = { answers: [], outcomes: [], abandoned: [] };
  let isLoading = true;
  const runClient = async (client: number) => {
    for (let n = client; isLoading; n += clients) {
      const { image, expected } = pool[n % pool.length]!;
      const key = randomUUID();
      const id = await submitUntilAccepted(api, image, key, load.answers);
      if (id === undefined) load.abandoned.push(key);
      else load.outcomes.push({ id, expected, ...(await verdictOf(api, id)) });
    }
  };
  const running = Array.from({ length: clients }, (_, client) => runClient(client));
  return {
    ...load,
    stop: async () => {
      isLoading = false;
      await Promise.all(running);
    },
  };
}

/** The moderation id once accepted (202, or 200 when a retry finds the work done); undefined if given up. */
async function submitUntilAccepted(
  api: ServiceHarness,
  image: Uint8Array,
  key: string,
  answers: Answer[],
): Promise<string | undefined> {
  const deadline = Date.now() + submitDeadlineMs;
  while (Date.now() < deadline) {
    const sentAt = Date.now();
    const response = await api
      .request('/v1/moderations', {
        method: 'POST',
        headers: { 'content-type': 'image/png', 'idempotency-key': key },
        body: image,
        signal: AbortSignal.timeout(10_000),
      })
      .catch((error: Error) => error);
    const at = Date.now();
    if (response instanceof Error) {
      const cause = (response.cause as { code?: string } | undefined)?.code;
      answers.push({ sentAt, at, kind: 'refused', detail: cause ?? response.message });
    } else if (response.status === 202 || response.status === 200) {
      answers.push({ sentAt, at, kind: 'accepted', detail: String(response.status) });
      return ((await response.json()) as { id: string }).id;
    } else {
      const kind = response.status === 503 ? 'refused' : 'unexpected';
      answers.push({
        sentAt,
        at,
        kind,
        detail: `${response.status} ${problemDetail(await response.text())}`,
      });
    }
    await sleep(retryPauseMs);
  }
  return undefined;
}

function problemDetail(body: string): string {
  try {
    return String((JSON.parse(body) as { detail?: unknown }).detail);
  } catch {
    return body.slice(0, 200);
  }
}

async function verdictOf(api: ServiceHarness, id: string): Promise<Omit<Outcome, 'id' | 'expected'>> {
  const deadline = Date.now() + verdictDeadlineMs;
  let status = 'unknown';
  while (Date.now() < deadline) {
    const response = await api
      .request(`/v1/moderations/${id}?wait=5000`, { signal: AbortSignal.timeout(10_000) })
      .catch(() => undefined);
    if (response?.ok) {
      const record = (await response.json()) as Record<string, any>;
      status = record.status;
      if (status === 'completed' || status === 'failed') {
        const completedAt = record.completedAt ? Date.parse(record.completedAt) : undefined;
        return { status, action: record.verdict?.action, completedAt };
      }
    } else {
      await response?.body?.cancel();
      await sleep(retryPauseMs);
    }
  }
  return { status, action: undefined, completedAt: undefined };
}

/** Completions per second in [from, to). */
export function completionRate(outcomes: readonly Outcome[], from: number, to: number): number {
  const count = outcomes.filter(
    ({ completedAt }) => completedAt !== undefined && completedAt >= from && completedAt < to,
  ).length;
  return count / ((to - from) / 1000);
}

export const recoveryWindowMs = 5_000;

/**
 * Milliseconds after `from` at which throughput is back: the start of the first 5-s window whose rate is
 * at least `fraction` of `baselinePerS` (0 when it never dropped). Undefined if no window up to `until`
 * reaches it.
 */
export function recoveredAfterMs(
  outcomes: readonly Outcome[],
  from: number,
  until: number,
  baselinePerS: number,
  fraction: number,
): number | undefined {
  for (let start = from; start + recoveryWindowMs <= until; start += 250) {
    if (completionRate(outcomes, start, start + recoveryWindowMs) >= fraction * baselinePerS)
      return start - from;
  }
  return undefined;
}

/**
 * From the first refusal at or after `from` to the next acceptance of a request sent after it (a 202
 * for a request sent before the refusal says nothing about when acceptance resumed); 0 when nothing
 * was refused.
 */
export function refusalWindow(answers: readonly Answer[], from: number): { ms: number; refusals: number } {
  const after = answers.filter((answer) => answer.at >= from).sort((a, b) => a.at - b.at);
  const first = after.find((answer) => answer.kind === 'refused');
  if (first === undefined) return { ms: 0, refusals: 0 };
  const next = after.find((answer) => answer.kind === 'accepted' && answer.sentAt >= first.at);
  const end = next?.at ?? after.at(-1)!.at;
  const refusals = after.filter((answer) => answer.kind === 'refused' && answer.at <= end).length;
  return { ms: end - first.at, refusals };
}

/** How often each refusal reason was answered in [from, to), most frequent first. */
export function refusalReasons(answers: readonly Answer[], from: number, to: number): Record<string, number> {
  const counts = new Map<string, number>();
  for (const { at, kind, detail } of answers) {
    if (kind !== 'accepted' && at >= from && at < to) counts.set(detail, (counts.get(detail) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
}
