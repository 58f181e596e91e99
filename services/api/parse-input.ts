import type { z } from 'zod';
import { ClipmodError } from '../../shared/errors/index.ts';

/** A request body checked by a zod schema; a failure is a 400 naming the first bad field. */
export function parseOr400<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const unknownKeys = issue?.code === 'unrecognized_keys' ? issue.keys : [];
  const field = [...(issue?.path ?? []), ...unknownKeys].join('.') || 'body';
  throw new ClipmodError('bad_request', `${field}: ${issue?.message ?? 'invalid'}`, { details: { field } });
}
