import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/** A process the bed started, with its start time so that a reused PID is never mistaken for it. */
const recordedProcessSchema = z.object({ pid: z.number().int().positive(), startTime: z.string(), what: z.string() });
export type RecordedProcess = z.infer<typeof recordedProcessSchema>;

/**
 * Everything a bed made, written before each thing is made, so that teardown (in this process or in a later
 * `teardownLab(id)`) can remove it even when start-up failed half-way.
 */
export const labStateSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{6}$/),
  /** What the bed is for (a test's or the demo's name), to tell kept beds apart. */
  name: z.string().default(''),
  dir: z.string(),
  netns: z.array(z.string()),
  utsFiles: z.array(z.string()),
  /** cgroup names (relative to each controller's root) that hold the bed's daemons and containers. */
  cgroups: z.array(z.string()),
  processes: z.array(recordedProcessSchema),
  /** Host directories whose containerd state holds init.pid / shim.pid files. */
  containerdStateDirs: z.array(z.string()),
  /** Host-side docker sockets: teardown removes containers through them first, while the plugin still runs. */
  dockerSockets: z.array(z.string()).default([]),
});
export type LabState = z.infer<typeof labStateSchema>;

export const STATE_FILE = 'lab.json';

export async function writeLabState(state: LabState): Promise<void> {
  const path = join(state.dir, STATE_FILE);
  await writeFile(`${path}.tmp`, JSON.stringify(state, null, 2));
  await rename(`${path}.tmp`, path);
}

export async function readLabState(dir: string): Promise<LabState> {
  return labStateSchema.parse(JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')));
}
