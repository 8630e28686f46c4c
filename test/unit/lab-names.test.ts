import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLabId, labNames, newLabId } from '../../src/lab/names.js';
import { teardownLab } from '../../src/lab/teardown.js';

test('lab ids are six hex digits and every interface name of a bed fits in 15 characters', () => {
  const id = newLabId();
  assert.ok(isLabId(id));
  const names = labNames(id);
  for (const n of [1, 2, 3]) assert.ok(names.lanPort(n).length <= 15);
  assert.ok(names.hostNetns(3).includes(id) && names.lanNetns.includes(id) && names.dir.includes(id));
  assert.notEqual(newLabId(), newLabId());
  assert.equal(names.hostLanAddress(1), '10.99.0.11');
  assert.equal(
    names.hostLanAddress(2, 1),
    '10.98.0.12',
    'a host on the second segment gets an address of that segment',
  );
});

test('teardownLab refuses anything but a lab id, so no path outside the bed directory is ever read', async () => {
  for (const bad of ['../etc', 'abc', 'ABCDEF', '12345g', '1234567']) {
    await assert.rejects(teardownLab(bad), /is not a lab id/);
  }
});
