// Settings for every clipmod process: parsed once from the environment into a frozen, typed object.
// Only main.ts files call loadConfig(process.env); everything else receives the values it needs.
// Depends on nothing in the project but shared/errors.
import { ClipmodError } from '../errors/index.ts';
import { type Config, configSchema } from './config-schema.ts';

export type { Config } from './config-schema.ts';

/** Parse the environment; every bad variable is named in one `invalid_config` error. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const present = Object.fromEntries(
    Object.keys(configSchema.shape).flatMap((name) => {
      const value = env[name];
      return value === undefined || value === '' ? [] : [[name, value]];
    }),
  );
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = issue.path.join('.');
      return `${name}=${JSON.stringify(env[name] ?? '')}: ${issue.message}`;
    });
    throw new ClipmodError('invalid_config', `invalid settings: ${problems.join('; ')}`, {
      details: { settings: parsed.error.issues.map((issue) => issue.path.join('.')) },
    });
  }
  if (parsed.data.CLIPMOD_FAULT_INJECTION && env.NODE_ENV === 'production') {
    // Crash points exist for the reliability suite; a production process must not even carry them.
    throw new ClipmodError(
      'invalid_config',
      'CLIPMOD_FAULT_INJECTION is not allowed with NODE_ENV=production',
      {
        details: { settings: ['CLIPMOD_FAULT_INJECTION'] },
      },
    );
  }
  return Object.freeze(parsed.data);
}
