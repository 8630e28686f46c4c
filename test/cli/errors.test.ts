import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFailure, EXIT_FAILURE, EXIT_INVALID, shortEtcdReason } from '../../src/cli/errors.js';
import { FlatnetError } from '../../src/errors.js';

test('invalid input and collisions exit 2, everything else 1', () => {
  assert.equal(describeFailure(new FlatnetError('invalid', 'bad')).exitCode, EXIT_INVALID);
  assert.equal(describeFailure(new FlatnetError('conflict', 'overlap')).exitCode, EXIT_INVALID);
  assert.equal(describeFailure(new FlatnetError('unavailable', 'down')).exitCode, EXIT_FAILURE);
  assert.equal(describeFailure(new Error('boom\n    at x.js:1')).message, 'boom');
});

test('secrets never reach the message', () => {
  const f = describeFailure(new Error('login as root:s3cret failed'), { secrets: ['s3cret'] });
  assert.equal(f.message, 'login as root:<redacted> failed');
});

test('grpc texts are cut to the cause', () => {
  const e = new Error(
    '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ',
  );
  assert.equal(shortEtcdReason(e), 'connection refused by 127.0.0.1:1');
  const unreachable = new Error(
    '14 UNAVAILABLE: No connection established. Last error: Error: connect ENETUNREACH 10.0.0.1:2379 - Local (0.0.0.0:0). Resolution note: ',
  );
  assert.equal(shortEtcdReason(unreachable), 'cannot connect to 10.0.0.1:2379 (ENETUNREACH)');
});
