import { calibrateCommand } from './calibrate-command.ts';
import { classifyCommand } from './classify-command.ts';
import type { CliCommand } from './command.ts';
import { modelBuildCommand } from './model-build-command.ts';
import { modelFetchCommand } from './model-fetch-command.ts';
import { policyInstallStarterCommand } from './policy-install-starter-command.ts';
import { preprocessCommand } from './preprocess-command.ts';
import { serveCommand } from './serve-command.ts';
import { tokenizeCommand } from './tokenize-command.ts';

/** Every `clipmod` command, in the order --help lists them. */
export const commands: readonly CliCommand[] = [
  serveCommand,
  classifyCommand,
  tokenizeCommand,
  preprocessCommand,
  modelBuildCommand,
  modelFetchCommand,
  policyInstallStarterCommand,
  calibrateCommand,
];
