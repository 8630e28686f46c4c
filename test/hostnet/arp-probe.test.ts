import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ArpProber } from '../../src/hostnet/arp-probe.js';
import { execArgs } from '../../src/hostnet/exec.js';
import { missing } from '../harness/requirements.js';
import { type Lan, makeLan } from './lan-fixture.js';

const skip = missing('root', 'iproute2', 'arping');
let lan: Lan | undefined;

before(async () => {
  if (!skip) lan = await makeLan();
});
after(async () => {
  await lan?.remove();
});

/** Probes from inside the fixture's host namespace, as the server probes from its own. */
function proberIn(netns: string): ArpProber {
  return new ArpProber((file, args) => execArgs('nsenter', [`--net=/run/netns/${netns}`, file, ...args]));
}

test(
  'a machine that holds the address answers the probe with its MAC; a free address gets no answer',
  { skip },
  async () => {
    const l = lan as Lan;
    const routerMac = JSON.parse((await execArgs('ip', ['-n', l.router, '-j', 'link', 'show', 'lan0'])).stdout)[0]
      .address as string;
    const prober = proberIn(l.host);
    assert.deepEqual(await prober.probe('eth0', '10.77.0.1', { count: 1, waitSeconds: 1 }), {
      address: '10.77.0.1',
      answered: true,
      mac: routerMac,
    });
    assert.deepEqual(await prober.probe('eth0', '10.77.0.77', { count: 1, waitSeconds: 1 }), {
      address: '10.77.0.77',
      answered: false,
    });
  },
);

test('probing out of an interface that does not exist is an error, never "free"', { skip }, async () => {
  await assert.rejects(
    proberIn((lan as Lan).host).probe('nosuch0', '10.77.0.77', { count: 1, waitSeconds: 1 }),
    /could not probe|Could not run/,
  );
});
