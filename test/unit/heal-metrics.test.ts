import assert from 'node:assert/strict';
import { test } from 'node:test';
import { heldPerPool } from '../../src/agents/ipam-healing.js';

const at = (address: string, subnet: string) => ({ address, subnet, poolId: subnet, since: '2026-01-01T00:00:00Z' });

test("held per pool: what the round read as this host's, kept for any reason, and orphans it failed to free", () => {
  const held = heldPerPool({
    plan: {
      kept: [
        { address: at('10.0.0.2', '10.0.0.0/24'), reason: 'held' },
        { address: at('10.0.0.3', '10.0.0.0/24'), reason: 'young' },
        { address: at('10.1.0.2', '10.1.0.0/24'), reason: 'incomplete-view' },
      ],
      free: [at('10.0.0.4', '10.0.0.0/24'), at('10.0.0.5', '10.0.0.0/24'), at('10.2.0.2', '10.2.0.0/24')],
      skipped: [{ subnet: '10.1.0.0/24', why: 'no view' }],
    },
    freed: ['10.0.0.4', '10.2.0.2'],
  });
  assert.deepEqual(
    Object.fromEntries(held),
    { '10.0.0.0/24': 3, '10.1.0.0/24': 1 },
    'a pool whose every address was freed has no entry',
  );
});
