import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 between a client and one etcd member, for fault tests. gRPC multiplexes calls
 * over one HTTP/2 connection, so faults are per connection, not per call:
 *  - pass: bytes flow both ways (new connections always start like this, unless refusing/blackholing);
 *  - stallReplies(): on the connections open now, client→etcd bytes still flow but etcd→client bytes are
 *    swallowed: a request sent next reaches etcd and is applied, its reply is lost;
 *  - refuse: every connection (open or new) is reset at once, like a stopped member;
 *  - blackhole: connections are accepted and nothing is forwarded either way, like a host that vanished;
 *  - delayReplies(ms): etcd→client bytes arrive ms later (a slow link): a read-decide-write then spans that time.
 */
export type ProxyMode = 'pass' | 'refuse' | 'blackhole';

interface Pair {
  client: Socket;
  upstream: Socket;
  /** etcd→client bytes are swallowed. */
  stalled: boolean;
  /** client→etcd bytes are swallowed too (blackhole). */
  silent: boolean;
}

export class TcpProxy {
  private mode: ProxyMode = 'pass';
  private readonly pairs = new Set<Pair>();
  private readonly held = new Set<Socket>();
  private forwardedWhileStalled: (() => void)[] = [];
  private replyDelayMs = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  static async start(targetUrl: string): Promise<TcpProxy> {
    const u = new URL(targetUrl);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('proxy has no port');
    return new TcpProxy(server, addr.port, { host: u.hostname, port: Number(u.port) });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (this.mode === 'blackhole') {
      this.held.add(client);
      client.on('close', () => this.held.delete(client));
      client.resume(); // read and drop
      return;
    }
    const upstream = createConnection(this.target);
    upstream.on('error', () => client.destroy());
    const pair: Pair = { client, upstream, stalled: false, silent: false };
    this.pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      if (pair.silent) return;
      upstream.write(chunk);
      if (pair.stalled) {
        const waiting = this.forwardedWhileStalled;
        this.forwardedWhileStalled = [];
        for (const w of waiting) w();
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (pair.stalled) return;
      // Equal delays keep the chunks in order.
      if (this.replyDelayMs > 0) setTimeout(() => client.write(chunk), this.replyDelayMs);
      else client.write(chunk);
    });
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
  }

  /**
   * Swallows etcd's replies on every connection open now; resolves once a client→etcd chunk has been
   * forwarded on one of them (the request whose reply will be lost has reached etcd).
   */
  stallReplies(): Promise<void> {
    if (this.pairs.size === 0) throw new Error('stallReplies: no open connection to stall');
    for (const p of this.pairs) p.stalled = true;
    return new Promise<void>((resolve) => this.forwardedWhileStalled.push(resolve));
  }

  /** Every reply (on open and new connections) reaches the client `ms` later; 0 = at once. */
  delayReplies(ms: number): void {
    this.replyDelayMs = ms;
  }

  /** Open connections that are stalled. */
  stalledCount(): number {
    return [...this.pairs].filter((p) => p.stalled).length;
  }

  setMode(mode: ProxyMode): void {
    this.mode = mode;
    if (mode === 'pass') {
      // Connections silenced by an outage stay dead (as after a real one); new ones pass.
      for (const s of this.held) s.destroy();
      for (const p of this.pairs) if (p.silent) p.client.destroy();
      return;
    }
    // An outage cuts what is open too (a refused member resets; a vanished one simply goes silent).
    for (const p of this.pairs) {
      if (mode === 'refuse') {
        p.client.resetAndDestroy();
        p.upstream.destroy();
      } else {
        p.stalled = true;
        p.silent = true;
      }
    }
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    for (const s of this.held) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
