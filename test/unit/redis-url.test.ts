import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import { isClipmodError } from '../../shared/errors/index.ts';
import { parseRedisUrl, redactRedisUrl } from '../../shared/redis/index.ts';

describe('parseRedisUrl', () => {
  it('passes a standalone URL to ioredis unchanged', () => {
    expect(parseRedisUrl('rediss://:secret@cache.internal:6380/2')).toEqual({
      mode: 'standalone',
      url: 'rediss://:secret@cache.internal:6380/2',
    });
  });

  it('reads Cluster seed nodes, credentials and TLS', () => {
    expect(parseRedisUrl('rediss+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002')).toEqual({
      mode: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
        { host: '::1', port: 7002 },
      ],
      tls: true,
      username: 'app',
      password: 'p@ss',
    });
  });

  it('reads Sentinels, the primary name, the database and the Sentinel password', () => {
    expect(parseRedisUrl('redis+sentinel://:pw@s1:26380,s2/mymaster/3?sentinelPassword=spw')).toEqual({
      mode: 'sentinel',
      sentinels: [
        { host: 's1', port: 26380 },
        { host: 's2', port: 26379 },
      ],
      masterName: 'mymaster',
      db: 3,
      tls: false,
      password: 'pw',
      sentinelPassword: 'spw',
    });
  });

  it.each([
    ['http://127.0.0.1:6379', /expected redis/],
    ['redis+sentinel://s1:26379', /primary name/],
    ['redis+cluster://h1:7000/0', /no database/],
    ['redis+cluster://h1:99999', /not host:port/],
    ['redis+sentinel://s1:26379/name/x', /primary name/],
  ])('refuses %s with a message saying what is expected', (url, message) => {
    let caught: unknown;
    try {
      parseRedisUrl(url);
    } catch (error) {
      caught = error;
    }
    expect(isClipmodError(caught) && caught.code === 'invalid_config').toBe(true);
    expect(String(caught)).toMatch(message);
  });
});

describe('redactRedisUrl', () => {
  it.each([
    ['redis://:hunter2@h:6379/0', 'redis://:redacted@h:6379/0'],
    ['redis+cluster://app:hunter2@h1:1,h2:2', 'redis+cluster://app:redacted@h1:1,h2:2'],
    [
      'redis+sentinel://:pw@s1,s2/m?sentinelPassword=hunter2',
      'redis+sentinel://:redacted@s1,s2/m?sentinelPassword=redacted',
    ],
    ['redis://h:6379', 'redis://h:6379'],
  ])('hides the passwords of %s', (url, expected) => {
    expect(redactRedisUrl(url)).toBe(expected);
  });
});

describe('REDIS_URL setting', () => {
  it('accepts the Cluster and Sentinel schemes and names the forms when a value is wrong', () => {
    expect(loadConfig({ REDIS_URL: 'redis+cluster://h1:7000,h2:7001' }).REDIS_URL).toBe(
      'redis+cluster://h1:7000,h2:7001',
    );
    expect(loadConfig({ REDIS_URL: 'rediss+sentinel://s1:26379/m' }).REDIS_URL).toBe(
      'rediss+sentinel://s1:26379/m',
    );
    expect(() => loadConfig({ REDIS_URL: 'redis+mongo://h:1' })).toThrow(
      /redis\+cluster:\/\/.*redis\+sentinel/,
    );
  });
});
