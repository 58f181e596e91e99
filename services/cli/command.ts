import type { Readable, Writable } from 'node:stream';

/** The streams a command talks to; tests pass their own. */
export type CliIo = {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  env: Readonly<Record<string, string | undefined>>;
};

/**
 * One `clipmod` sub-command. `run` returns the exit code; it throws `UsageError` for bad usage
 * and `ClipmodError` for bad input (both become exit 2 with a one-line reason on stderr).
 */
export type CliCommand = {
  /** Words after `clipmod`, e.g. `['model', 'build']`. */
  path: readonly string[];
  summary: string;
  /** Full `--help` text: usage line, options, one example. */
  help: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
};

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
