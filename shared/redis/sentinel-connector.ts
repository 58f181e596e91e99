import { type SentinelConnectionOptions, SentinelConnector } from 'ioredis';

/** ioredis's CONNECTION_CLOSED_ERROR_MSG: what an interrupted connection attempt rejects with. */
const connectionClosedMessage = 'Connection is closed.';

type ConnectorInternals = { failoverDetector: { isDisconnected: boolean } | null };

/**
 * ioredis's SentinelConnector with one race closed (ioredis 5.9.2; RELIABILITY.md Q6).
 *
 * With `failoverDetector` on, each connection subscribes to the Sentinels' `+switch-master` and calls
 * this connector's disconnect() when it arrives, so that a connection still open to a demoted primary
 * is dropped. When the primary was killed instead, every connection is already reconnecting; a
 * disconnect() that lands while an attempt is asking the Sentinels for the primary makes that attempt
 * reject with "Connection is closed.", and ioredis then parks the client in its terminal `end` state:
 * it never reconnects and every command fails. Measured on loopback: after one kill -9 of the primary,
 * 38 of 40 connections ended so; the API refused every submission and the workers took no job until
 * restarted. Here an attempt interrupted by the detector starts over (the Sentinels now name the new
 * primary); a disconnect() from the client itself (close, quit) still ends it.
 *
 * The Connector option is copied by `duplicate()`, so BullMQ's blocking connections get it too.
 */
export class FailoverSafeSentinelConnector extends SentinelConnector {
  #isInterruptedByDetector = false;

  /** ioredis constructs the `Connector` option's class with the client's options. */
  constructor(options: unknown) {
    super(options as SentinelConnectionOptions);
  }

  override disconnect(): void {
    const internals = this as unknown as ConnectorInternals;
    // FailoverDetector.disconnect() marks itself disconnected, then calls this; a client's own
    // disconnect() finds the detector still live (or none).
    const isFromDetector = internals.failoverDetector?.isDisconnected === true;
    super.disconnect();
    // super.disconnect() cleaned the detector up (which marks it disconnected too): forget it, so that
    // a later disconnect() is not mistaken for the detector's. A new one comes with the next connection.
    internals.failoverDetector = null;
    if (isFromDetector) this.#isInterruptedByDetector = true;
  }

  override async connect(
    ...args: Parameters<SentinelConnector['connect']>
  ): ReturnType<SentinelConnector['connect']> {
    this.#isInterruptedByDetector = false;
    for (;;) {
      try {
        return await super.connect(...args);
      } catch (error) {
        const isInterrupted =
          this.#isInterruptedByDetector && (error as Error).message === connectionClosedMessage;
        if (!isInterrupted) throw error;
        this.#isInterruptedByDetector = false;
      }
    }
  }
}
