import { describe, expect, it } from 'vitest';
import { MicroBatcher } from '../../workers/inference/micro-batcher.ts';

/** A manual clock: timers fire only when the test says so. */
function manualTimers() {
  const timers = new Map<number, () => void>();
  let next = 0;
  return {
    setTimer: (fn: () => void) => {
      timers.set(++next, fn);
      return next;
    },
    clearTimer: (handle: unknown) => {
      timers.delete(handle as number);
    },
    fireAll: () => {
      for (const [id, fn] of [...timers]) {
        timers.delete(id);
        fn();
      }
    },
    pending: () => timers.size,
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('MicroBatcher', () => {
  it('runs a full batch at once without waiting for the timer', async () => {
    const timers = manualTimers();
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>({
      maxBatchSize: 3,
      maxWaitMs: 1_000,
      ...timers,
      runBatch: async (items) => {
        batches.push(items);
        return items.map((x) => x * 10);
      },
    });
    const results = await Promise.all([1, 2, 3].map((x) => batcher.submit(x)));
    expect(results).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
    expect(timers.pending()).toBe(0);
  });

  it('flushes a partial batch when maxWaitMs elapses', async () => {
    const timers = manualTimers();
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>({
      maxBatchSize: 8,
      maxWaitMs: 5,
      ...timers,
      runBatch: async (items) => {
        batches.push(items);
        return items;
      },
    });
    const pending = [batcher.submit(1), batcher.submit(2)];
    await tick();
    expect(batches).toEqual([]);
    timers.fireAll();
    expect(await Promise.all(pending)).toEqual([1, 2]);
    expect(batches).toEqual([[1, 2]]);
  });

  it('gathers items while a batch runs and dispatches them together the moment it ends', async () => {
    const timers = manualTimers();
    let release: () => void = () => {};
    let running = 0;
    let maxRunning = 0;
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>({
      maxBatchSize: 4,
      maxWaitMs: 1_000,
      ...timers,
      runBatch: async (items) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        batches.push(items);
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        running -= 1;
        return items;
      },
    });
    const first = [1, 2, 3, 4].map((x) => batcher.submit(x));
    await tick();
    expect(batches).toEqual([[1, 2, 3, 4]]);
    const later = [5, 6, 7, 8, 9, 10].map((x) => batcher.submit(x));
    expect(timers.pending()).toBe(0); // no timer while the model is busy
    release();
    await tick();
    await tick();
    expect(batches).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    release();
    await tick();
    await tick();
    expect(batches.at(-1)).toEqual([9, 10]);
    release();
    expect(await Promise.all([...first, ...later])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(maxRunning).toBe(1);
  });

  it('rejects every item of a failed batch and keeps serving later ones', async () => {
    let shouldFail = true;
    const batcher = new MicroBatcher<number, number>({
      maxBatchSize: 2,
      maxWaitMs: 1,
      runBatch: async (items) => {
        if (shouldFail) throw new Error('onnx failed');
        return items;
      },
    });
    const failed = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    shouldFail = false;
    expect(await batcher.submit(3)).toBe(3);
  });

  it('drain() runs waiting items immediately and resolves when idle', async () => {
    const timers = manualTimers();
    const sizes: number[] = [];
    const batcher = new MicroBatcher<number, number>({
      maxBatchSize: 16,
      maxWaitMs: 60_000,
      ...timers,
      runBatch: async (items) => items,
      onBatch: (size) => sizes.push(size),
    });
    const pending = [batcher.submit(1), batcher.submit(2), batcher.submit(3)];
    await batcher.drain();
    expect(await Promise.all(pending)).toEqual([1, 2, 3]);
    expect(sizes).toEqual([3]);
    expect(batcher.size).toBe(0);
  });
});
