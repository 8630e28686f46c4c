import { errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/** Work that runs in the background until stopped: started by Agents.start() if it has a start. */
export interface Agent {
  start?(): void | Promise<void>;
  /** Ends the work and waits for what still runs; must not throw for work that has nobody to throw to. */
  stop(): Promise<void>;
}

/**
 * The background agents of one composition root, kept in the order they stop: adding a loop is one add() there,
 * and shutdown is one stop(). An agent that fails to stop is logged and the next one still stops.
 */
export class Agents {
  private readonly agents: { name: string; agent: Agent }[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  add<T extends Agent>(name: string, agent: T): T {
    this.agents.push({ name, agent });
    return agent;
  }

  /** Starts those with a start, in the order added. */
  async start(): Promise<void> {
    for (const { agent } of this.agents) await agent.start?.();
  }

  /** Stops every agent, one after the other, in the order added. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const { name, agent } of this.agents)
        await agent
          .stop()
          .catch((err: unknown) => this.logger.warn({ error: errorMessage(err) }, `${name}: stop failed`));
    })();
    return this.stopping;
  }
}
