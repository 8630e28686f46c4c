import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DockerEngineApi } from '../../src/docker/engine-api.js';
import { IMAGE, type Lab, labLeftovers, startLab } from '../../src/lab/lab.js';
import { missing } from '../harness/requirements.js';

// What flatnet reads from a real dockerd's API: the engine version and who holds each endpoint of a network.
const skip = missing('root', 'docker', 'etcd', 'iproute2');
let lab: Lab | undefined;

before(async () => {
  if (!skip) lab = await startLab({ hosts: 1, etcdMembers: 1, plugin: false });
});
after(async () => {
  if (!lab) return;
  await lab.stop();
  assert.deepEqual(await labLeftovers(lab.id), []);
});

test('the engine version and the endpoint holders of a network match what the docker CLI shows', { skip }, async () => {
  const host = (lab as Lab).hosts[0]!;
  const api = new DockerEngineApi({ socketPath: host.dockerSocket });
  const version = await api.version();
  assert.equal(version.version, (await host.docker(['version', '--format', '{{.Server.Version}}'])).trim());
  assert.ok(version.major >= 20, `engine ${version.version}`);

  const networkId = (await host.docker(['network', 'create', '--subnet', '10.97.0.0/24', 'apinet'])).trim();
  await host.docker(['run', '-d', '--name', 'web1', '--net', 'apinet', IMAGE, 'sleep', '600']);
  const containerId = (await host.docker(['inspect', '-f', '{{.Id}}', 'web1'])).trim();
  const endpointId = (
    await host.docker(['inspect', '-f', '{{(index .NetworkSettings.Networks "apinet").EndpointID}}', 'web1'])
  ).trim();
  const holders = await api.endpointHolders(networkId);
  const h = holders?.get(endpointId);
  assert.equal(h?.containerId, containerId);
  assert.equal(h?.containerName, 'web1');
  assert.match(h?.ipv4Address ?? '', /^10\.97\.0\.\d+\/24$/);
  assert.equal(await api.endpointHolders('0123456789ab'), undefined, 'an unknown network is undefined, not an error');
  await host.docker(['rm', '-f', 'web1']);
  await host.docker(['network', 'rm', 'apinet']);
});
