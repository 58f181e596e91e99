import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ClipmodError } from '../../errors/index.ts';
import { etagToChecksum, hashFile } from './file-checksum.ts';
import { type HubConnection, type HubFileMeta, hubFailure, hubRequest, networkReason } from './hub-client.ts';
import { type RetryNotice, type RetryPolicy, TransientFetchError, withRetries } from './retry-policy.ts';

export type DownloadTarget = {
  hub: HubConnection;
  repo: string;
  revision: string;
  commit: string;
  url: string;
  meta: HubFileMeta;
  destination: string;
};

export type DownloadCallbacks = {
  onStart(resumeFromBytes: number): void;
  onBytes(bytesDone: number): void;
  onRetry(notice: RetryNotice): void;
};

export type DownloadOutcome = 'downloaded' | 'skipped';

/**
 * Makes `destination` hold exactly the file the hub describes: skipped when it already does,
 * otherwise downloaded into `<destination>.incomplete` (resumed from whatever is there), verified
 * against the hub's checksum, then renamed into place so a reader never sees a partial file.
 */
export async function downloadFile(
  target: DownloadTarget,
  policy: RetryPolicy,
  callbacks: DownloadCallbacks,
): Promise<DownloadOutcome> {
  if (await holdsFile(target.destination, target.meta)) return 'skipped';
  await mkdir(dirname(target.destination), { recursive: true });
  const partial = `${target.destination}.incomplete`;
  const leftoverBytes = (await sizeOf(partial)) ?? 0;
  const fetchPartial = async (resumeFromBytes: number) => {
    callbacks.onStart(resumeFromBytes);
    const what = `${target.repo} ${target.meta.path}`;
    await withRetries(
      what,
      () => attemptDownload(target, partial, policy, callbacks),
      policy,
      callbacks.onRetry,
    );
    return hashFile(partial, target.meta.checksum.algorithm);
  };
  let actual = await fetchPartial(leftoverBytes);
  // A leftover partial may come from another commit of a moving branch: one clean retry, not a failure.
  if (actual !== target.meta.checksum.value && leftoverBytes > 0) {
    await rm(partial, { force: true });
    actual = await fetchPartial(0);
  }
  if (actual !== target.meta.checksum.value) {
    await rm(partial, { force: true });
    throw checksumMismatch(target.meta, actual);
  }
  await rename(partial, target.destination);
  return 'downloaded';
}

async function holdsFile(path: string, meta: HubFileMeta): Promise<boolean> {
  if ((await sizeOf(path)) !== meta.sizeBytes) return false;
  return (await hashFile(path, meta.checksum.algorithm)) === meta.checksum.value;
}

function checksumMismatch(meta: HubFileMeta, actual: string): ClipmodError {
  const { algorithm, value: expected } = meta.checksum;
  return new ClipmodError(
    'model_fetch_failed',
    `${meta.path}: ${algorithm} mismatch, expected ${expected}, got ${actual}; the partial download was deleted`,
    { details: { file: meta.path, algorithm, expected, actual } },
  );
}

/** One GET, resuming with `Range` when a partial file exists. Network trouble is transient. */
async function attemptDownload(
  target: DownloadTarget,
  partial: string,
  policy: RetryPolicy,
  callbacks: DownloadCallbacks,
): Promise<void> {
  let offset = (await sizeOf(partial)) ?? 0;
  if (offset > target.meta.sizeBytes) {
    await rm(partial, { force: true });
    offset = 0;
  }
  // A complete partial needs no request: verification decides whether it is good.
  if (offset === target.meta.sizeBytes) return;
  const stall = watchForStall(policy.stallTimeoutMs);
  try {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const hubResponse = await hubRequest(target.hub, target.url, headers, stall.signal);
    const { response } = hubResponse;
    if (response.status === 416) {
      await response.body?.cancel();
      await rm(partial, { force: true });
      throw new TransientFetchError('the server refused to resume; starting over', {});
    }
    const context = { hub: target.hub, repo: target.repo, revision: target.revision, file: target.meta.path };
    if (!response.ok) throw await hubFailure(response, context);
    checkHubHeaders(hubResponse, target);
    const startByte = await startOfBody(response, offset, partial);
    const bytesDone = await writeBody(response, partial, startByte, stall, callbacks);
    if (bytesDone < target.meta.sizeBytes) {
      const reason = `the body ended at byte ${bytesDone} of ${target.meta.sizeBytes}`;
      throw new TransientFetchError(reason, { hasMadeProgress: bytesDone > startByte });
    }
  } finally {
    stall.stop();
  }
}

/** A 206 continues the partial file; a 200 means the server ignored `Range`, so start again. */
async function startOfBody(response: Response, offset: number, partial: string): Promise<number> {
  if (response.status !== 206) return 0;
  const start = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1];
  if (start !== undefined && Number(start) === offset) return offset;
  await response.body?.cancel();
  await rm(partial, { force: true });
  throw new TransientFetchError(`the server resumed at byte ${start ?? '?'} instead of ${offset}`, {});
}

/** The content is verified by hash anyway; these checks fail early, before a long download. */
function checkHubHeaders(
  hubResponse: { repoCommit: string | null; etag: string | null },
  target: DownloadTarget,
) {
  const { path } = target.meta;
  if (hubResponse.repoCommit !== null && hubResponse.repoCommit !== target.commit) {
    throw new ClipmodError(
      'model_fetch_failed',
      `${path}: the hub served commit ${hubResponse.repoCommit}, expected ${target.commit}`,
      { details: { file: path, expected: target.commit, actual: hubResponse.repoCommit } },
    );
  }
  const fromEtag = etagToChecksum(hubResponse.etag);
  const expected = target.meta.checksum;
  if (fromEtag?.algorithm === expected.algorithm && fromEtag.value !== expected.value) {
    throw new ClipmodError(
      'model_fetch_failed',
      `${path}: the hub's ETag ${fromEtag.value} disagrees with its model info ${expected.value}`,
      { details: { file: path, expected: expected.value, actual: fromEtag.value } },
    );
  }
}

/** Appends as bytes arrive, so a cut connection leaves a partial file the next attempt resumes. */
async function writeBody(
  response: Response,
  partial: string,
  startByte: number,
  stall: StallWatch,
  callbacks: DownloadCallbacks,
): Promise<number> {
  const reader = response.body?.getReader();
  if (reader === undefined) throw new TransientFetchError('empty response body', {});
  const file = await open(partial, startByte === 0 ? 'w' : 'a');
  let bytesDone = startByte;
  try {
    for (;;) {
      const chunk = await readChunk(reader, bytesDone > startByte, stall.signal);
      if (chunk === undefined) return bytesDone;
      await file.write(chunk);
      bytesDone += chunk.byteLength;
      stall.touch();
      callbacks.onBytes(bytesDone);
    }
  } finally {
    await file.close();
  }
}

async function readChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  hasMadeProgress: boolean,
  stallSignal: AbortSignal,
): Promise<Uint8Array | undefined> {
  try {
    const { done, value } = await reader.read();
    return done ? undefined : value;
  } catch (error) {
    const reason = stallSignal.aborted ? 'the download stalled' : networkReason(error);
    throw new TransientFetchError(reason, { cause: error, hasMadeProgress });
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

type StallWatch = { signal: AbortSignal; touch(): void; stop(): void };

/** Aborts the request when neither headers nor body bytes arrive for `timeoutMs`. */
function watchForStall(timeoutMs: number): StallWatch {
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), timeoutMs);
  return {
    signal: controller.signal,
    touch() {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(), timeoutMs);
    },
    stop() {
      clearTimeout(timer);
    },
  };
}
