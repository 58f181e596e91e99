import type { CliCommand } from './command.ts';
import { serveCommand } from './serve-command.ts';

/** Every `clipmod` command, in the order --help lists them. */
export const commands: readonly CliCommand[] = [serveCommand];
