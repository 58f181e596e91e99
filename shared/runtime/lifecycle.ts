// Ordered start, reverse-ordered time-boxed stop. Readiness goes false before anything stops, every
// component's stop is attempted even when an earlier one fails, and stop() is idempotent.

export type Component = {
  name: string;
  start(): Promise<void>;
  /** Must finish in-flight work; the lifecycle gives up on it after the deadline. */
  stop(): Promise<void>;
};

export type StopReport = { name: string; outcome: 'stopped' | 'failed' | 'timed-out'; error?: string };

export type LifecycleLogger = {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

export class Lifecycle {
  readonly #components: Component[] = [];
  readonly #started: Component[] = [];
  readonly #stopTimeoutMs: number;
  readonly #logger: LifecycleLogger;
  #isReady = false;
  #stopping: Promise<StopReport[]> | undefined;

  constructor(options: { stopTimeoutMs: number; logger: LifecycleLogger }) {
    this.#stopTimeoutMs = options.stopTimeoutMs;
    this.#logger = options.logger;
  }

  get isReady(): boolean {
    return this.#isReady;
  }

  get isStopping(): boolean {
    return this.#stopping !== undefined;
  }

  add(component: Component): this {
    this.#components.push(component);
    return this;
  }

  /** Start in order; if one fails, the ones already started are stopped and the error rethrown. */
  async start(): Promise<void> {
    for (const component of this.#components) {
      if (this.#stopping) return;
      // Pushed before start: a component that fails half-way (a connection opened, then a check
      // failed) is stopped too, so its stop() must cope with a partial start.
      this.#started.push(component);
      try {
        await component.start();
      } catch (error) {
        this.#logger.error({ component: component.name, err: error }, 'component failed to start');
        await this.stop();
        throw error;
      }
    }
    this.#isReady = true;
  }

  stop(): Promise<StopReport[]> {
    this.#stopping ??= this.#stopAll();
    return this.#stopping;
  }

  async #stopAll(): Promise<StopReport[]> {
    this.#isReady = false;
    const reports: StopReport[] = [];
    for (const component of [...this.#started].reverse()) {
      const report = await stopWithDeadline(component, this.#stopTimeoutMs);
      this.#logger.info({ component: report.name, outcome: report.outcome, error: report.error }, 'stopped');
      reports.push(report);
    }
    return reports;
  }
}

async function stopWithDeadline(component: Component, timeoutMs: number): Promise<StopReport> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timed-out'>((resolve) => {
    timer = setTimeout(() => resolve('timed-out'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([component.stop().then(() => 'stopped' as const), deadline]);
    return { name: component.name, outcome };
  } catch (error) {
    return {
      name: component.name,
      outcome: 'failed',
      error: error instanceof Error ? error.message : String(error),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * SIGTERM/SIGINT start one shutdown; a second signal is ignored (logged) so an impatient Ctrl-C
 * cannot cut a drain short. The process exits 0 when every component stopped, 1 otherwise.
 */
export function stopOnSignals(
  lifecycle: Lifecycle,
  logger: LifecycleLogger,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (lifecycle.isStopping) {
      logger.info({ signal }, 'shutdown already in progress; signal ignored');
      return;
    }
    logger.info({ signal }, 'shutting down');
    void lifecycle.stop().then((reports) => exit(reports.every((r) => r.outcome === 'stopped') ? 0 : 1));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
