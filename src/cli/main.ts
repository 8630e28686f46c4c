#!/usr/bin/env node
import { CommanderError } from 'commander';
import { failureContext } from './common.js';
import { describeFailure } from './errors.js';
import { buildProgram } from './program.js';

/** The `flatnet` command. Every failure ends as one line `flatnet: <message>` on stderr and exit 1 or 2. */
async function main(argv: string[]): Promise<void> {
  // Node deprecation notices (grpc's TLS ServerName set to an IP, ...) are for developers, not operators
  process.noDeprecation = true;
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    // --help, --version and a group called without a subcommand end here too, already printed
    if (
      err instanceof CommanderError &&
      ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code)
    ) {
      process.exitCode = err.code === 'commander.help' ? 2 : 0;
      return;
    }
    const failure = describeFailure(err, failureContext);
    process.stderr.write(`flatnet: ${failure.message}\n`);
    process.exitCode = failure.exitCode;
  }
}

void main(process.argv);
