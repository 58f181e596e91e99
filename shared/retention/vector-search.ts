// Exact nearest neighbours by brute force: every candidate's dot product with the query (rows are unit
// vectors, so that is the cosine), keeping the best k in a small sorted array. O(n·d) time and O(k)
// extra memory; the candidates arrive in chunks, so a caller can stream them from Redis.

export type SearchHit = { id: string; score: number };

export class TopK {
  readonly #k: number;
  readonly #hits: SearchHit[] = [];

  constructor(k: number) {
    this.#k = k;
  }

  /** Considers one candidate; cheap when it cannot enter the current top k. */
  offer(id: string, score: number): void {
    const hits = this.#hits;
    if (hits.length === this.#k && score <= hits[hits.length - 1]!.score) return;
    let index = hits.length;
    while (index > 0 && hits[index - 1]!.score < score) index -= 1;
    hits.splice(index, 0, { id, score });
    if (hits.length > this.#k) hits.pop();
  }

  /** Best first. */
  hits(): SearchHit[] {
    return [...this.#hits];
  }
}

export function dot(a: Float32Array, b: Float32Array, offset = 0): number {
  let sum = 0;
  for (let index = 0; index < a.length; index += 1) sum += a[index]! * b[offset + index]!;
  return sum;
}

/**
 * Scores a [rows, dim] row-major matrix against the query into `top`; `idOf(row)` names each row.
 * Rows of another dimension cannot be in the same matrix, so a caller mixing models must split first.
 */
export function searchMatrix(
  query: Float32Array,
  matrix: Float32Array,
  idOf: (row: number) => string,
  top: TopK,
): void {
  const dim = query.length;
  const rows = Math.floor(matrix.length / dim);
  for (let row = 0; row < rows; row += 1) top.offer(idOf(row), dot(query, matrix, row * dim));
}
