import { isClipmodError } from '../../shared/errors/index.ts';

/** What a refused call threw: its ClipmodError code and details; fails when it resolved or threw anything else. */
export async function refusal(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isClipmodError(error)) throw new Error(`expected a ClipmodError, got ${String(error)}`);
  return { code: error.code, ...error.details };
}
