import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runDemo } from '../../src/lab/demo.js';
import { labLeftovers } from '../../src/lab/lab.js';
import { missing } from '../harness/requirements.js';
import { labEngines } from './engines.js';

for (const { engine, skip: engineSkip } of labEngines())
  describe(`demo on ${engine.name}`, () => {
    test(
      `${engine.name}: flatnet demo runs its six steps, every ping is answered, and it cleans up after itself`,
      { skip: missing('root', 'docker', 'etcd', 'iproute2') || engineSkip },
      async () => {
        const lines: string[] = [];
        await runDemo({ keep: false, log: (l) => lines.push(l), engine });
        const text = lines.join('\n');
        const id = /lab ([0-9a-f]{6}):/.exec(text)?.[1];
        assert.ok(id, `the demo names its lab:\n${text}`);
        for (let i = 1; i <= 6; i++) assert.ok(text.includes(`[${i}/6]`), `step ${i} is shown:\n${text}`);
        assert.match(text, /all pings answered/);
        assert.doesNotMatch(text, /FAILED|MISSING/);
        assert.match(text, /CONTAINER\s+HOST\s+ADDRESS\s+ETCD RECORD\s+MAC/);
        for (const name of ['web1', 'web2', 'db1', 'cache1']) {
          assert.match(
            text,
            new RegExp(
              `^\\s+${name}\\s+h\\d\\s+10\\.99\\.\\d+\\.\\d+\\s+held by h\\d\\s+([0-9a-f]{2}:){5}[0-9a-f]{2}$`,
              'm',
            ),
          );
        }
        assert.deepEqual(await labLeftovers(id), []);
      },
    );
  });
