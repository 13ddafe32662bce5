// The SSRF guard of webhooks: a callback may reach only public unicast addresses, or the
// networks the operator allows (WEBHOOK_ALLOWED_NETWORKS). Checked at submission for what the
// URL says literally, and at delivery for every address its host resolves to; the connection
// then goes to an address that was checked, never to a second lookup (DNS rebinding).
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** Why a callback target is not allowed; never retried. */
export class CallbackRefusedError extends Error {
  override readonly name = 'CallbackRefusedError';
  readonly code = 'CALLBACK_REFUSED';
}

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    ),
  );

type Network = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Parses a comma-separated CIDR list ("127.0.0.0/8, fd00::/8"); throws on a malformed entry. */
export function parseNetworks(list: string): Network[] {
  return list
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
    .map((entry) => {
      try {
        return ipaddr.parseCIDR(entry);
      } catch {
        throw new Error(`'${entry}' is not a network in CIDR notation (e.g. 127.0.0.0/8 or fd00::/8)`);
      }
    });
}

/** A URL's hostname without the brackets of an IPv6 literal. */
const unbracketed = (hostname: string) => hostname.replace(/^\[|\]$/g, '');

type NodeLookupCallback = (error: Error | null, address: string | LookupAddress[], family?: number) => void;

export class AddressGuard {
  private readonly allowed: Network[];

  constructor(
    allowedNetworks: string,
    private readonly resolve: Resolver = systemResolver,
  ) {
    this.allowed = parseNetworks(allowedNetworks);
  }

  /**
   * Whether a callback may connect to `address`: a public unicast address, or one in an allowed
   * network. Loopback, private (RFC 1918, fc00::/7), link-local (169.254.169.254 included),
   * CGNAT, unspecified, multicast, broadcast, reserved and the IPv6 forms that embed an IPv4
   * address (IPv4-mapped is judged as the IPv4 it carries; 6to4, Teredo, NAT64) are not.
   */
  allows(address: string): boolean {
    if (!ipaddr.isValid(address)) return false;
    const ip = ipaddr.process(address);
    if (ip.range() === 'unicast') return true;
    return this.allowed.some(([network, bits]) => network.kind() === ip.kind() && ip.match(network, bits));
  }

  /**
   * What the URL's host says without a lookup: an IP literal or `localhost` that is not allowed
   * is refused (with why); any other host name waits for delivery, where its addresses are checked.
   */
  refusalOfLiteral(hostname: string): string | null {
    const host = unbracketed(hostname).toLowerCase();
    const literal = isIP(host) ? host : host === 'localhost' || host.endsWith('.localhost') ? '127.0.0.1' : null;
    if (literal === null || this.allows(literal)) return null;
    return `${hostname} is a loopback, private, link-local or otherwise non-public address; the operator has not allowed it (WEBHOOK_ALLOWED_NETWORKS)`;
  }

  /** The host's addresses, all of them allowed, or a CallbackRefusedError naming the one that is not. */
  async addresses(hostname: string): Promise<LookupAddress[]> {
    const host = unbracketed(hostname);
    const family = isIP(host);
    const found = family ? [{ address: host, family }] : await this.resolve(host);
    if (found.length === 0) throw new Error(`${hostname} has no address`);
    const denied = found.find((a) => !this.allows(a.address));
    if (denied) {
      throw new CallbackRefusedError(
        `${hostname} resolves to ${denied.address}, a non-public address the operator has not allowed`,
      );
    }
    return found;
  }

  /** Throws a CallbackRefusedError for an IP literal that is not allowed (a connection to one does no lookup). */
  async refuseLiteral(hostname: string): Promise<void> {
    if (isIP(unbracketed(hostname))) await this.addresses(hostname);
  }

  /**
   * A `lookup` for node's http/https/net: connections go to checked addresses only, those of
   * this one resolution.
   */
  readonly lookup = (hostname: string, options: LookupOptions, callback: NodeLookupCallback): void => {
    this.addresses(hostname).then(
      (found) => {
        const usable = options.family ? found.filter((a) => a.family === options.family) : found;
        const first = usable[0];
        if (!first) return callback(new Error(`${hostname} has no IPv${String(options.family)} address`), '');
        if (options.all) callback(null, usable);
        else callback(null, first.address, first.family);
      },
      (error: Error) => callback(error, ''),
    );
  };
}

/** The longest callback_url taken. */
export const CALLBACK_URL_MAX = 2048;

/**
 * Why a submission's callback_url is refused, or null: it must be an absolute http(s) URL of
 * at most CALLBACK_URL_MAX characters, without user or password, whose host is not a literal
 * address the guard refuses.
 */
export function callbackUrlProblem(raw: string, guard: AddressGuard): string | null {
  if (raw.length > CALLBACK_URL_MAX) return `callback_url is longer than ${CALLBACK_URL_MAX} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'callback_url is not an absolute URL (e.g. https://example.org/cxr-hook)';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'callback_url must be an http:// or https:// URL';
  if (url.username || url.password) return 'callback_url must not carry a user name or password';
  const literal = guard.refusalOfLiteral(url.hostname);
  return literal && `callback_url: ${literal}`;
}
