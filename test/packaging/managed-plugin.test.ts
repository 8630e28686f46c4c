import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startLab, type Lab } from '../../src/lab/lab.js';
import { missing } from '../harness/requirements.js';
import { labEngines } from '../e2e/engines.js';
import { buildPluginDir } from '../e2e/managed-plugin-host.js';

const PLUGIN = 'flatnet-test:latest';

for (const { engine, skip: engineSkip } of labEngines())
  describe(`managed plugin on ${engine.name}`, () => {
    /**
     * The managed (v2) plugin end to end: built from this machine by `flatnet plugin build`, created,
     * configured and enabled in a lab dockerd of its own (own namespaces, data root, plugin directory), then used
     * as the IPAM driver of a bridge network.
     */
    test(
      `${engine.name}: docker plugin create/set/enable work and the plugin serves IPAM for network create`,
      { skip: missing('root', 'docker', 'etcd') || engineSkip },
      async () => {
        const work = await mkdtemp(join(tmpdir(), 'flatnet-plugin-test-'));
        const prefix = `/mp-${Math.random().toString(36).slice(2, 8)}`;
        let lab: Lab | undefined;
        let created = false;
        try {
          const pluginDir = await buildPluginDir(work);
          const config = JSON.parse(await readFile(join(pluginDir, 'config.json'), 'utf8')) as {
            interface: { types: string[] };
          };
          assert.deepEqual(config.interface.types, ['docker.networkdriver/1.0', 'docker.ipamdriver/1.0']);

          lab = await startLab({
            hosts: 1,
            plugin: false,
            etcdMembers: 1,
            name: `managed-plugin ${engine.name}`,
            engine,
          });
          const host = lab.hosts[0];
          assert.ok(host);
          const stateDir = join(work, 'state');
          const confDir = join(work, 'etc');
          await mkdir(stateDir);
          await mkdir(confDir);

          await host.flatnet([
            'ip-range',
            'add',
            '--ip-start',
            '10.77.0.10/24',
            '--ip-end',
            '10.77.0.99/24',
            '--etcd-prefix',
            prefix,
          ]);

          await host.docker(['plugin', 'create', PLUGIN, pluginDir]);
          created = true;
          await host.docker([
            'plugin',
            'set',
            PLUGIN,
            `FLATNET_ETCD_ENDPOINTS=${lab.etcdEndpoints.join(',')}`,
            `FLATNET_ETCD_PREFIX=${prefix}`,
            'FLATNET_HOST_ID=mp-h1',
            `state.source=${stateDir}`,
            `config.source=${confDir}`,
          ]);
          await host.docker(['plugin', 'enable', '--timeout', '60', PLUGIN]);
          const enabled = (await host.docker(['plugin', 'inspect', '--format', '{{.Enabled}}', PLUGIN])).trim();
          assert.equal(enabled, 'true');

          await host.docker([
            'network',
            'create',
            '-d',
            'bridge',
            '--ipam-driver',
            PLUGIN,
            '--subnet',
            '10.77.0.0/24',
            '--ip-range',
            '10.77.0.16/28',
            '--gateway',
            '10.77.0.1',
            '-o',
            'com.docker.network.bridge.name=fnmp0',
            'n1',
          ]);
          const inspected = JSON.parse(
            await host.docker(['network', 'inspect', 'n1', '--format', '{{json .IPAM}}']),
          ) as {
            Driver: string;
            Config: { Subnet: string }[];
          };
          assert.equal(inspected.Driver, PLUGIN);
          assert.equal(inspected.Config[0]?.Subnet, '10.77.0.0/24');
          // the pool claim the plugin made is in etcd under the prefix: the plugin really answered from etcd
          const keys = await host.flatnet(['status', '--json', '--etcd-prefix', prefix]);
          assert.match(keys, /10\.77\.0\.0\/24/);
          await host.docker(['network', 'rm', 'n1']);

          // flatnet create-network against this daemon, with the managed plugin as network driver and IPAM;
          // a second run finds the network and changes nothing (--subnet: the pool is not eth0's own subnet)
          const createArgs = [
            'create-network',
            '--name',
            'lan',
            '--driver',
            PLUGIN,
            '--parent',
            'eth0',
            '--subnet',
            '10.77.0.0/24',
            '--docker-host',
            `unix://${host.dockerSocket}`,
            '--etcd-prefix',
            prefix,
          ];
          assert.match(
            await host.flatnet(createArgs),
            /created network lan \(driver flatnet-test:latest, subnet 10\.77\.0\.0\/24/,
          );
          assert.match(await host.flatnet(createArgs), /already exists .*nothing to do/);
          const lan = JSON.parse(await host.docker(['network', 'inspect', 'lan', '--format', '{{json .}}'])) as {
            Driver: string;
            Options: Record<string, string>;
          };
          assert.equal(lan.Driver, PLUGIN);
          assert.equal(lan.Options.parent, 'eth0');
          await host.docker(['network', 'rm', 'lan']);
        } catch (err) {
          const diag = lab ? await lab.diagnostics() : '';
          throw new Error(`${(err as Error).message}\n${diag}`);
        } finally {
          if (lab && created) {
            const host = lab.hosts[0];
            await host?.docker(['network', 'rm', 'n1']).catch(() => undefined);
            await host?.docker(['network', 'rm', 'lan']).catch(() => undefined);
            // the plugin's process is dockerd's child, outside the lab's cgroups: stop it through dockerd
            await host?.docker(['plugin', 'disable', '-f', PLUGIN]).catch(() => undefined);
            await host?.docker(['plugin', 'rm', '-f', PLUGIN]).catch(() => undefined);
          }
          await lab?.stop();
          await rm(work, { recursive: true, force: true });
        }
      },
    );
  });
