import { pathToFileURL } from 'node:url';
import { exitCodeFor, isClipmodError } from '../../shared/errors/index.ts';
import { type CliCommand, type CliIo, UsageError } from './command.ts';
import { commands } from './commands.ts';

const topHelp = () =>
  [
    'clipmod — self-hosted image moderation on CLIP',
    '',
    'Usage: clipmod <command> [options]    (from a checkout: npm run -s clipmod -- <command>)',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.path.join(' ').padEnd(24)} ${c.summary}`),
    '',
    'Run `clipmod <command> --help` for a command. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or input.',
  ].join('\n');

/** Longest command path matching the first words of argv. */
function findCommand(argv: readonly string[]): { command: CliCommand; rest: string[] } | undefined {
  const matches = commands.filter((c) => c.path.every((word, i) => argv[i] === word));
  const best = matches.sort((a, b) => b.path.length - a.path.length)[0];
  return best ? { command: best, rest: argv.slice(best.path.length) } : undefined;
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout.write(`${topHelp()}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const group = commands.filter((c) => c.path.length > 1 && c.path[0] === argv[0]);
    const reason =
      group.length > 0
        ? `clipmod ${argv[0]}: expected one of ${group.map((c) => c.path.slice(1).join(' ')).join(', ')}`
        : `clipmod: unknown command "${argv[0]}"`;
    io.stderr.write(`${reason} (see clipmod --help)\n`);
    return 2;
  }
  const { command, rest } = found;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`${command.help.trimEnd()}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    const name = `clipmod ${command.path.join(' ')}`;
    if (error instanceof UsageError) {
      io.stderr.write(`${name}: ${error.message} (see ${name} --help)\n`);
      return 2;
    }
    const message = isClipmodError(error) ? `${error.code}: ${error.message}` : String(error);
    io.stderr.write(`${name}: ${message.split('\n')[0]}\n`);
    return exitCodeFor(error);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const io: CliIo = {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  };
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`clipmod: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
