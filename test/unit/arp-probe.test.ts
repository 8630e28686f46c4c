import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answeringMac, ArpProber, probeArgs } from '../../src/hostnet/arp-probe.js';

const REPLY =
  'ARPING 10.77.0.5 from 0.0.0.0 br9\nUnicast reply from 10.77.0.5 [6A:BB:9A:8B:FA:2E]  0.743ms\nSent 1 probes (1 broadcast(s))\nReceived 1 response(s)\n';

test('the answering MAC is read from the reply line for that address only', () => {
  assert.equal(answeringMac(REPLY, '10.77.0.5'), '6a:bb:9a:8b:fa:2e');
  assert.equal(answeringMac(REPLY, '10.77.0.6'), undefined);
  assert.equal(answeringMac('Sent 2 probes (2 broadcast(s))\nReceived 0 response(s)\n', '10.77.0.5'), undefined);
});

test('a machine announcing the address (an ARP request from it, as arping -D prints it) is a conflict too', () => {
  // captured: a gratuitous ARP (arping -U) of the probed address arriving during `arping -D -c 2 -w 2`, exit 1
  const announced =
    'ARPING 10.5.0.17 from 0.0.0.0 br0\nBroadcast request from 10.5.0.17 [E2:7E:C3:8C:B9:9B] for 10.5.0.17 [FF:FF:FF:FF:FF:FF] 305.328ms\nSent 1 probes (1 broadcast(s))\nReceived 1 response(s) (1 request(s), 1 broadcast(s))\n';
  assert.equal(answeringMac(announced, '10.5.0.17'), 'e2:7e:c3:8c:b9:9b');
  assert.equal(answeringMac(announced, '10.5.0.1'), undefined);
});

test('probe argv is DAD mode from the given interface, and bad input is refused', () => {
  assert.deepEqual(probeArgs('br0', '10.0.0.9'), ['-D', '-I', 'br0', '-c', '2', '-w', '2', '10.0.0.9']);
  assert.throws(() => probeArgs('br0', 'fd00::1'), /not an IPv4 address/);
  assert.throws(() => probeArgs('br0', '10.0.0.256'), /not an IPv4 address/);
  assert.throws(() => probeArgs('br0;x', '10.0.0.9'));
  assert.throws(() => probeArgs('br0', '10.0.0.9', { count: 0 }), /positive/);
});

test('exit 0 is free, exit 1 with a reply is taken, anything else is a probing failure', async () => {
  const prober = (code: number, stdout: string, stderr = '') => new ArpProber(async () => ({ code, stdout, stderr }));
  assert.deepEqual(await prober(0, 'Received 0 response(s)\n').probe('br0', '10.77.0.5'), {
    address: '10.77.0.5',
    answered: false,
  });
  assert.deepEqual(await prober(1, REPLY).probe('br0', '10.77.0.5'), {
    address: '10.77.0.5',
    answered: true,
    mac: '6a:bb:9a:8b:fa:2e',
  });
  await assert.rejects(prober(2, '', 'arping: unknown iface br0').probe('br0', '10.77.0.5'), /unknown iface br0/);
  await assert.rejects(prober(1, 'Received 0 response(s)\n').probe('br0', '10.77.0.5'), /could not probe/);
  await assert.rejects(
    new ArpProber(async () => {
      throw new Error('spawn arping ENOENT');
    }).probe('br0', '10.77.0.5'),
    /Could not run arping/,
  );
});
