import type { AuditPage } from '../audit/index.ts';
import type { PolicyChange } from './policy-diff.ts';

// The policy audit log: Redis streams (tenant-wide and per policy) that PolicyStore's scripts append to
// in the same atomic step as each change, and never trim. Reading them is shared/audit's
// readAuditStream; stream ids double as the page cursor.

export type PolicyAuditAction = 'put' | 'rollback' | 'candidate' | 'delete' | 'shadow-set' | 'shadow-clear';

export type PolicyAuditEvent = {
  /** The stream entry id (`<ms>-<seq>`): unique, ordered, and the cursor for the next page. */
  id: string;
  at: string;
  /** The API key id (or `cli:…`) that made the change. */
  actor: string;
  action: PolicyAuditAction;
  policy: string;
  /** The version written, deleted, shadowed or no longer shadowed. */
  version: number | null;
  basedOn?: number | null;
  rollbackOf?: number;
  diff?: PolicyChange[];
};

export type PolicyAuditPage = AuditPage<PolicyAuditEvent>;
