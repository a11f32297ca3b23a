/**
 * What a worker may open: local paths under its roots, URLs on the hosts it was given, and
 * never an address that is not public. A job is plain JSON that anyone who can write to the
 * queue's Redis can enqueue, so the worker checks every path and URL itself, before anything
 * is opened, and says no in the same words whether a path outside its roots exists or not.
 *
 * - Paths: the real path (symlinks resolved now, at open time) must lie under the real path of
 *   a root. A path that does not resolve is judged by its nearest ancestor that does, so that
 *   a missing path outside the roots is refused like an existing one.
 * - URLs: `http` and `https` only, on a host of the allow-list (`example.com`, or
 *   `*.example.com` for its subdomains); its DNS answers must all be public addresses
 *   (ipaddr.js's `unicast` class; for IPv6 within 2000::/3), unless private networks are
 *   allowed. FFmpeg follows redirects itself, so every connection it makes goes through the
 *   worker's egress proxy (`proxy.ts`), which applies the same checks to each request and
 *   connects to the address it checked.
 */
import { lookup } from 'node:dns/promises';
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, sep } from 'node:path';
import ipaddr from 'ipaddr.js';
import { UsageError } from '../errors.js';

/** The confinement options of `startWorker()` and `framewise worker`. */
export interface ConfineOptions {
  /**
   * The folders whose files jobs may name (`--root`, repeatable): a path is opened only if its
   * real path lies under one of theirs. Required; `['/']` allows every file the worker's user
   * can read.
   */
  roots: readonly string[];
  /**
   * The hosts whose `http`/`https` URLs jobs may name (`--allow-host`): `videos.example.com`,
   * or `*.example.com` for every subdomain of example.com.
   * @default [] (no URL is opened)
   */
  allowHosts?: readonly string[];
  /**
   * Lets URLs reach addresses that are not public: loopback, private (RFC 1918), link-local,
   * CGNAT, multicast, unspecified, and their IPv6 forms (`--allow-private-network`).
   * @default false
   */
  allowPrivateNetwork?: boolean;
}

/** A refusal: the `FORBIDDEN` record's message. */
export interface Refusal {
  forbidden: string;
}

/** A host pattern of the allow-list: a host name or address, or `*.` and a domain. */
interface HostPattern {
  host: string;
  subdomains: boolean;
}

/** The checked confinement of one worker. */
export class Confinement {
  private constructor(
    /** Real paths, each without a trailing separator but `/`. */
    readonly roots: readonly string[],
    private readonly hosts: readonly HostPattern[],
    readonly allowPrivateNetwork: boolean,
  ) {}

