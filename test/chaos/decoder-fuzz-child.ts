// RELIABILITY.md I8, the child side: mutates valid seed images and runs each mutant through the
// production decode path (probe, frame sampling, preprocess), so a native crash in libvips kills this
// process rather than the test runner. Prints one JSON summary line; mutants whose outcome is not a
// typed error or a tensor, or that take over 5 s, are saved under .cache/fuzz-findings/.
// Usage: node --import tsx test/chaos/decoder-fuzz-child.ts <mutants> <seed> <time budget ms>
import { mkdirSync, writeFileSync } from 'node:fs';
import { configureImageDecoding, preprocessFrames } from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { animation, jpegWithOrientation } from '../helpers/images.ts';
import { redVariants, seedImages } from './hostile-image-inputs.ts';

const [mutantCount = 400, prngSeed = 1, budgetMs = 60_000] = process.argv.slice(2).map(Number);
const findingsDir = new URL('../../.cache/fuzz-findings/', import.meta.url).pathname;

/** mulberry32: a seeded PRNG, so a finding can be replayed from the seed and index. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const interesting = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];

/** One to eight edits: bit flips, interesting bytes, big 32-bit values, cuts, inserts, duplications. */
function mutate(seed: Uint8Array, random: () => number): Uint8Array {
  let bytes = Uint8Array.from(seed);
  const at = () => Math.floor(random() * bytes.length);
  const edits = 1 + Math.floor(random() * 8);
  for (let edit = 0; edit < edits && bytes.length > 0; edit++) {
    const kind = Math.floor(random() * 6);
    const offset = at();
    if (kind === 0) bytes[offset] = bytes[offset]! ^ (1 << Math.floor(random() * 8));
    else if (kind === 1) bytes[offset] = interesting[Math.floor(random() * interesting.length)]!;
    else if (kind === 2) bytes.set([0x7f, 0xff, 0xff, 0xff].slice(0, bytes.length - offset), offset);
    else if (kind === 3) bytes = bytes.slice(0, Math.max(1, offset));
    else if (kind === 4) {
      const noise = Uint8Array.from({ length: 1 + Math.floor(random() * 16) }, () =>
        Math.floor(random() * 256),
      );
      bytes = Uint8Array.from([...bytes.subarray(0, offset), ...noise, ...bytes.subarray(offset)]);
    } else {
      const end = Math.min(bytes.length, offset + 1 + Math.floor(random() * 64));
      bytes = Uint8Array.from([
        ...bytes.subarray(0, end),
        ...bytes.subarray(offset, end),
        ...bytes.subarray(end),
      ]);
    }
  }
  return bytes;
}

async function seeds(): Promise<Uint8Array[]> {
  const stills = Object.values(await seedImages());
  const colour = Object.values(await redVariants());
  const animated = [
    await animation('gif', [
      [230, 20, 20],
      [20, 200, 30],
      [20, 30, 200],
    ]),
    await animation('webp', [
      [230, 20, 20],
      [20, 200, 30],
      [20, 30, 200],
    ]),
  ];
  return [...stills, ...colour, ...animated, await jpegWithOrientation(6)];
}

async function decodeOutcome(bytes: Uint8Array): Promise<string> {
  try {
    await preprocessFrames(bytes);
    return 'ok';
  } catch (error) {
    return error instanceof ClipmodError ? error.code : `untyped:${(error as Error).message?.slice(0, 120)}`;
  }
}

async function main(): Promise<void> {
  configureImageDecoding();
  const random = prng(prngSeed);
  const pool = await seeds();
  const startedAt = performance.now();
  const rssStartMb = process.memoryUsage().rss / 2 ** 20;
  const outcomes: Record<string, number> = {};
  const findings: string[] = [];
  let rssMaxMb = rssStartMb;
  let maxMs = 0;
  let done = 0;
  for (; done < mutantCount && performance.now() - startedAt < budgetMs; done++) {
    const mutant = mutate(pool[done % pool.length]!, random);
    const decodeStart = performance.now();
    const outcome = await decodeOutcome(mutant);
    const ms = performance.now() - decodeStart;
    maxMs = Math.max(maxMs, ms);
    rssMaxMb = Math.max(rssMaxMb, process.memoryUsage().rss / 2 ** 20);
    const kind = outcome.startsWith('untyped:') ? 'untyped' : outcome;
    outcomes[kind] = (outcomes[kind] ?? 0) + 1;
    if (kind === 'untyped' || ms > 5_000) {
      mkdirSync(findingsDir, { recursive: true });
      writeFileSync(`${findingsDir}seed${prngSeed}-${done}.bin`, mutant);
      findings.push(`${done}: ${outcome} (${Math.round(ms)} ms)`);
    }
  }
  const rssEndMb = process.memoryUsage().rss / 2 ** 20;
  const summary = { done, outcomes, findings, maxMs, rssStartMb, rssEndMb, rssMaxMb };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

await main();
