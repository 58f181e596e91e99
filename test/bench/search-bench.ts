// Section "search": exact brute-force search over 1 M retained embeddings of 512 dimensions (ViT-B/32's
// width) and the re-scoring throughput of retained embeddings against a policy. Memory: 1 M × 512 ×
// 4 bytes = 2 GB as float32, 0.5 GB as int8. The int8 variant scans quantised vectors and re-ranks its
// best 100 exactly in float32, so its top 10 matches the exact one on these vectors.

import { decideVerdict, validatePolicy } from '../../shared/policy/index.ts';
import { searchMatrix, TopK } from '../../shared/retention/index.ts';
import { policyTexts, preparePolicy, scorePolicy } from '../../workers/inference/policy-scoring.ts';
import type { SectionContext } from './bench-report.ts';
import { formatSummary, summarize } from './bench-stats.ts';
import { benchPolicy } from './service-section.ts';

const dim = 512;

function unitRows(rows: number, seed: number): Float32Array {
  const values = new Float32Array(rows * dim);
  let state = seed >>> 0;
  for (let index = 0; index < values.length; index += 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[index] = state / 2147483648 - 1;
  }
  for (let row = 0; row < rows; row += 1) {
    const vector = values.subarray(row * dim, (row + 1) * dim);
    let squares = 0;
    for (const value of vector) squares += value * value;
    const norm = Math.sqrt(squares);
    for (let index = 0; index < dim; index += 1) vector[index]! /= norm;
  }
  return values;
}

/** Values of a random unit vector in 512-d sit within ±0.125 almost surely: scale 8 uses int8's range. */
function quantize(matrix: Float32Array): Int8Array {
  const quantized = new Int8Array(matrix.length);
  for (let index = 0; index < matrix.length; index += 1)
    quantized[index] = Math.max(-127, Math.min(127, Math.round(matrix[index]! * 127 * 8)));
  return quantized;
}

function searchInt8(query: Float32Array, quantized: Int8Array, matrix: Float32Array, k: number): TopK {
  const q = quantize(query);
  const candidates = new TopK(k * 10);
  const rows = quantized.length / dim;
  for (let row = 0; row < rows; row += 1) {
    let sum = 0;
    const offset = row * dim;
    for (let index = 0; index < dim; index += 1) sum += q[index]! * quantized[offset + index]!;
    candidates.offer(String(row), sum);
  }
  const top = new TopK(k);
  for (const { id } of candidates.hits()) {
    const row = Number(id);
    searchMatrix(query, matrix.subarray(row * dim, (row + 1) * dim), () => id, top);
  }
  return top;
}

function time(run: () => void): number {
  const startedAt = performance.now();
  run();
  return performance.now() - startedAt;
}

export async function searchSection(context: SectionContext) {
  const { report, isQuick } = context;
  const rows = isQuick ? 100_000 : 1_000_000;
  const matrix = unitRows(rows, 1);
  const quantized = quantize(matrix);
  const queries = Array.from({ length: isQuick ? 2 : 5 }, (_, index) => unitRows(1, 100 + index));
  const ids = Array.from({ length: rows }, (_, row) => String(row));
  const exactMs = summarize(
    queries.map((query) => time(() => searchMatrix(query, matrix, (row) => ids[row]!, new TopK(10)))),
  );
  const int8Ms = summarize(queries.map((query) => time(() => searchInt8(query, quantized, matrix, 10))));
  const rescore = rescoreThroughput(isQuick ? 5_000 : 50_000);
  report.heading(`Search and re-scoring (${rows.toLocaleString('en')} × ${dim} embeddings, one thread)`);
  report.table(
    ['measure', 'value'],
    [
      ['exact float32 top-10 query (ms)', formatSummary(exactMs)],
      ['int8 scan + float32 re-rank of top 100 (ms)', formatSummary(int8Ms)],
      [
        'memory float32 / int8 (MB)',
        `${(matrix.byteLength / 2 ** 20).toFixed(0)} / ${(quantized.byteLength / 2 ** 20).toFixed(0)}`,
      ],
      ['re-scoring, text side only (embeddings/s)', rescore.toFixed(0)],
    ],
  );
  report.set('search_exact_ms', exactMs.median);
  report.set('search_int8_ms', int8Ms.median);
  report.set('rescore_per_second', rescore);
  return { exactMs, int8Ms, rescorePerSecond: rescore };
}

/** scorePolicy + decideVerdict per retained embedding against the benchmark policy (prompts pre-embedded). */
function rescoreThroughput(count: number): number {
  const document = validatePolicy(benchPolicy);
  const texts = policyTexts(document);
  const prepared = preparePolicy(document, unitRows(texts.length, 7), dim);
  const vectors = unitRows(count, 9);
  const ms = time(() => {
    for (let row = 0; row < count; row += 1) {
      const results = scorePolicy(prepared, vectors.subarray(row * dim, (row + 1) * dim), [0], 100);
      decideVerdict(document, results);
    }
  });
  return count / (ms / 1_000);
}
