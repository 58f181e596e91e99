import { ClipmodError } from '../errors/index.ts';

// REDIS_URL names the topology as well as the address, so one setting (one Secret in Kubernetes)
// covers the three deployments clipmod supports:
//   redis://[user:pass@]host:port[/db]                          standalone (rediss:// for TLS)
//   redis+cluster://[user:pass@]host:port,host:port             Redis Cluster seed nodes
//   redis+sentinel://[user:pass@]host:port,host:port/name[/db]  Sentinels and the primary's name
// `rediss+cluster://` and `rediss+sentinel://` add TLS. user/pass are the data nodes' credentials;
// `?sentinelPassword=…` (and `sentinelUsername`) authenticate to Sentinels that require it.

export type RedisEndpoint = { host: string; port: number };

export type RedisCredentials = { username?: string; password?: string };

export type RedisTarget =
  | { mode: 'standalone'; url: string }
  | ({ mode: 'cluster'; nodes: RedisEndpoint[]; tls: boolean } & RedisCredentials)
  | ({
      mode: 'sentinel';
      sentinels: RedisEndpoint[];
      masterName: string;
      db: number;
      tls: boolean;
      sentinelUsername?: string;
      sentinelPassword?: string;
    } & RedisCredentials);

export type RedisMode = RedisTarget['mode'];

/** The URL schemes REDIS_URL accepts; shared/config checks the scheme, this module the rest. */
export const redisUrlPattern = /^rediss?(\+(cluster|sentinel))?:\/\/[^/?#]+/;

const schemePattern = /^(rediss?)(?:\+(cluster|sentinel))?:\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/;

function invalid(message: string): ClipmodError {
  return new ClipmodError('invalid_config', `REDIS_URL: ${message}`);
}

/** `host:port` or `[v6]:port`; the port defaults to `defaultPort`. */
function parseEndpoint(text: string, defaultPort: number): RedisEndpoint {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(text);
  const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
  if (!match?.[1] || port < 1 || port > 65_535) throw invalid(`"${text}" is not host:port`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

function parseCredentials(userInfo: string | undefined): RedisCredentials {
  if (userInfo === undefined) return {};
  const colon = userInfo.indexOf(':');
  const username = decodeURIComponent(colon < 0 ? userInfo : userInfo.slice(0, colon));
  const password = colon < 0 ? '' : decodeURIComponent(userInfo.slice(colon + 1));
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** Parses REDIS_URL; a malformed value is an `invalid_config` error that says what was expected. */
export function parseRedisUrl(url: string): RedisTarget {
  const match = schemePattern.exec(url);
  if (!match) throw invalid('expected redis://, rediss://, redis+cluster:// or redis+sentinel://');
  const [, scheme, mode, authority = '', path = '', query = ''] = match;
  if (mode === undefined) return { mode: 'standalone', url };
  const at = authority.lastIndexOf('@');
  const credentials = parseCredentials(at < 0 ? undefined : authority.slice(0, at));
  const hosts = (at < 0 ? authority : authority.slice(at + 1)).split(',').filter(Boolean);
  if (hosts.length === 0) throw invalid('no host:port given');
  const tls = scheme === 'rediss';
  const segments = path.split('/').filter(Boolean);
  if (mode === 'cluster') {
    if (segments.length > 0) throw invalid('Redis Cluster has no database number or path');
    return { mode: 'cluster', nodes: hosts.map((host) => parseEndpoint(host, 6379)), tls, ...credentials };
  }
  const [masterName, db = '0', ...rest] = segments;
  if (!masterName || rest.length > 0 || !/^\d{1,2}$/.test(db)) {
    throw invalid('expected redis+sentinel://host:port,host:port/<primary name>[/<db>]');
  }
  const params = new URLSearchParams(query);
  const sentinelUsername = params.get('sentinelUsername');
  const sentinelPassword = params.get('sentinelPassword');
  return {
    mode: 'sentinel',
    sentinels: hosts.map((host) => parseEndpoint(host, 26379)),
    masterName: decodeURIComponent(masterName),
    db: Number(db),
    tls,
    ...credentials,
    ...(sentinelUsername ? { sentinelUsername } : {}),
    ...(sentinelPassword ? { sentinelPassword } : {}),
  };
}

/** REDIS_URL fit for logs: the password and any Sentinel password replaced, whatever the scheme. */
export function redactRedisUrl(url: string): string {
  const match = /^([a-z+]+:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!match) return '(unparseable REDIS_URL)';
  const [, scheme = '', authority = '', rest = ''] = match;
  const at = authority.lastIndexOf('@');
  const colon = authority.indexOf(':');
  const hidden =
    at >= 0 && colon >= 0 && colon < at
      ? `${authority.slice(0, colon)}:redacted${authority.slice(at)}`
      : authority;
  return `${scheme}${hidden}${rest.replace(/([?&]sentinelPassword=)[^&#]*/, '$1redacted')}`;
}
