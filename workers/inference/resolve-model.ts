import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel } from '../../shared/clip/model-build/index.ts';
import { defaultHubEndpoint, defaultModelRepo, fetchModel } from '../../shared/clip/model-fetch/index.ts';
import type { Logger } from '../../shared/logger/index.ts';

export type ResolvedModel = {
  folder: string;
  /** Set when serving a stand-in model: shown at start, in /readyz and in every verdict's model id. */
  warning?: string;
};

export type ResolveModelOptions = {
  modelDir: string | undefined;
  cacheDir: string;
  logger: Logger;
  hubEndpoint?: string;
  hubToken?: string;
};

const colorWarning =
  'serving the built "color" test model (no MODEL_DIR and the default model could not be downloaded): ' +
  'verdicts only reflect image colour; set MODEL_DIR or run `clipmod model fetch`';

/**
 * MODEL_DIR when set. Otherwise the default CLIP model from the hub (cached); where that is
 * impossible (offline), the built `color` model — loudly, never silently.
 */
export async function resolveModel(options: ResolveModelOptions): Promise<ResolvedModel> {
  if (options.modelDir) return { folder: options.modelDir };
  const fetched = join(options.cacheDir, defaultModelRepo.replace('/', '--'));
  try {
    options.logger.info(
      { repo: defaultModelRepo, folder: fetched },
      'MODEL_DIR unset: fetching the default model',
    );
    await fetchModel({
      repo: defaultModelRepo,
      revision: 'main',
      variant: 'fp32',
      outDir: fetched,
      endpoint: options.hubEndpoint ?? defaultHubEndpoint,
      token: options.hubToken,
      retry: { maxAttempts: 2, baseDelayMs: 500 },
    });
    return { folder: fetched };
  } catch (error) {
    if (existsSync(join(fetched, 'clipmod.json'))) {
      options.logger.warn(
        { err: error, folder: fetched },
        'hub unreachable: using the model fetched earlier',
      );
      return { folder: fetched };
    }
    options.logger.warn({ err: error }, 'default model unavailable');
  }
  const color = join(options.cacheDir, 'color');
  if (!existsSync(join(color, 'clipmod.json'))) await buildModel('color', color);
  options.logger.warn({ folder: color }, colorWarning);
  return { folder: color, warning: colorWarning };
}
