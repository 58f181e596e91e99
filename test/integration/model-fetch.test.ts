import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../services/cli/command.ts';
import { modelFetchCommand } from '../../services/cli/model-fetch-command.ts';
import {
  type FetchModelOptions,
  type FetchProgressEvent,
  fetchModel,
  modelFilesFor,
} from '../../shared/clip/model-fetch/index.ts';
import { loadModelFolder } from '../../shared/clip/model-folder.ts';
import { isClipmodError } from '../../shared/errors/index.ts';
import {
  type FakeHub,
  type FakeHubOptions,
  modelInfoFaults,
  sha256Hex,
  startFakeHub,
} from '../helpers/fake-hub.ts';
import { builtModel } from '../helpers/models.ts';

const repo = 'Xenova/clip-vit-base-patch32';
const fastRetry = { baseDelayMs: 1, maxDelayMs: 5 };

/** The repo: the real `tiny` model folder, plus stand-in bytes for the fp16 graphs (not real fp16). */
let repoFiles: Record<string, Buffer> = {};
let hub: FakeHub | undefined;
let outDir = '';

beforeAll(async () => {
  const modelDir = await builtModel('tiny');
  for (const path of modelFilesFor('fp32')) repoFiles[path] = await readFile(join(modelDir, path));
  repoFiles = { ...repoFiles, ...standInGraphs('fp16', 300_000) };
});

afterEach(async () => {
  await hub?.close();
  hub = undefined;
  await rm(outDir, { recursive: true, force: true });
});

function standInGraphs(variant: string, sizeBytes: number): Record<string, Buffer> {
  const graphs: Record<string, Buffer> = {};
  for (const graph of ['vision_model', 'text_model']) {
    const seed = createHash('sha256').update(`${graph}_${variant}`).digest();
    graphs[`onnx/${graph}_${variant}.onnx`] = Buffer.alloc(sizeBytes, seed);
  }
  return graphs;
}

async function startHub(options: Partial<FakeHubOptions> = {}): Promise<FakeHub> {
  hub = await startFakeHub({ repo, files: repoFiles, ...options });
  outDir = await mkdtemp(join(tmpdir(), 'clipmod-fetch-'));
  return hub;
}

function fetchFrom(from: FakeHub, options: Partial<FetchModelOptions> = {}) {
  return fetchModel({
    repo,
    revision: 'main',
    variant: 'fp32',
    outDir,
    endpoint: from.endpoint,
    retry: fastRetry,
    ...options,
  });
}

/** Resolves to the ClipmodError a promise rejects with, or fails the test. */
async function rejection(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!isClipmodError(error)) throw new Error(`expected a ClipmodError, got ${String(error)}`);
  return error;
}

/** The N of a `bytes=N-` header; a client may resume a little before the cut if it dropped buffered bytes. */
function resumeOffset(range: string | undefined): number {
  const start = /^bytes=(\d+)-$/.exec(range ?? '')?.[1];
  if (start === undefined) throw new Error(`expected a Range header, got ${range}`);
  return Number(start);
}

function requestsFor(from: FakeHub, file: string) {
  return from.requests.filter((request) => request.file === file && request.status !== 302);
}

