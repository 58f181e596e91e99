// Moderation records, image bytes awaiting a worker, and idempotency keys — the state the API and the
// inference worker share through Redis. Depends on ioredis and zod only.
export {
  type LabelVerdict,
  type ModerationRecord,
  type ModerationStatus,
  metadataSchema,
  moderationStatuses,
  publicModeration,
  type Verdict,
} from './moderation-record.ts';
export { ModerationStore, type ModerationStoreOptions, newRequestId } from './moderation-store.ts';
