import type { IpCommand } from '../../src/hostnet/batch.js';
import { type BatchOptions, IpBatchError, IpRunner } from '../../src/hostnet/ip-runner.js';

/**
 * An IpRunner whose next change batch stops after `failAfter` commands, the way `ip -batch` stops at a
 * refused line: those commands really take effect, then the batch fails with IpBatchError. Rollbacks (-force
 * batches) and everything after run as usual, so the production undo path is what gets tested.
 */
export class FailingIpRunner extends IpRunner {
  private armed = true;

  constructor(
    netns: string,
    private readonly failAfter: number,
  ) {
    super({ netns });
  }

  override async batch(commands: readonly IpCommand[], options: BatchOptions = {}): Promise<void> {
    if (!this.armed || options.force === true || commands.length <= this.failAfter)
      return super.batch(commands, options);
    this.armed = false;
    await super.batch(commands.slice(0, this.failAfter));
    throw new IpBatchError(
      this.failAfter,
      `RTNETLINK answers: injected failure\nCommand failed -:${this.failAfter + 1}\n`,
    );
  }
}
