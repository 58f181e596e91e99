// Process plumbing shared by every role: ordered start and time-boxed stop, readiness checks, and
// the probe server of worker-only processes. Depends on nothing in the project but shared/metrics types.

export {
  createFaultInjector,
  type FaultInjector,
  type FaultPoint,
  faultMetadataKey,
} from './fault-injection.ts';
export { createHttpServerComponent } from './http-server.ts';
export {
  type Component,
  Lifecycle,
  type LifecycleLogger,
  type StopReport,
  stopOnSignals,
} from './lifecycle.ts';
export { createProbeServer, type ProbeServerOptions } from './probe-server.ts';
export { evaluateReadiness, type ReadinessCheck, type ReadinessReport } from './readiness.ts';
