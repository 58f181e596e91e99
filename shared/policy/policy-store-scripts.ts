// The Lua scripts behind PolicyStore: each change (version number, live pointer, history entry, both
// audit streams, change message) is one atomic step. JSON is built in TypeScript and passed in whole;
// the scripts only splice a number into it (`{"version":N,` + the rest), because cjson would turn an
// empty array into an object on the way through. Every JSON argument is an object with at least one field.

const spliceVersion = `
local function withVersion(json, version)
  return '{"version":' .. (version or 'null') .. ',' .. string.sub(json, 2)
end
local function record(streams, audit, version)
  local entry = withVersion(audit, version)
  for _, key in ipairs(streams) do redis.call('XADD', key, '*', 'event', entry) end
end
`;

/**
 * KEYS: policy hash, history list, tenant index, tenant audit stream, policy audit stream.
 * ARGV: record JSON, summary JSON, expected live version ('' for none), '1' to make it live,
 * audit JSON, channel, change JSON, policy id. Returns {0, 0} when the live version is no longer the
 * expected one (the caller's diff is stale: it re-reads and retries), else {version, isCreated}.
 */
export const putScript = `${spliceVersion}
local live = redis.call('HGET', KEYS[1], 'live') or ''
if live ~= ARGV[3] then return {0, 0} end
local version = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'v:' .. version, ARGV[1])
redis.call('RPUSH', KEYS[2], withVersion(ARGV[2], version))
local created = 0
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'live', version)
  redis.call('SADD', KEYS[3], ARGV[8])
  if live == '' then created = 1 end
end
record({KEYS[4], KEYS[5]}, ARGV[5], version)
redis.call('PUBLISH', ARGV[6], withVersion(ARGV[7], version))
return {version, created}
`;

/**
 * KEYS: policy hash, tenant index, tenant audit stream, policy audit stream.
 * ARGV: policy id, audit JSON, channel, change JSON. Clears the shadow too. Returns the version that
 * was live, or nil when none was.
 */
export const deleteScript = `${spliceVersion}
local live = redis.call('HGET', KEYS[1], 'live')
if not live then return false end
redis.call('HDEL', KEYS[1], 'live', 'shadow')
redis.call('SREM', KEYS[2], ARGV[1])
record({KEYS[3], KEYS[4]}, ARGV[2], live)
redis.call('PUBLISH', ARGV[3], withVersion(ARGV[4], live))
return tonumber(live)
`;

/**
 * KEYS: policy hash, tenant audit stream, policy audit stream.
 * ARGV: version, audit JSON, channel, change JSON. Returns -1 when no version is live, -2 when the
 * version does not exist, else the previous shadow version (0 for none).
 */
export const setShadowScript = `${spliceVersion}
if not redis.call('HGET', KEYS[1], 'live') then return -1 end
if redis.call('HEXISTS', KEYS[1], 'v:' .. ARGV[1]) == 0 then return -2 end
local previous = redis.call('HGET', KEYS[1], 'shadow')
redis.call('HSET', KEYS[1], 'shadow', ARGV[1])
record({KEYS[2], KEYS[3]}, ARGV[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], withVersion(ARGV[4], ARGV[1]))
return tonumber(previous) or 0
`;

/** KEYS: policy hash, tenant audit stream, policy audit stream. ARGV: audit JSON, channel, change JSON. */
export const clearShadowScript = `${spliceVersion}
local previous = redis.call('HGET', KEYS[1], 'shadow')
if not previous then return false end
redis.call('HDEL', KEYS[1], 'shadow')
record({KEYS[2], KEYS[3]}, ARGV[1], previous)
redis.call('PUBLISH', ARGV[2], withVersion(ARGV[3], previous))
return tonumber(previous)
`;

/**
 * KEYS: policy hash. ARGV: version, or '' for the live one (then the shadow version comes along).
 * One round trip, and never a torn read. Returns {version, record JSON, shadow or ''} or nil.
 */
export const getScript = `
local version = ARGV[1]
local shadow = ''
if version == '' then
  local fields = redis.call('HMGET', KEYS[1], 'live', 'shadow')
  version = fields[1]
  if not version then return false end
  shadow = fields[2] or ''
end
local record = redis.call('HGET', KEYS[1], 'v:' .. version)
if not record then return false end
return {tonumber(version), record, shadow}
`;
