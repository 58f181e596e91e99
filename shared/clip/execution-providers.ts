import { ClipmodError } from '../errors/index.ts';
import {
  createOnnxSession,
  type ExecutionProviderName,
  type OnnxSession,
  type OnnxSessionOptions,
} from './onnx-runtime.ts';

export type { ExecutionProviderName } from './onnx-runtime.ts';

/** What an operator asks for; `auto` takes the fastest backend that actually starts. */
export type ExecutionProviderChoice = ExecutionProviderName | 'auto';

export const executionProviderChoices: readonly ExecutionProviderChoice[] = [
  'auto',
  'cpu',
  'cuda',
  'tensorrt',
];

/** One way to open a session: the provider we report, and the list onnxruntime gets (with fallbacks for unsupported nodes). */
export type ProviderAttempt = {
  provider: ExecutionProviderName;
  executionProviders: readonly ExecutionProviderName[];
};

/** The subset of a pino logger this module writes to. */
export type ProviderLogger = {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
};

export type SessionThreads = { intraOpThreads?: number; interOpThreads?: number; deviceId?: number };

/**
 * Orders the attempts for a choice, given the backends onnxruntime-node reports. An explicit GPU
 * choice that the build lacks is a configuration error: silently serving a GPU deployment on CPU
 * would hide a broken node behind a 20x slowdown.
 */
export function planExecutionProviders(
  choice: ExecutionProviderChoice,
  availableBackends: readonly string[],
): ProviderAttempt[] {
  const has = (name: ExecutionProviderName) => availableBackends.includes(name);
  const cpu: ProviderAttempt = { provider: 'cpu', executionProviders: ['cpu'] };
  const cuda: ProviderAttempt = { provider: 'cuda', executionProviders: ['cuda', 'cpu'] };
  // TensorRT cannot build engines for every op; CUDA then CPU take what it leaves.
  const tensorrt: ProviderAttempt = {
    provider: 'tensorrt',
    executionProviders: has('cuda') ? ['tensorrt', 'cuda', 'cpu'] : ['tensorrt', 'cpu'],
  };
  if (choice === 'cpu') return [cpu];
  if (choice !== 'auto') {
    if (!has(choice)) {
      throw new ClipmodError(
        'invalid_config',
        `execution provider '${choice}' is not available in this onnxruntime-node build (available: ${availableBackends.join(', ')})`,
      );
    }
    return [choice === 'cuda' ? cuda : tensorrt];
  }
  const gpu = [tensorrt, cuda].filter((attempt) => has(attempt.provider));
  return [...gpu, cpu];
}

/**
 * Opens a session with the first attempt that starts. onnxruntime-node lists cuda/tensorrt even
 * when their shared libraries are missing, so only a real session creation tells whether they work.
 */
export async function openSessionWithFallback(
  modelPath: string,
  attempts: readonly ProviderAttempt[],
  threads: SessionThreads,
  logger: ProviderLogger | undefined,
): Promise<{ session: OnnxSession; provider: ExecutionProviderName }> {
  let lastError: unknown;
  for (const attempt of attempts) {
    const options: OnnxSessionOptions = { ...threads, executionProviders: attempt.executionProviders };
    try {
      const session = await createOnnxSession(modelPath, options);
      return { session, provider: attempt.provider };
    } catch (error) {
      lastError = error;
      const reason = error instanceof Error ? error.message : String(error);
      logger?.warn({ provider: attempt.provider, modelPath, reason }, 'execution provider failed to start');
    }
  }
  throw lastError;
}
