import { DOCKER20, docker28, type Engine } from '../../src/lab/engine.js';

export interface EngineCase {
  engine: Engine;
  /** Skip reason (false: run). Under CI a missing engine is an error, as for missing() requirements. */
  skip: string | false;
}

/**
 * The engines every Docker-facing test runs on: Debian's docker.io 20.10 and Docker 28 (unpacked by
 * scripts/install-deps.sh). FLATNET_LAB_ENGINES=docker20 (or docker28) narrows a local run to one.
 */
export function labEngines(): EngineCase[] {
  const only = process.env.FLATNET_LAB_ENGINES?.split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const d28 = docker28();
  const cases: EngineCase[] = [{ engine: DOCKER20, skip: false }];
  if (d28) cases.push({ engine: d28, skip: false });
  else {
    const reason = 'needs Docker 28 (run scripts/install-deps.sh as root)';
    if (process.env.CI === 'true') throw new Error(`CI must not skip: ${reason}`);
    cases.push({ engine: { name: 'docker28', binDirs: [], cli: '' }, skip: reason });
  }
  return only === undefined || only.length === 0 ? cases : cases.filter((c) => only.includes(c.engine.name));
}
