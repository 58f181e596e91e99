import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger/index.ts';
import { resolveModel } from '../../workers/inference/resolve-model.ts';
import { builtModel } from '../helpers/models.ts';

// Without MODEL_DIR, serve fetches the default model; offline it falls back to the built `color`
// model with a warning. The "hub" here is a closed loopback port: nothing leaves the machine.

const dirs: string[] = [];
const logger = createLogger({ level: 'silent' });
const unreachableHub = 'http://127.0.0.1:9';

function cacheDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'clipmod-models-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('resolveModel', () => {
  it('uses MODEL_DIR as given', async () => {
    expect(await resolveModel({ modelDir: '/models/clip', cacheDir: cacheDir(), logger })).toEqual({
      folder: '/models/clip',
    });
  });

  it('falls back to the built color model, with a warning, when the hub is unreachable', async () => {
    const cache = cacheDir();
    const resolved = await resolveModel({
      modelDir: undefined,
      cacheDir: cache,
      logger,
      hubEndpoint: unreachableHub,
    });
    expect(resolved.folder).toBe(join(cache, 'color'));
    expect(resolved.warning).toMatch(/color.*test model/);
    const again = await resolveModel({
      modelDir: undefined,
      cacheDir: cache,
      logger,
      hubEndpoint: unreachableHub,
    });
    expect(again.folder).toBe(resolved.folder);
  });

  it('keeps serving a model fetched earlier when the hub is down', async () => {
    const cache = cacheDir();
    cpSync(await builtModel('tiny'), join(cache, 'Xenova--clip-vit-base-patch32'), { recursive: true });
    const resolved = await resolveModel({
      modelDir: undefined,
      cacheDir: cache,
      logger,
      hubEndpoint: unreachableHub,
    });
    expect(resolved).toEqual({ folder: join(cache, 'Xenova--clip-vit-base-patch32') });
  });
});
