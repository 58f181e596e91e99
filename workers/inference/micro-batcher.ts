// Collects items submitted one by one (one per BullMQ job) into batches for one model call each:
// a batch runs when it is full or when its first item has waited maxWaitMs. At most `maxInFlight`
// batches run at once, so while one runs on the model the next one fills.

export type MicroBatcherOptions<TItem, TResult> = {
  maxBatchSize: number;
  maxWaitMs: number;
  /** Batches allowed to run at once (1 for a single model session). */
  maxInFlight?: number;
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
  #open: Pending<TItem, TResult>[] = [];
  #ready: Pending<TItem, TResult>[][] = [];
  #timer: unknown;
  #inFlight = 0;
  #idle: (() => void)[] = [];

  constructor(options: MicroBatcherOptions<TItem, TResult>) {
    this.#options = {
      maxInFlight: 1,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
      ...options,
    };
  }

  /** Items waiting or running. */
  get size(): number {
    return this.#open.length + this.#ready.reduce((n, batch) => n + batch.length, 0) + this.#inFlight;
  }

  submit(item: TItem): Promise<TResult> {
    return new Promise<TResult>((resolve, reject) => {
      this.#open.push({ item, resolve, reject });
      if (this.#open.length >= this.#options.maxBatchSize) this.#close();
      else if (this.#open.length === 1)
        this.#timer = this.#options.setTimer(() => this.#close(), this.#options.maxWaitMs);
    });
  }

  /** Runs what is waiting now and resolves once nothing is waiting or running (SIGTERM drain). */
  drain(): Promise<void> {
    if (this.#open.length > 0) this.#close();
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #close(): void {
    this.#options.clearTimer(this.#timer);
    this.#timer = undefined;
    if (this.#open.length === 0) return;
    this.#ready.push(this.#open);
    this.#open = [];
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < this.#options.maxInFlight && this.#ready.length > 0) {
      const batch = this.#ready.shift()!;
      this.#inFlight += batch.length;
      void this.#run(batch).finally(() => {
        this.#inFlight -= batch.length;
        this.#pump();
        if (this.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
      });
    }
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
