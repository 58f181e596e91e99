import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createProgressRenderer,
  defaultRetryPolicy,
  type FetchProgressEvent,
  formatBytes,
  formatDuration,
  formatFileDone,
  formatProgressLine,
  hashFile,
  modelFilesFor,
  parseRetryAfterMs,
  retryDelayMs,
} from '../../shared/clip/model-fetch/index.ts';

describe('formatProgressLine', () => {
  it('shows file counter, percent, amounts, speed and ETA', () => {
    const line = formatProgressLine({
      file: 'onnx/vision_model.onnx',
      fileIndex: 6,
      fileCount: 7,
      bytesDone: 147_300_000,
      bytesTotal: 351_500_000,
      bytesPerSecond: 12_400_000,
    });
    expect(line).toBe('[6/7] onnx/vision_model.onnx   41%  147.3 MB / 351.5 MB  12.4 MB/s  ETA 16s');
  });

  it('shows dashes instead of a speed and ETA before a rate is known', () => {
    const line = formatProgressLine({
      file: 'config.json',
      fileIndex: 1,
      fileCount: 7,
      bytesDone: 0,
      bytesTotal: 4_200,
      bytesPerSecond: undefined,
    });
    expect(line).toBe('[1/7] config.json    0%  0 B / 4.2 kB  -- MB/s  ETA --');
  });

  it('never reports more than 100% when a server sends extra bytes', () => {
    const line = formatProgressLine({
      file: 'a',
      fileIndex: 1,
      fileCount: 1,
      bytesDone: 200,
      bytesTotal: 100,
      bytesPerSecond: 10,
    });
    expect(line).toContain(' 100% ');
    expect(line).toContain('ETA 0s');
  });
});

describe('formatFileDone', () => {
  it('reports the transfer rate of the bytes this run actually moved', () => {
    const line = formatFileDone({
      file: 'onnx/text_model.onnx',
      fileIndex: 7,
      fileCount: 7,
      bytesTotal: 254_000_000,
      outcome: 'downloaded',
      bytesTransferred: 127_000_000,
      elapsedMs: 10_000,
    });
    expect(line).toBe('[7/7] onnx/text_model.onnx  254.0 MB  done in 10s (12.7 MB/s)');
  });

  it('says a skipped file was already present', () => {
    const line = formatFileDone({
      file: 'config.json',
      fileIndex: 1,
      fileCount: 7,
      bytesTotal: 4_186,
      outcome: 'skipped',
      bytesTransferred: 0,
      elapsedMs: 0,
    });
    expect(line).toBe('[1/7] config.json  4.2 kB  already present');
  });
});

describe('formatBytes and formatDuration', () => {
  it('uses decimal units with more precision for small gigabyte values', () => {
    expect([999, 4_200, 12_400_000, 1_500_000_000, 25_000_000_000].map(formatBytes)).toEqual([
      '999 B',
      '4.2 kB',
      '12.4 MB',
      '1.50 GB',
      '25.0 GB',
    ]);
  });

  it('switches from seconds to minutes to hours', () => {
    expect([400, 59_400, 125_000, 3_720_000].map(formatDuration)).toEqual(['0s', '59s', '2m05s', '1h02m']);
  });
});

function bytesEvent(bytesDone: number, bytesTotal: number): FetchProgressEvent {
  return {
    kind: 'file-bytes',
    file: 'onnx/vision_model.onnx',
    fileIndex: 2,
    fileCount: 2,
    bytesTotal,
    bytesDone,
  };
}

function renderAll(isTty: boolean, bytesTotal: number, steps: number) {
  const writes: string[] = [];
  let now = 0;
  const render = createProgressRenderer({ write: (text) => writes.push(text), isTty, nowMs: () => now });
  const base = { file: 'onnx/vision_model.onnx', fileIndex: 2, fileCount: 2, bytesTotal };
  render({ ...base, kind: 'file-start', resumeFromBytes: 0 });
  for (let step = 1; step <= steps; step += 1) {
    now += 10;
    render(bytesEvent(Math.round((bytesTotal * step) / steps), bytesTotal));
  }
  render({ ...base, kind: 'file-done', outcome: 'downloaded' });
  return writes;
}

