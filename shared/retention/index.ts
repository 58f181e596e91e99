// What clipmod builds on the embeddings it computes, beyond one verdict per image: opt-in retention of
// embeddings per tenant, the known-bad bank, exact vector search, and threshold calibration maths.
// Depends on ioredis, zod, shared/errors, shared/audit (settings changes are audited) and shared/policy's
// verdict type; never on the model or a service.
export {
  type CurvePoint,
  calibrateLabels,
  type LabelCalibration,
  type LabelledScores,
  precisionRecallCurve,
  proposeThreshold,
} from './calibration.ts';
export {
  type BankEntry,
  type BankEntryView,
  KnownBadBank,
  maxBankEntriesPerPolicy,
} from './known-bad-bank.ts';
export { type RetainedChunk, RetainedEmbeddings, type RetainedMeta } from './retained-embeddings.ts';
export {
  parseTenantSettings,
  type TenantSettings,
  TenantSettingsStore,
  tenantSettingsSchema,
} from './tenant-settings.ts';
export { dot, type SearchHit, searchMatrix, TopK } from './vector-search.ts';
export { isSameOutcome, summarizeVerdict, type VerdictSummary } from './verdict-summary.ts';
