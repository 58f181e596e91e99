// Test-only crash points for the reliability suite (test/chaos). A crash happens only when BOTH the
// process runs with CLIPMOD_FAULT_INJECTION=1 (which loadConfig refuses under NODE_ENV=production)
// AND the submission's metadata names the crash point under `clipmod-fault`: one switch is a
// deployment decision, the other a per-request opt-in, so a customer alone can never trigger it.

/** Where a process may be made to die. */
export type FaultPoint =
  /** The inference worker, after taking a moderation job (a native decoder crash stand-in). */
  | 'inference-crash'
  /**
   * The webhook worker, after the receiver answered 2xx and before anything recorded it: the widest
   * at-least-once window (RELIABILITY.md Q2). Fires on a delivery job's first start only.
   */
  | 'webhook-sent-crash'
  /**
   * The webhook worker, after the delivery log recorded the 2xx and before BullMQ acknowledged the
   * job. Fires on a delivery job's first start only.
   */
  | 'webhook-ack-crash';

/** The metadata key a submission uses to ask for a crash. */
export const faultMetadataKey = 'clipmod-fault';

export type FaultInjector = {
  /** False in every real deployment: callers skip the work of finding the metadata. */
  readonly isEnabled: boolean;
  /** Kills this process with SIGKILL (no cleanup, as a native crash) when the metadata asks for `point`. */
  crashIfRequested(metadata: unknown, point: FaultPoint): void;
};

export function createFaultInjector(isEnabled: boolean): FaultInjector {
  return {
    isEnabled,
    crashIfRequested(metadata, point) {
      if (!isEnabled || typeof metadata !== 'object' || metadata === null) return;
      if ((metadata as Record<string, unknown>)[faultMetadataKey] !== point) return;
      process.kill(process.pid, 'SIGKILL');
    },
  };
}
