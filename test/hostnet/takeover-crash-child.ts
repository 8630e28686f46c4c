/**
 * A process that runs the production takeover (ensureBridge with an intent record) in a test namespace and is
 * SIGKILLed by its own runner after the first `dieAfter` lines of the batch took effect: a crash between two
 * batch lines, as kill -9 or systemd's stop would leave it. Usage: node takeover-crash-child.js NETNS STATE_DIR N
 */
import type { IpCommand } from '../../src/hostnet/batch.js';
import { ensureBridge } from '../../src/hostnet/bridge.js';
import { IpRunner } from '../../src/hostnet/ip-runner.js';

class DyingIpRunner extends IpRunner {
  constructor(
    netns: string,
    private readonly dieAfter: number,
  ) {
    super({ netns });
  }

  override async batch(commands: readonly IpCommand[], options: { force?: boolean } = {}): Promise<void> {
    if (options.force === true) return super.batch(commands, options);
    await super.batch(commands.slice(0, this.dieAfter));
    process.kill(process.pid, 'SIGKILL');
    await new Promise(() => undefined);
  }
}

const [netns, stateDir, n] = process.argv.slice(2);
if (netns === undefined || stateDir === undefined || n === undefined) throw new Error('usage: NETNS STATE_DIR N');
await ensureBridge(new DyingIpRunner(netns, Number(n)), { bridge: 'br0', parent: 'eth0', intentDir: stateDir });
