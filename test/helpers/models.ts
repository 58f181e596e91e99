// Built model folders for tests, cached under .cache/models/<kind>-<BUILD_VERSION> so each kind is
// built once per checkout. Test files run in parallel processes, so a build goes to a private temporary
// folder that is renamed into place: a reader sees either no folder or a complete one.
import { randomUUID } from 'node:crypto';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { BUILD_VERSION, type BuiltModelKind, buildModel } from '../../shared/clip/model-build/index.ts';

const modelsDir = fileURLToPath(new URL('../../.cache/models/', import.meta.url));

/** Returns the folder of a built model of `kind`, building it on first use. */
export async function builtModel(kind: BuiltModelKind): Promise<string> {
  const finalDir = `${modelsDir}${kind}-${BUILD_VERSION}`;
  if (await exists(finalDir)) return finalDir;
  await mkdir(modelsDir, { recursive: true });
  const temporaryDir = `${modelsDir}.building-${kind}-${process.pid}-${randomUUID()}`;
  try {
    await buildModel(kind, temporaryDir);
    await rename(temporaryDir, finalDir);
  } catch (error) {
    // Another test process finished the same build first: its folder is as good as ours.
    if (!(await exists(finalDir))) throw error;
  } finally {
    await rm(temporaryDir, { recursive: true, force: true });
  }
  return finalDir;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
