import type { PolicyAuditAction } from './policy-audit.ts';

// The policy change channel (Redis pub/sub): PolicyStore's scripts publish one message per change in
// the same atomic step as the change; workers listen to prepare new versions ahead (hot reload).
// Messages are hints, never the source of truth: a lost one only delays preparation to first use.

/** Published on `policyChangedChannel(prefix)` after every change, for hot reload. */
export type PolicyChangeMessage = {
  tenant: string;
  id: string;
  version: number;
  deleted: boolean;
  event: PolicyAuditAction;
};

export function policyChangedChannel(prefix: string): string {
  return `${prefix}:policy-changed`;
}

const changeEvents = new Set<string>([
  'put',
  'rollback',
  'candidate',
  'delete',
  'shadow-set',
  'shadow-clear',
] satisfies PolicyAuditAction[]);

/** Parses a message from the change channel; undefined for anything that is not one. */
export function parsePolicyChangeMessage(text: string): PolicyChangeMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { tenant, id, version, deleted, event } = value as Record<string, unknown>;
  if (typeof tenant !== 'string' || typeof id !== 'string' || !Number.isInteger(version)) return undefined;
  const known = typeof event === 'string' && changeEvents.has(event) ? (event as PolicyAuditAction) : 'put';
  return { tenant, id, version: version as number, deleted: deleted === true, event: known };
}

/** The message without its version, which the publishing script adds. */
export function changeJson(tenant: string, id: string, event: PolicyAuditAction): string {
  return JSON.stringify({ tenant, id, deleted: event === 'delete', event });
}
