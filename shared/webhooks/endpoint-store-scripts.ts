import { appendAuditLua } from '../audit/index.ts';

// The Lua scripts behind WebhookEndpointStore's writes. An admin change and its admin audit event are
// one atomic step: their KEYS end with the audit streams (none when nothing is audited).

/**
 * Compare-and-set: an admin change applies only to the record and enabled state it read, so concurrent
 * edits never mix and the audit event's `from` values are exactly what was replaced.
 * KEYS: record, state, audit streams…
 * ARGV: record as read, new record, '1' if it was disabled else '0', enabled target ('1', '0', or '' to
 * keep), '1' to forget the old URL's failures and block flag, now (ISO), audit entry ('' for none).
 * Enabling forgets the whole state (failure streak too); disabling keeps an earlier reason.
 */
export const modifyScript = `${appendAuditLua}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tostring(redis.call('HEXISTS', KEYS[2], 'disabledAt')) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[2])
elseif ARGV[5] == '1' then
  redis.call('HDEL', KEYS[2], 'failingSince', 'lastFailureAt', 'lastErrorClass', 'blockedAt')
end
if ARGV[4] == '0' and redis.call('HSETNX', KEYS[2], 'disabledAt', ARGV[6]) == 1 then
  redis.call('HSET', KEYS[2], 'disabledReason', 'manual')
end
if ARGV[7] ~= '' then appendAudit(3, ARGV[7]) end
return 1`;

/**
 * KEYS: record, state, tenant index, audit streams…; ARGV: id, audit entry. Of two concurrent deletions
 * only one finds the record, so one event is written.
 */
export const removeScript = `${appendAuditLua}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
appendAudit(4, ARGV[2])
return 1`;

/** Disabling is a transition: only the first caller gets 1 (and sends the endpoint.disabled event). */
export const disableOnceScript = `
if redis.call('HSETNX', KEYS[1], 'disabledAt', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'disabledReason', ARGV[2])
return 1`;
