import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import type { RequestListener, Server } from 'node:http';
import type { Express } from 'express';
import { createPluginApp } from '../../src/api/plugin-app.js';
import type { IpamDriver } from '../../src/ipam/contract.js';
import type { NetworkDriver } from '../../src/netdriver/network-driver.js';
import type { Logger } from '../../src/observability/logger.js';
import { RecordingIpam, RecordingNetwork } from './recording-drivers.js';

/** A logger whose JSON lines are kept for assertions. */
export function capturingLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface Harness {
  app: Express;
  ipam: RecordingIpam;
  network: RecordingNetwork;
  logLines: () => Record<string, unknown>[];
}

export function recordingHarness(): Harness {
  const ipam = new RecordingIpam();
  const network = new RecordingNetwork();
  const { logger, lines } = capturingLogger();
  const app = createPluginApp({ ipam, network, logger, hostId: 'test-host' });
  return { app, ipam, network, logLines: lines };
}

export function appWith(ipam: IpamDriver, network: NetworkDriver, logger: Logger): Express {
  return createPluginApp({ ipam, network, logger, hostId: 'test-host' });
}

/**
 * POSTs like dockerd (to the app, or to a node:http server serving it): no Content-Type, body = JSON text + '\n' (a Buffer, so supertest adds no type),
 * or an empty body for argument-less calls.
 */
export function dockerCall(app: RequestListener | Server, method: string, body?: unknown | { raw: string }) {
  let bytes: Buffer;
  if (body === undefined) bytes = Buffer.alloc(0);
  else if (typeof body === 'object' && body !== null && 'raw' in body)
    bytes = Buffer.from((body as { raw: string }).raw);
  else bytes = Buffer.from(`${JSON.stringify(body)}\n`);
  return request(app)
    .post(`/${method}`)
    .set('Accept', 'application/vnd.docker.plugins.v1.2+json')
    .set('Host', '')
    .send(bytes);
}

export const NET_ID = 'a'.repeat(64);
export const EP_ID = 'b'.repeat(64);
