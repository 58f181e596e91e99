// Moderation records, image bytes awaiting a worker, and idempotency keys — the state the API and the
// inference worker share through Redis. Depends on ioredis, zod and shared/policy's verdict type.
export {
  type ModerationRecord,
  type ModerationStatus,
  metadataSchema,
  moderationStatuses,
  publicModeration,
} from './moderation-record.ts';
export { ModerationStore, type ModerationStoreOptions, newRequestId } from './moderation-store.ts';