describe('fetchModel against a loopback hub', () => {
  it('downloads every file of the variant byte for byte and pins them all to the resolved commit', async () => {
    const from = await startHub();
    const result = await fetchFrom(from);
    expect(result.commit).toBe(from.commit);
    for (const path of modelFilesFor('fp32')) {
      expect((await readFile(join(outDir, path))).equals(repoFiles[path]!)).toBe(true);
    }
    const resolves = from.requests.filter((request) => request.path.includes('/resolve/'));
    expect(resolves).toHaveLength(7);
    expect(resolves.every((request) => request.path.includes(`/resolve/${from.commit}/`))).toBe(true);
    expect(result.files.map((file) => file.outcome)).toEqual(Array(7).fill('downloaded'));
  });

  it('fetches LFS graphs from the CDN the hub redirects to', async () => {
    const from = await startHub();
    await fetchFrom(from);
    const cdnFiles = from.requests
      .filter((request) => request.server === 'cdn')
      .map((request) => request.file);
    expect(cdnFiles.sort()).toEqual(['onnx/text_model.onnx', 'onnx/vision_model.onnx']);
  });

  it('writes clipmod.json that the model-folder loader reads back', async () => {
    const from = await startHub();
    await fetchFrom(from);
    const manifest = JSON.parse(await readFile(join(outDir, 'clipmod.json'), 'utf8'));
    expect(manifest).toEqual({
      id: `${repo}@${from.commit.slice(0, 7)}`,
      logitScale: 100,
      variant: 'fp32',
      source: { repo, revision: 'main', commit: from.commit },
    });
    const folder = await loadModelFolder(outDir);
    expect(folder.modelId).toBe(manifest.id);
    expect(folder.logitScale).toBe(100);
  });

  it('downloads only the graphs of the chosen variant', async () => {
    const from = await startHub();
    await fetchFrom(from, { variant: 'fp16' });
    const onnx = (await readdir(join(outDir, 'onnx'))).sort();
    expect(onnx).toEqual(['text_model_fp16.onnx', 'vision_model_fp16.onnx']);
    const vision = await readFile(join(outDir, 'onnx/vision_model_fp16.onnx'));
    expect(sha256Hex(vision)).toBe(sha256Hex(repoFiles['onnx/vision_model_fp16.onnx']!));
  });

  it('fails with not_found naming the file when the repo lacks the variant', async () => {
    const from = await startHub();
    const error = await rejection(fetchFrom(from, { variant: 'quantized' }));
    expect(error.code).toBe('not_found');
    expect(error.message).toContain('onnx/vision_model_quantized.onnx');
    expect(from.requests.filter((request) => request.file !== undefined)).toEqual([]);
  });
});

describe('resuming', () => {
  it('resumes an interrupted download with a Range request instead of starting over', async () => {
    const from = await startHub();
    const file = 'onnx/text_model.onnx';
    const sizeBytes = repoFiles[file]!.length;
    from.injectFaults(file, { kind: 'cut-after', bytes: 1_000_000 });
    const events: FetchProgressEvent[] = [];
    await fetchFrom(from, { onProgress: (event) => events.push(event) });
    const [cut, resumed] = requestsFor(from, file);
    expect([cut?.range, cut?.status, cut?.bodyBytes]).toEqual([undefined, 200, 1_000_000]);
    const resumeAt = resumeOffset(resumed?.range);
    expect(resumeAt).toBeGreaterThan(0);
    expect(resumeAt).toBeLessThanOrEqual(1_000_000);
    expect([resumed?.status, resumed?.bodyBytes]).toEqual([206, sizeBytes - resumeAt]);
    expect(requestsFor(from, file)).toHaveLength(2);
    expect((await readFile(join(outDir, file))).equals(repoFiles[file]!)).toBe(true);
    expect(events.some((event) => event.kind === 'retry' && event.file === file)).toBe(true);
  });

  it('aborts a download that stalls and resumes it', async () => {
    const from = await startHub();
    const file = 'onnx/vision_model.onnx';
    from.injectFaults(file, { kind: 'stall-after', bytes: 300_000 });
    await fetchFrom(from, { retry: { ...fastRetry, stallTimeoutMs: 300 } });
    const [stalled, resumed] = requestsFor(from, file);
    expect(stalled?.bodyBytes).toBe(300_000);
    expect(resumeOffset(resumed?.range)).toBeGreaterThan(0);
    expect((await readFile(join(outDir, file))).equals(repoFiles[file]!)).toBe(true);
  });

  it('continues from a partial file left by an earlier run', async () => {
    const from = await startHub();
    const file = 'onnx/vision_model.onnx';
    await mkdir(join(outDir, 'onnx'));
    await writeFile(join(outDir, `${file}.incomplete`), repoFiles[file]!.subarray(0, 400_000));
    await fetchFrom(from);
    expect(requestsFor(from, file).map((request) => request.range)).toEqual(['bytes=400000-']);
    expect((await readFile(join(outDir, file))).equals(repoFiles[file]!)).toBe(true);
  });

  it('discards a leftover partial from another commit and downloads the file again', async () => {
    const from = await startHub();
    const file = 'onnx/vision_model.onnx';
    await mkdir(join(outDir, 'onnx'));
    await writeFile(join(outDir, `${file}.incomplete`), Buffer.alloc(400_000, 7));
    await fetchFrom(from);
    expect(requestsFor(from, file).map((request) => request.range)).toEqual(['bytes=400000-', undefined]);
    expect((await readFile(join(outDir, file))).equals(repoFiles[file]!)).toBe(true);
  });

  it('starts over when the server ignores Range and answers 200', async () => {
    const from = await startHub();
    const file = 'onnx/text_model.onnx';
    const sizeBytes = repoFiles[file]!.length;
    from.injectFaults(file, { kind: 'cut-after', bytes: 500_000 }, { kind: 'ignore-range' });
    await fetchFrom(from);
    const [cut, restarted] = requestsFor(from, file);
    expect(cut?.bodyBytes).toBe(500_000);
    expect(resumeOffset(restarted?.range)).toBeGreaterThan(0);
    expect([restarted?.status, restarted?.bodyBytes]).toEqual([200, sizeBytes]);
    expect((await readFile(join(outDir, file))).equals(repoFiles[file]!)).toBe(true);
  });

  it('skips files that are already complete on a second run', async () => {
    const from = await startHub();
    await fetchFrom(from);
    const firstRunRequests = from.requests.length;
    const second = await fetchFrom(from);
    expect(second.files.map((file) => file.outcome)).toEqual(Array(7).fill('skipped'));
    expect(from.requests.slice(firstRunRequests).map((request) => request.path)).toEqual([
      `/api/models/${repo}/revision/main`,
    ]);
  });

  it('downloads again a local file whose checksum is wrong', async () => {
    const from = await startHub();
    await fetchFrom(from);
    await writeFile(join(outDir, 'config.json'), '{"projection_dim": 1}');
    const second = await fetchFrom(from);
    const downloaded = second.files.filter((file) => file.outcome === 'downloaded').map((file) => file.path);
    expect(downloaded).toEqual(['config.json']);
    expect((await readFile(join(outDir, 'config.json'))).equals(repoFiles['config.json']!)).toBe(true);
  });
});

