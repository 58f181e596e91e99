// Structured JSON logging (pino) for every process. Keys, secrets and credentials are redacted here,
// once, so no call site has to remember. Depends on nothing in the project.
import { pino } from 'pino';

export type Logger = pino.Logger;

/** Paths whose values never reach a log line. */
const redactPaths = [
  'authorization',
  'apiKey',
  'key',
  'secret',
  'token',
  'password',
  'adminKey',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  '*.authorization',
  '*.apiKey',
  '*.secret',
  '*.token',
  '*.password',
  'config.CLIPMOD_ADMIN_KEY',
  'config.CLIPMOD_WEBHOOK_SECRET_KEY',
  'config.HF_TOKEN',
  'config.REDIS_URL',
];

export type LoggerOptions = {
  level?: string;
  name?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read them back. */
  destination?: pino.DestinationStream;
};

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.name ?? 'clipmod' },
      redact: { paths: redactPaths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

/** Replace the password in a Redis/HTTP URL before it is logged or shown. */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  if (parsed.password) parsed.password = 'redacted';
  return parsed.toString();
}
