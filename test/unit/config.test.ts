import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';

describe('loadConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(8080);
    expect(config.CLIPMOD_REDIS_PREFIX).toBe('{clipmod}');
    expect(config.CLIPMOD_ALLOW_PRIVATE_NETWORKS).toEqual([]);
    expect(config.REDIS_URL).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names every bad variable in one error', () => {
    let caught: unknown;
    try {
      loadConfig({ REDIS_URL: 'not-a-url', PORT: '-5', LOG_LEVEL: 'loud' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ClipmodError);
    const message = (caught as ClipmodError).message;
    expect(message).toContain('REDIS_URL');
    expect(message).toContain('PORT');
    expect(message).toContain('LOG_LEVEL');
    expect((caught as ClipmodError).details.settings).toEqual(
      expect.arrayContaining(['REDIS_URL', 'PORT', 'LOG_LEVEL']),
    );
  });

  it('parses CIDR lists and refuses a prefix without a hash tag', () => {
    const config = loadConfig({ CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8, ::1/128' });
    expect(config.CLIPMOD_ALLOW_PRIVATE_NETWORKS).toEqual(['127.0.0.0/8', '::1/128']);
    expect(() => loadConfig({ CLIPMOD_REDIS_PREFIX: 'clipmod' })).toThrow(/hash-tag/);
    expect(() => loadConfig({ CLIPMOD_ALLOW_PRIVATE_NETWORKS: 'everything' })).toThrow(/CIDR/);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '', MODEL_DIR: '' }).PORT).toBe(8080);
  });

  it('parses boolean flags strictly', () => {
    expect(loadConfig({ CLIPMOD_REQUIRE_AOF: 'true' }).CLIPMOD_REQUIRE_AOF).toBe(true);
    expect(() => loadConfig({ CLIPMOD_REQUIRE_AOF: 'maybe' })).toThrow(/CLIPMOD_REQUIRE_AOF/);
  });
});

describe('.env.example', () => {
  it('documents every setting of the schema, each with a comment, and nothing else', async () => {
    const { readFileSync } = await import('node:fs');
    const { configSchema } = await import('../../shared/config/config-schema.ts');
    const lines = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8').split('\n');
    const documented = lines.flatMap((line, i) => {
      const match = /^([A-Z_]+)=/.exec(line);
      return match ? [{ name: match[1], hasComment: (lines[i - 1] ?? '').startsWith('#') }] : [];
    });
    expect(documented.map((d) => d.name).sort()).toEqual(Object.keys(configSchema.shape).sort());
    expect(documented.filter((d) => !d.hasComment)).toEqual([]);
  });
});
