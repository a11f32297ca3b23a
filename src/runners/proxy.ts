/**
 * The worker's egress proxy: every HTTP request and HTTPS tunnel that FFmpeg opens for a job
 * goes through it, and it applies the worker's `Confinement` to each: the host must be on the
 * allow-list and every address it resolves to public (unless private networks are allowed).
 * It then connects to an address it checked, never resolving again, so a DNS answer that
 * changes between the check and the connection (rebinding) reaches nothing. FFmpeg follows
 * redirects itself, each with a new request through the proxy: every hop is checked.
 *
 * FFmpeg (in-process through node-av, and the ffmpeg/ffprobe children, which inherit the
 * environment) reads its proxy from `http_proxy` at every open, for `http` and for `https`
 * (a CONNECT tunnel); `no_proxy` is removed, or it could name hosts that bypass the proxy.
 * The environment is the process's, so one process holds one confinement: workers started
 * in one process with the same confinement share the proxy, another confinement is refused.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { UsageError } from '../errors.js';
import { debug } from '../log.js';
import type { Confinement, Refusal } from './confine.js';

/** Headers that belong to the hop to the proxy, not to the request forwarded. */
const HOP_HEADERS = new Set([
  'proxy-connection',
  'proxy-authorization',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

interface Shared {
  key: string;
  proxy: EgressProxy;
  users: number;
  previous: { http_proxy: string | undefined; no_proxy: string | undefined };
}

let shared: Shared | undefined;

/**
 * The proxy of this process for `confinement`, started and set in the environment on first use;
 * `release()` once per `acquire()`. The last release stops it and puts the environment back.
 */
export async function acquireProxy(confinement: Confinement, key: string): Promise<EgressProxy> {
  if (shared) {
    if (shared.key !== key)
      throw new UsageError(
        'Another worker in this process runs with other --root/--allow-host settings: FFmpeg takes one proxy per process, so start this worker in its own process',
      );
    shared.users += 1;
    return shared.proxy;
  }
  const proxy = await EgressProxy.start(confinement);
  shared = {
    key,
    proxy,
    users: 1,
    previous: { http_proxy: process.env.http_proxy, no_proxy: process.env.no_proxy },
  };
  process.env.http_proxy = proxy.url;
  delete process.env.no_proxy;
  return proxy;
}

export async function releaseProxy(proxy: EgressProxy): Promise<void> {
  if (!shared || shared.proxy !== proxy || --shared.users > 0) return;
  const { previous } = shared;
  shared = undefined;
  for (const [name, value] of Object.entries(previous)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await proxy.close();
}

export class EgressProxy {
  /** Requests and tunnels refused, with the last reason (for the worker's log). */
  refused = 0;
  lastRefusal: string | undefined;
  private readonly sockets = new Set<Duplex>();

  private constructor(
    private readonly server: Server,
    private readonly confinement: Confinement,
    /** `http://127.0.0.1:PORT` */
    readonly url: string,
  ) {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.forward(req, res));
    server.on(
      'connect',
      (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.tunnel(req, socket, head),
    );
    server.on('connection', (socket: Socket) => this.track(socket));
  }

  static async start(confinement: Confinement): Promise<EgressProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as { port: number };
    return new EgressProxy(server, confinement, `http://127.0.0.1:${port}`);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The address to connect to for `host`, or a refusal. */
  private async address(host: string): Promise<string | Refusal> {
    const refusal = this.confinement.checkHost(host);
    if (refusal) return refusal;
    const addresses = await this.confinement.checkAddresses(host);
    return Array.isArray(addresses) ? addresses[0] : addresses;
  }

  private refuse(what: string, refusal: Refusal): string {
    this.refused += 1;
    this.lastRefusal = `refused ${what}: ${refusal.forbidden}`;
    debug('proxy: %s', this.lastRefusal);
    return `Forbidden by framewise worker: ${refusal.forbidden}\n`;
  }

  /** A plain HTTP request (its target an absolute URL), forwarded to a checked address. */
  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL | undefined;
    try {
      url = new URL(req.url ?? '');
    } catch {
      url = undefined;
    }
    const target =
      url?.protocol === 'http:'
        ? await this.address(url.hostname)
        : { forbidden: 'only absolute http URLs go through this proxy' };
    if (typeof target !== 'string' || !url) {
      res
        .writeHead(403, { 'content-type': 'text/plain', connection: 'close' })
        .end(this.refuse(req.url ?? '', target as Refusal));
      return;
    }
    const headers = Object.fromEntries(
      Object.entries(req.headers).filter(([name]) => !HOP_HEADERS.has(name)),
    );
    const upstream = request({
      host: target,
      port: url.port || 80,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
      setHost: false,
    });
    upstream.on('response', (answer) => {
      const back = Object.fromEntries(
        Object.entries(answer.headers).filter(([name]) => !HOP_HEADERS.has(name)),
      );
      res.writeHead(answer.statusCode ?? 502, back);
      answer.pipe(res);
    });
    upstream.on('error', (error) => {
      if (!res.headersSent)
        res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' }).end(`${error.message}\n`);
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  /** An HTTPS tunnel (`CONNECT host:port`), opened to a checked address. */
  private async tunnel(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    this.track(socket);
    socket.on('error', () => socket.destroy());
    const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(req.url ?? '');
    const target = match ? await this.address(match[1]) : { forbidden: 'a CONNECT target must be host:port' };
    if (typeof target !== 'string' || !match) {
      socket.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${this.refuse(req.url ?? '', target as Refusal)}`,
      );
      return;
    }
    const upstream = connect(Number(match[2]), target, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    this.track(upstream);
    upstream.on('error', () => {
      if (socket.writable) socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n');
      socket.destroy();
    });
    socket.on('close', () => upstream.destroy());
  }

  private track(socket: Duplex): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }
}