  /** Checks the options: each root must exist and be a folder; it is kept as its real path. */
  static async create(options: ConfineOptions, field = ''): Promise<Confinement> {
    const name = (key: string): string => (field ? `${field}.${key}` : key);
    const { roots, allowHosts = [], allowPrivateNetwork = false } = options;
    if (!Array.isArray(roots) || roots.length === 0) {
      throw new UsageError(
        `\`${name('roots')}\` is required (--root DIR, repeatable): a worker opens only files under its roots, since anyone who can write to the queue chooses the paths`,
      );
    }
    const real: string[] = [];
    for (const root of roots) {
      if (typeof root !== 'string' || !isAbsolute(root))
        throw new UsageError(
          `Expected an absolute folder path for \`${name('roots')}\` but received ${JSON.stringify(root)}`,
        );
      try {
        real.push(await realpath(root));
      } catch (error) {
        throw new UsageError(
          `The root ${root} cannot be resolved (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
        );
      }
    }
    if (!Array.isArray(allowHosts))
      throw new UsageError(
        `Expected a list of host names for \`${name('allowHosts')}\` but received ${JSON.stringify(allowHosts)}`,
      );
    const hosts = allowHosts.map((pattern) => hostPattern(name('allowHosts'), pattern));
    if (typeof allowPrivateNetwork !== 'boolean')
      throw new UsageError(
        `Expected a boolean for \`${name('allowPrivateNetwork')}\` but received ${JSON.stringify(allowPrivateNetwork)}`,
      );
    return new Confinement(real, hosts, allowPrivateNetwork);
  }

  /** True when a root is `/`: every file the user can read is allowed. */
  get everyFile(): boolean {
    return this.roots.includes(sep);
  }

  /**
   * The path to open (its real path, or the path as given when it does not resolve under a
   * root: the runner then gives its ENOENT or EACCES record), or a refusal that says the same
   * whether the path exists or not.
   */
  async checkPath(path: string): Promise<string | Refusal> {
    const refusal: Refusal = {
      forbidden: `this worker opens only files under its roots (${this.roots.join(', ')}; framewise worker --root)`,
    };
    if (!isAbsolute(path)) return refusal;
    try {
      const real = await realpath(path);
      return this.underRoot(real) ? real : refusal;
    } catch {
      // Missing or unreadable: its nearest ancestor that resolves decides, so nothing is said of what exists outside.
      for (let up = dirname(path); ; up = dirname(up)) {
        const ancestor = await realpath(up).catch(() => undefined);
        if (ancestor !== undefined) return this.underRoot(ancestor) ? path : refusal;
        if (dirname(up) === up) return refusal;
      }
    }
  }

  /** A refusal for a URL that is not `http(s)` on an allowed host, or undefined (its addresses are checked by `checkAddresses`). */
  checkUrl(input: string): Refusal | undefined {
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      return { forbidden: 'the URL cannot be parsed' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return { forbidden: `this worker opens only http and https URLs, not ${url.protocol.slice(0, -1)}` };
    return this.checkHost(url.hostname);
  }

  /** A refusal unless `host` (a URL's hostname: lower case, IPv6 in brackets) is on the allow-list. */
  checkHost(host: string): Refusal | undefined {
    const name = host.toLowerCase().replace(/\.$/, '');
    const allowed = this.hosts.some((p) => (p.subdomains ? name.endsWith(`.${p.host}`) : name === p.host));
    if (allowed) return undefined;
    return {
      forbidden:
        this.hosts.length === 0
          ? 'this worker opens no URL (framewise worker --allow-host HOST)'
          : `host ${host} is not one this worker may open (framewise worker --allow-host)`,
    };
  }

  /**
   * The addresses `host` resolves to, all of them public (or private networks allowed), or a
   * refusal. The caller connects to one of these, never resolves again (DNS rebinding).
   */
  async checkAddresses(host: string): Promise<string[] | Refusal> {
    const bare = host.replace(/^\[(.*)\]$/, '$1');
    let addresses: string[];
    try {
      addresses = (await lookup(bare, { all: true, verbatim: true })).map((a) => a.address);
    } catch (error) {
      return {
        forbidden: `host ${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? 'DNS'})`,
      };
    }
    if (addresses.length === 0) return { forbidden: `host ${host} does not resolve` };
    if (this.allowPrivateNetwork) return addresses;
    const closed = addresses.find((a) => !isPublicAddress(a));
    if (closed !== undefined)
      return {
        forbidden: `host ${host} resolves to ${closed}, which is not a public address (framewise worker --allow-private-network)`,
      };
    return addresses;
  }

  private underRoot(real: string): boolean {
    return this.roots.some((root) => root === sep || real === root || real.startsWith(root + sep));
  }
}

/** An allow-list entry, checked: a host name or IP address, or `*.` and a domain. */
function hostPattern(field: string, value: unknown): HostPattern {
  const text = typeof value === 'string' ? value.trim().toLowerCase() : '';
  const subdomains = text.startsWith('*.');
  const bare = subdomains ? text.slice(2) : text;
  const rest = !subdomains && ipaddr.IPv6.isValid(bare) ? `[${bare}]` : bare;
  let host: string | undefined;
  try {
    // The URL parser gives the form a URL's hostname takes (IPv4 in dotted form, IPv6 in brackets).
    const url = new URL(`http://${rest}/`);
    const port = rest.replace(/^\[[^\]]*\]/, '').includes(':');
    host =
      url.hostname && !port && url.pathname === '/' && !rest.includes('@') && !rest.includes('*')
        ? url.hostname
        : undefined;
  } catch {
    host = undefined;
  }
  if (!host)
    throw new UsageError(
      `Expected a host name, an address or *.domain for \`${field}\` but received ${JSON.stringify(value)}`,
    );
  return { host: host.replace(/\.$/, ''), subdomains };
}

/**
 * True for an address on the public internet. IPv4: ipaddr.js's `unicast` class (not
 * loopback, private, link-local, CGNAT, multicast, unspecified, broadcast or reserved).
 * IPv6: an IPv4-mapped address is judged as IPv4; otherwise `unicast` within the global
 * unicast block 2000::/3 (so ::1, ::, fc00::/7, fe80::/10, ff00::/8, 6to4, Teredo, NAT64 and
 * the documentation block are not public).
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress())
    ip = (ip as ipaddr.IPv6).toIPv4Address();
  if (ip.range() !== 'unicast') return false;
  return ip.kind() === 'ipv4' || ip.match(ipaddr.IPv6.parse('2000::'), 3);
}
