import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IpCommand } from '../../src/hostnet/batch.js';
import { type BatchOptions, IpRunner } from '../../src/hostnet/ip-runner.js';
import { vethNames } from '../../src/hostnet/names.js';
import { EndpointVeths } from '../../src/netdriver/endpoint-veths.js';
import { silentLogger } from '../../src/observability/logger.js';
import { BackgroundWork } from '../../src/util/background-work.js';

/** Records each batch's first command's verb ("add" / "del" of a link) instead of running ip. */
class RecordingIpRunner extends IpRunner {
  readonly calls: string[] = [];
  failAdds = 0;

  override async batch(commands: readonly IpCommand[], _options: BatchOptions = {}): Promise<void> {
    const verb = commands[0]?.[1] ?? '?';
    this.calls.push(verb);
    if (verb === 'add' && this.failAdds > 0) {
      this.failAdds--;
      throw new Error('ip is away');
    }
  }
}

const ID = 'a'.repeat(64);
const spec = { names: vethNames(ID), bridge: 'br0', mtu: 1500, mac: '0a:66:0a:00:00:05' };

function setup(): { ip: RecordingIpRunner; work: BackgroundWork; veths: EndpointVeths } {
  const ip = new RecordingIpRunner();
  const work = new BackgroundWork(silentLogger());
  return { ip, work, veths: new EndpointVeths(ip, work, silentLogger()) };
}

test('a pair made ahead is what Join uses: one ip call for the whole CreateEndpoint + Join', async () => {
  const { ip, work, veths } = setup();
  veths.prepare(ID, spec);
  assert.deepEqual(ip.calls, [], 'nothing before the reply');
  await work.idle();
  await veths.ready(ID, spec);
  assert.deepEqual(ip.calls, ['add']);
});

test('a pair that could not be made ahead is made by Join, which reports its own failure', async () => {
  const { ip, work, veths } = setup();
  ip.failAdds = 2;
  veths.prepare(ID, spec);
  await work.idle();
  await assert.rejects(veths.ready(ID, spec), /ip is away/);
  await veths.ready(ID, spec);
  assert.deepEqual(ip.calls, ['add', 'add', 'add']);
});

test('Leave removes the pair after its reply, and the DeleteEndpoint after it removes nothing more', async () => {
  const { ip, work, veths } = setup();
  await veths.ready(ID, spec);
  veths.leave(ID);
  assert.deepEqual(ip.calls, ['add'], 'the removal waits for the reply');
  veths.deleted(ID);
  await work.idle();
  assert.deepEqual(ip.calls, ['add', 'del']);
});

test('DeleteEndpoint without a Leave seen (a restart between) removes the pair', async () => {
  const { ip, work, veths } = setup();
  veths.deleted(ID);
  await work.idle();
  assert.deepEqual(ip.calls, ['del']);
});

test('an endpoint left while its pair is still being made ahead: the pair is made, then removed', async () => {
  const { ip, work, veths } = setup();
  veths.prepare(ID, spec);
  veths.leave(ID);
  await work.idle();
  assert.deepEqual(ip.calls, ['add', 'del']);
});

test('a Join of an endpoint whose removal still runs waits for it, then makes the pair again', async () => {
  const { ip, work, veths } = setup();
  await veths.ready(ID, spec);
  veths.leave(ID);
  await veths.ready(ID, spec);
  await work.idle();
  assert.deepEqual(ip.calls, ['add', 'del', 'add']);
});
