// Audit logs in Redis streams: reading any of them newest first with a stream-id cursor (the policy log
// and the admin log alike), merging several into one view, and the per-tenant admin log of API keys,
// webhook endpoints and tenant settings that their stores append to. Depends on ioredis and
// shared/errors only: never on express, a service or another store.
export {
  type AdminAuditAction,
  type AdminAuditChange,
  type AdminAuditEvent,
  AdminAuditLog,
  type AdminAuditLogOptions,
  type AdminAuditResource,
  type AuditActor,
  adminAuditResources,
  appendAuditLua,
  type FieldChange,
  fieldChanges,
} from './admin-audit-log.ts';
export {
  type AuditPage,
  type AuditReadOptions,
  compareStreamIds,
  maxAuditPageSize,
  mergeAuditPages,
  readAuditStream,
} from './audit-stream.ts';