describe('failures', () => {
  it('rejects corrupted content with model_fetch_failed and leaves no file behind', async () => {
    const from = await startHub();
    const file = 'onnx/vision_model.onnx';
    from.injectFaults(file, { kind: 'corrupt' });
    const error = await rejection(fetchFrom(from));
    const expected = sha256Hex(repoFiles[file]!);
    expect(error.code).toBe('model_fetch_failed');
    expect(error.message).toContain(file);
    expect(error.message).toContain(expected);
    expect(error.details).toMatchObject({ file, expected, actual: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(await readdir(join(outDir, 'onnx'))).toEqual([]);
  });

  it('retries a 503 and then succeeds', async () => {
    const from = await startHub();
    from.injectFaults('config.json', { kind: 'status', status: 503 }, { kind: 'status', status: 502 });
    const events: FetchProgressEvent[] = [];
    await fetchFrom(from, { onProgress: (event) => events.push(event) });
    const retries = events.filter((event) => event.kind === 'retry');
    expect(retries.map((event) => event.kind === 'retry' && event.reason)).toEqual(['HTTP 503', 'HTTP 502']);
    expect((await readFile(join(outDir, 'config.json'))).equals(repoFiles['config.json']!)).toBe(true);
  });

  it('retries the model-info request on a 503', async () => {
    const from = await startHub();
    from.injectFaults(modelInfoFaults, { kind: 'status', status: 503 });
    const events: FetchProgressEvent[] = [];
    const result = await fetchFrom(from, { onProgress: (event) => events.push(event) });
    expect(result.commit).toBe(from.commit);
    expect(events.filter((event) => event.kind === 'retry').map((event) => event.file)).toEqual([
      'model info',
    ]);
  });

  it('gives up after the configured number of consecutive failures', async () => {
    const from = await startHub();
    const outage = Array.from({ length: 5 }, () => ({ kind: 'status', status: 500 }) as const);
    from.injectFaults('config.json', ...outage);
    const error = await rejection(fetchFrom(from, { retry: { ...fastRetry, maxAttempts: 3 } }));
    expect(error.code).toBe('model_fetch_failed');
    expect(error.message).toMatch(/config\.json: gave up after 3 attempts: HTTP 500/);
    expect(requestsFor(from, 'config.json')).toHaveLength(3);
  });

  it('reports a repository the hub does not know as not_found, with or without a token', async () => {
    const from = await startHub();
    for (const token of [undefined, 'hf_anything']) {
      const error = await rejection(fetchFrom(from, { repo: 'nobody/no-such-model', token }));
      expect(error.code).toBe('not_found');
      expect(error.message).toContain('nobody/no-such-model@main: repository not found');
    }
  });

  it('reports an unknown revision as not_found', async () => {
    const from = await startHub();
    const error = await rejection(fetchFrom(from, { revision: 'v9.9' }));
    expect(error.code).toBe('not_found');
    expect(error.message).toContain('revision not found');
  });
});

describe('tokens', () => {
  it('sends HF_TOKEN to the hub but never to the CDN host', async () => {
    const from = await startHub({ requiredToken: 'hf_secret' });
    await fetchFrom(from, { token: 'hf_secret' });
    const hubRequests = from.requests.filter((request) => request.server === 'hub');
    const cdnRequests = from.requests.filter((request) => request.server === 'cdn');
    expect(hubRequests.length).toBeGreaterThan(0);
    expect(cdnRequests.length).toBe(2);
    expect(hubRequests.every((request) => request.authorization === 'Bearer hf_secret')).toBe(true);
    expect(cdnRequests.map((request) => request.authorization)).toEqual([undefined, undefined]);
  });

  it('asks for HF_TOKEN when a gated repo is fetched without one', async () => {
    const from = await startHub({ requiredToken: 'hf_secret' });
    const error = await rejection(fetchFrom(from));
    expect(error.code).toBe('unauthorized');
    expect(error.message).toMatch(/set HF_TOKEN/);
  });

  it('says access is denied when the token has not been granted the gated repo', async () => {
    const from = await startHub({ requiredToken: 'hf_secret' });
    const error = await rejection(fetchFrom(from, { token: 'hf_other' }));
    expect(error.code).toBe('forbidden');
    expect(error.message).toMatch(/gated: accept its terms/);
  });
});

function cliIo(env: Record<string, string>) {
  const output = { stdout: '', stderr: '' };
  const sink = (name: 'stdout' | 'stderr') =>
    new Writable({
      write(chunk, _encoding, done) {
        output[name] += String(chunk);
        done();
      },
    });
  return { io: { stdin: Readable.from([]), stdout: sink('stdout'), stderr: sink('stderr'), env }, output };
}

describe('clipmod model fetch', () => {
  it('downloads from HF_ENDPOINT with HF_TOKEN and logs plain progress lines to a non-terminal', async () => {
    const from = await startHub({ requiredToken: 'hf_cli' });
    const { io, output } = cliIo({ HF_ENDPOINT: from.endpoint, HF_TOKEN: 'hf_cli' });
    const exitCode = await modelFetchCommand.run([repo, '--out', outDir, '--variant', 'fp16'], io);
    expect(exitCode).toBe(0);
    expect(output.stdout).toBe(`${outDir}: commit ${from.commit}, 7 downloaded, 0 already present\n`);
    expect(output.stderr).not.toContain('\r');
    expect(output.stderr.trimEnd().split('\n')).toHaveLength(7);
    expect(output.stderr).toContain('[7/7] onnx/text_model_fp16.onnx  300.0 kB  done in');
    const manifest = JSON.parse(await readFile(join(outDir, 'clipmod.json'), 'utf8'));
    expect(manifest.variant).toBe('fp16');
  });

  it('lets --endpoint override HF_ENDPOINT and defaults the repo to Xenova/clip-vit-base-patch32', async () => {
    const from = await startHub();
    const { io } = cliIo({ HF_ENDPOINT: 'http://127.0.0.1:9/unused' });
    expect(await modelFetchCommand.run(['--out', outDir, '--endpoint', from.endpoint], io)).toBe(0);
    expect(from.requests[0]?.path).toBe(`/api/models/${repo}/revision/main`);
  });

  it('throws UsageError for a missing --out, an unknown variant or two repos', async () => {
    const from = await startHub();
    const { io } = cliIo({ HF_ENDPOINT: from.endpoint });
    const attempts = [[repo], [repo, '--out', outDir, '--variant', 'int4'], ['a/b', 'c/d', '--out', outDir]];
    for (const args of attempts) {
      await expect(modelFetchCommand.run(args, io)).rejects.toBeInstanceOf(UsageError);
    }
    expect(from.requests).toEqual([]);
  });

  it('rejects a malformed repo name before any request', async () => {
    const from = await startHub();
    const { io } = cliIo({ HF_ENDPOINT: from.endpoint });
    const error = await rejection(modelFetchCommand.run(['../../etc', '--out', outDir], io));
    expect(error.code).toBe('bad_request');
    expect(from.requests).toEqual([]);
  });
});
