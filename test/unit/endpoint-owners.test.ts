import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { EndpointOwners } from '../../src/agents/endpoint-owners.js';
import { fakeClock } from '../harness/fake-clock.js';

/** Owner writes wait for the container's start to be over, and a container gone by then costs nothing. */
const NET = 'a'.repeat(64);

test('an endpoint deleted before its owner write is due is never written; one still there is', async (t) => {
  const clock = fakeClock(t);
  const written: string[] = [];
  const owners = new EndpointOwners({
    owners: { record: async (address, o) => (written.push(`${address} ${o.endpointId}`), 'written' as const) },
    docker: undefined,
    logger: silentLogger(),
    createDelaysMs: [60],
  });
  owners.created({ networkId: NET, endpointId: 'gone', addresses: ['10.1.0.5/24', ''] });
  owners.created({ networkId: NET, endpointId: 'stays', addresses: ['10.1.0.6/24'] });
  assert.deepEqual(written, [], 'nothing on the plugin call path');
  owners.removed('gone');
  await clock.advance(150);
  assert.deepEqual(written, ['10.1.0.6/24 stays']);
  await owners.close();
});

test('the default first owner write comes about a second after CreateEndpoint, not during the container start', async (t) => {
  const clock = fakeClock(t);
  const written: string[] = [];
  const owners = new EndpointOwners({
    owners: { record: async (a) => (written.push(a), 'written' as const) },
    docker: undefined,
    logger: silentLogger(),
  });
  owners.created({ networkId: NET, endpointId: 'e1', addresses: ['10.1.0.7/24'] });
  await clock.advance(500);
  assert.deepEqual(written, []);
  await clock.advance(700);
  assert.deepEqual(written, ['10.1.0.7/24']);
  await owners.close();
});
