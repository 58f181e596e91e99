import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sniffImageFormat } from '../../shared/clip/index.ts';
import type { ServiceHarness } from '../helpers/service-harness.ts';
import { isFullSize } from './chaos-deployment.ts';
import { isAcceptableOutcome, moderateImage, startImageService } from './hostile-image-service.ts';
import { corpusKey, loadImageCorpora } from './image-corpora.ts';

// RELIABILITY.md I1: every file of the Debian malformed-image corpora through the real service. Each
// ends in a verdict or a typed 4xx within 10 s, only allowed formats are ever scored, and the outcome
// per file matches the committed golden (CLIPMOD_UPDATE_GOLDEN=1 rewrites it after a deliberate
// change). CI sweeps every fourth file; `npm run test:chaos` sweeps them all.

const goldenPath = fileURLToPath(new URL('./image-corpora-golden.json', import.meta.url));
const shouldUpdateGolden = process.env.CLIPMOD_UPDATE_GOLDEN === '1';
const allowedFormats = ['jpeg', 'png', 'webp', 'gif'];

const corpus = loadImageCorpora();
if ('skipped' in corpus) process.stderr.write(`[chaos] I1 skipped: ${corpus.skipped}\n`);

let service: ServiceHarness;

beforeAll(async () => {
  if (!('skipped' in corpus)) service = await startImageService();
});

afterAll(async () => {
  await service?.stop();
});

describe.skipIf('skipped' in corpus)('I1: Debian malformed-image corpora', () => {
  it('answers every file with a verdict or a typed error, as the golden file records', async () => {
    if ('skipped' in corpus) return;
    const files =
      shouldUpdateGolden || isFullSize ? corpus.files : corpus.files.filter((_, i) => i % 4 === 0);
    const outcomes: Record<string, string> = {};
    let maxMs = 0;
    for (const path of files) {
      const bytes = new Uint8Array(readFileSync(path));
      const key = corpusKey(corpus.root, path);
      const result = await moderateImage(service, bytes);
      expect(isAcceptableOutcome(result), `${key}: ${result.status} ${JSON.stringify(result.body)}`).toBe(
        true,
      );
      expect(result.ms, key).toBeLessThan(10_000);
      if (!result.outcome.startsWith('error:'))
        expect(allowedFormats, key).toContain(sniffImageFormat(bytes));
      outcomes[key] = result.outcome;
      maxMs = Math.max(maxMs, result.ms);
    }
    if (shouldUpdateGolden) writeFileSync(goldenPath, `${JSON.stringify(outcomes, null, 2)}\n`);
    const golden = JSON.parse(readFileSync(goldenPath, 'utf8')) as Record<string, string>;
    const compared = Object.keys(outcomes).filter((key) => key in golden);
    const mismatches = compared.filter((key) => golden[key] !== outcomes[key]);
    expect(mismatches.map((key) => `${key}: ${golden[key]} → ${outcomes[key]}`)).toEqual([]);
    // A different package version may rename files; most of the sweep must still be checked.
    expect(compared.length).toBeGreaterThanOrEqual(Math.floor(files.length * 0.9));
    const tally: Record<string, number> = {};
    for (const outcome of Object.values(outcomes)) tally[outcome] = (tally[outcome] ?? 0) + 1;
    process.stderr.write(
      `[chaos] I1 ${JSON.stringify({ files: files.length, maxMs: Math.round(maxMs), tally })}\n`,
    );
  }, 300_000);
});
