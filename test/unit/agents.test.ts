import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agents } from '../../src/agents/agents.js';
import { silentLogger } from '../../src/observability/logger.js';

test('agents start and stop in the order added; a failed stop does not keep the next one running', async () => {
  const agents = new Agents(silentLogger());
  const seen: string[] = [];
  agents.add('a', { start: () => void seen.push('start a'), stop: async () => void seen.push('stop a') });
  agents.add('b', {
    stop: async () => {
      seen.push('stop b');
      throw new Error('boom');
    },
  });
  agents.add('c', { start: async () => void seen.push('start c'), stop: async () => void seen.push('stop c') });
  await agents.start();
  await agents.stop();
  await agents.stop();
  assert.deepEqual(seen, ['start a', 'start c', 'stop a', 'stop b', 'stop c']);
});
