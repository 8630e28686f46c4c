import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execArgs, failureLine, TIMEOUT_EXIT } from '../../src/hostnet/exec.js';

test('the process runner: argv only, stdin fed, exit code returned, not thrown', async () => {
  const echoed = await execArgs('sh', ['-c', 'cat; echo "$1" >&2; exit 3', 'sh', 'a b;$(x)'], { input: 'in' });
  assert.deepEqual(
    echoed,
    { code: 3, stdout: 'in', stderr: 'a b;$(x)\n' },
    'the argument reached sh as one word, unexpanded',
  );
  assert.equal(failureLine(echoed), 'a b;$(x)');
  assert.equal(
    (await execArgs('sh', ['-c', 'echo "$X"'], 'ignored', { PATH: process.env.PATH ?? '', X: 'env' })).stdout,
    'env\n',
  );
  await assert.rejects(execArgs('/nonexistent/flatnet-no-such-program', []), { code: 'ENOENT' });
});

test('a run past its timeout is killed and says so', async () => {
  const res = await execArgs('sleep', ['30'], { timeoutMs: 200 });
  assert.equal(res.code, TIMEOUT_EXIT, 'killed (a sleep that ran out would exit 0)');
  assert.match(failureLine(res), /sleep gave no answer within 200 ms/);
});