describe('createProgressRenderer', () => {
  it('redraws one terminal line with carriage returns, at most once per redraw interval', () => {
    const writes = renderAll(true, 100_000_000, 1000);
    // 1000 events 10 ms apart over 10 s, redrawn every 100 ms, plus the final line.
    expect(writes.length).toBe(101);
    expect(writes.every((text) => text.startsWith('\r') && text.includes('\x1b[K'))).toBe(true);
    expect(writes.at(-1)).toBe('\r[2/2] onnx/vision_model.onnx  100.0 MB  done in 10s (10.0 MB/s)\x1b[K\n');
  });

  it('writes a few whole lines without carriage returns when stderr is not a terminal', () => {
    const writes = renderAll(false, 100_000_000, 1000);
    expect(writes.join('')).not.toContain('\r');
    expect(writes.map((text) => text.match(/\s(\d+)%/)?.[1] ?? 'done')).toEqual(['25', '50', '75', 'done']);
    expect(writes.every((text) => text.endsWith('\n'))).toBe(true);
  });

  it('gives a small file a single line in a log', () => {
    expect(renderAll(false, 4_000, 20)).toEqual([
      '[2/2] onnx/vision_model.onnx  4.0 kB  done in 0s (20.0 kB/s)\n',
    ]);
  });

  it('prints retries as whole lines in both modes', () => {
    for (const isTty of [true, false]) {
      const writes: string[] = [];
      const render = createProgressRenderer({ write: (text) => writes.push(text), isTty, nowMs: () => 0 });
      render({
        kind: 'retry',
        file: 'config.json',
        fileIndex: 1,
        fileCount: 7,
        bytesTotal: 10,
        attempt: 2,
        maxAttempts: 5,
        delayMs: 1500,
        reason: 'HTTP 503',
      });
      const text = writes.join('').replaceAll('\r', '').replaceAll('\x1b[K', '');
      expect(text).toBe('[1/7] config.json  HTTP 503; retrying in 1.5s (attempt 2/5)\n');
    }
  });

  it('cuts terminal lines to the terminal width so they never wrap', () => {
    const writes: string[] = [];
    const render = createProgressRenderer({ write: (text) => writes.push(text), isTty: true, columns: 30 });
    render(bytesEvent(50, 100));
    expect(writes[0]).toBe(`\r${'[2/2] onnx/vision_model.onnx   50%'.slice(0, 29)}\x1b[K`);
  });
});

describe('retry schedule', () => {
  const policy = { ...defaultRetryPolicy, baseDelayMs: 100, maxDelayMs: 1_000 };

  it('doubles the delay per failed attempt with half of it jittered, up to the cap', () => {
    const lowest = [1, 2, 3, 4, 5, 6].map((attempt) => retryDelayMs(attempt, policy, () => 0));
    const highest = [1, 2, 3, 4, 5, 6].map((attempt) => retryDelayMs(attempt, policy, () => 1));
    expect(lowest).toEqual([50, 100, 200, 400, 500, 500]);
    expect(highest).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it("waits for a server's longer Retry-After, but never past the cap", () => {
    expect(retryDelayMs(1, policy, () => 0, 700)).toBe(700);
    expect(retryDelayMs(1, policy, () => 0, 60_000)).toBe(1_000);
  });

  it('reads Retry-After as seconds or as an HTTP date, and ignores anything else', () => {
    const nowMs = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfterMs('3', nowMs)).toBe(3_000);
    expect(parseRetryAfterMs('Wed, 01 Jan 2025 00:00:10 GMT', nowMs)).toBe(10_000);
    expect(parseRetryAfterMs('soon', nowMs)).toBeUndefined();
    expect(parseRetryAfterMs(null, nowMs)).toBeUndefined();
  });
});

describe('hashFile', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clipmod-hash-'));
    await writeFile(join(dir, 'hello.txt'), 'hello\n');
    await writeFile(join(dir, 'empty'), '');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('computes the git blob id the hub lists for small files', async () => {
    expect(await hashFile(join(dir, 'hello.txt'), 'git-sha1')).toBe(
      'ce013625030ba8dba906f756967f9e9ca394464a',
    );
    expect(await hashFile(join(dir, 'empty'), 'git-sha1')).toBe('e69de29bb2d1d6434b8b29ae775ad8c2e48c5391');
  });

  it('computes the plain sha256 the hub lists for LFS files', async () => {
    expect(await hashFile(join(dir, 'hello.txt'), 'sha256')).toBe(
      '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
    );
  });
});

describe('modelFilesFor', () => {
  it('names the ONNX graphs of each variant the way Xenova repos do', () => {
    expect(modelFilesFor('fp32').slice(-2)).toEqual(['onnx/vision_model.onnx', 'onnx/text_model.onnx']);
    expect(modelFilesFor('fp16').slice(-2)).toEqual([
      'onnx/vision_model_fp16.onnx',
      'onnx/text_model_fp16.onnx',
    ]);
    expect(modelFilesFor('quantized')).toContain('onnx/text_model_quantized.onnx');
    expect(modelFilesFor('quantized')).toContain('tokenizer.json');
  });
});
