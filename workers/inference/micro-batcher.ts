// Dynamic batching for one model: items submitted one by one (one per BullMQ job) run in batches of
// one model call each. While a batch runs, new items wait; when it ends, the waiting items (up to
// maxBatchSize) run at once — they have already waited a whole batch, and an idle model is wasted.
// When the model is idle, a partial batch runs once its first item has waited maxWaitMs (or as soon
// as it is full), as in Triton's dynamic batcher with a maximum queue delay.

export type MicroBatcherOptions<TItem, TResult> = {
  maxBatchSize: number;
  maxWaitMs: number;
  /** One model call for the whole batch; results in item order. */
  runBatch(items: TItem[]): Promise<TResult[]>;
  /** Told about every batch run, for metrics. */
  onBatch?(size: number, durationMs: number): void;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
};

type Pending<TItem, TResult> = { item: TItem; resolve(result: TResult): void; reject(error: unknown): void };

export class MicroBatcher<TItem, TResult> {
  readonly #options: Required<Omit<MicroBatcherOptions<TItem, TResult>, 'onBatch'>> &
    Pick<MicroBatcherOptions<TItem, TResult>, 'onBatch'>;
  #waiting: Pending<TItem, TResult>[] = [];
  #timer: unknown;
  #running = 0;
  #idle: (() => void)[] = [];

  constructor(options: MicroBatcherOptions<TItem, TResult>) {
    this.#options = {
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
      ...options,
    };
  }

  /** Items waiting or running. */
  get size(): number {
    return this.#waiting.length + this.#running;
  }

  submit(item: TItem): Promise<TResult> {
    return new Promise<TResult>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (this.#running > 0) return; // the end of the running batch dispatches
      if (this.#waiting.length >= this.#options.maxBatchSize) this.#dispatch();
      else if (this.#timer === undefined) {
        this.#timer = this.#options.setTimer(() => this.#dispatch(), this.#options.maxWaitMs);
      }
    });
  }

  /** Runs what is waiting now and resolves once nothing is waiting or running (SIGTERM drain). */
  drain(): Promise<void> {
    if (this.#running === 0 && this.#waiting.length > 0) this.#dispatch();
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #dispatch(): void {
    this.#options.clearTimer(this.#timer);
    this.#timer = undefined;
    if (this.#running > 0 || this.#waiting.length === 0) return;
    const batch = this.#waiting.splice(0, this.#options.maxBatchSize);
    this.#running = batch.length;
    void this.#run(batch).finally(() => {
      this.#running = 0;
      if (this.#waiting.length > 0) this.#dispatch();
      else for (const resolve of this.#idle.splice(0)) resolve();
    });
  }

  async #run(batch: Pending<TItem, TResult>[]): Promise<void> {
    const startedAt = performance.now();
    try {
      const results = await this.#options.runBatch(batch.map((p) => p.item));
      if (results.length !== batch.length)
        throw new Error(`batch returned ${results.length} of ${batch.length}`);
      for (const [i, pending] of batch.entries()) pending.resolve(results[i] as TResult);
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.#options.onBatch?.(batch.length, performance.now() - startedAt);
    }
  }
}
