import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent } from 'undici';

/**
 * The SSRF guard for URLs users and admins give us (webhook endpoints, seller base URLs): under
 * `public`, a connection may only be made to a public address. Checking the URL's host when it is
 * saved is not enough — DNS can answer differently later (rebinding) — so the check runs in the
 * socket's own `lookup`, at every connection, and the socket connects to the address checked.
 */

export class BlockedAddressError extends Error {
  override name = 'BlockedAddressError';
  readonly code = 'EADDRBLOCKED';
}

/** True for a literal IP address outside loopback, private, link-local, unique-local, metadata and other special ranges. */
export function isPublicAddress(address: string): boolean {
  const version = isIP(address);
  if (version === 4) return isPublicIPv4(ipv4Octets(address));
  if (version === 6) {
    const words = ipv6Words(address.split('%')[0]!);
    return words !== null && isPublicIPv6(words);
  }
  return false;
}

type Resolve = (hostname: string, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

const resolveAll: Resolve = (hostname, callback) => dnsLookup(hostname, { all: true }, callback);

/**
 * A `net.connect` lookup that resolves the name, refuses it if any address it resolves to is not
 * public (a name with one private address among public ones is an attack, not a mistake), and
 * hands the socket the checked address, so what is connected to is what was checked.
 */
export function publicOnlyLookup(resolve: Resolve = resolveAll): LookupFunction {
  return (hostname, options, callback) => {
    const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
    const done = callback as (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
    resolve(host, (err, addresses) => {
      if (err) return done(err, '', 4);
      const blocked = addresses.find((a) => !isPublicAddress(a.address));
      if (addresses.length === 0 || blocked) {
        return done(new BlockedAddressError(`${host} resolves to a non-public address`), '', 4);
      }
      const family = typeof options === 'object' && options !== null ? options.family : undefined;
      const usable = addresses.filter((a) => !family || a.family === family);
      if (usable.length === 0) return done(Object.assign(new Error(`${host}: no address of family ${family}`), { code: 'ENOTFOUND' }), '', 4);
      if (typeof options === 'object' && options !== null && options.all) return done(null, usable);
      const first = usable[0]!;
      done(null, first.address, first.family);
    });
  };
}

/**
 * undici Agent options for `public`: every new connection goes through `publicOnlyLookup`
 * (literal IP hosts skip DNS in net.connect, so they are checked here first). undici's Agent
 * does not follow redirects unless an interceptor is added; none is.
 */
export function guardedConnect(resolve?: Resolve): Agent.Options['connect'] {
  return { lookup: publicOnlyLookup(resolve) };
}

/** A literal IP host that is not public, for the check before connecting (net.connect does not call lookup for IPs). */
export function isBlockedLiteral(hostname: string): boolean {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(host) !== 0 && !isPublicAddress(host);
}

/** False for localhost names and literal non-public IP addresses. DNS names are not resolved here. */
export function isPublicHost(hostname: string): boolean {
  let host = hostname.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '' || host === 'localhost' || host.endsWith('.localhost')) return false;
  const version = isIP(host);
  if (version === 4) return isPublicIPv4(ipv4Octets(host));
  if (version === 6) {
    const words = ipv6Words(host);
    return words !== null && isPublicIPv6(words);
  }
  return true;
}

function ipv4Octets(address: string): number[] {
  return address.split('.').map(Number);
}

function isPublicIPv4(octets: readonly number[]): boolean {
  const [a = 0, b = 0, c = 0] = octets;
  return !(
    a === 0 || // "this network", including 0.0.0.0
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) || // carrier-grade NAT
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0 && c === 0) ||
    (a === 198 && (b === 18 || b === 19)) || // benchmarking
    a >= 224 // multicast, reserved, broadcast
  );
}

/** Eight 16-bit words of an address `isIP` accepted as IPv6 (with `::` and dotted IPv4 tails). */
function ipv6Words(address: string): number[] | null {
  const lastColon = address.lastIndexOf(':');
  const last = address.slice(lastColon + 1);
  let text = address;
  if (last.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = ipv4Octets(last);
    text = `${address.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest, ...more] = text.split('::');
  if (more.length > 0) return null;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((w) => Number.parseInt(w, 16)));
  const left = parse(head);
  if (rest === undefined) return left.length === 8 ? left : null;
  const right = parse(rest);
  const fill = 8 - left.length - right.length;
  return fill < 0 ? null : [...left, ...Array<number>(fill).fill(0), ...right];
}

function isPublicIPv6(w: readonly number[]): boolean {
  const [w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0] = w;
  const embedded = [w6 >> 8, w6 & 0xff, w7 >> 8, w7 & 0xff];
  const zeroPrefix = w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0 && w4 === 0;
  if (zeroPrefix && w5 === 0) return false; // ::, ::1 and deprecated IPv4-compatible ::a.b.c.d
  if (zeroPrefix && w5 === 0xffff) return isPublicIPv4(embedded); // IPv4-mapped
  if (w0 === 0x64 && w1 === 0xff9b && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0) {
    return isPublicIPv4(embedded); // NAT64
  }
  if (w0 === 0x2002) return isPublicIPv4([w1 >> 8, w1 & 0xff, w2 >> 8, w2 & 0xff]); // 6to4
  if ((w0 & 0xfe00) === 0xfc00) return false; // unique local fc00::/7
  if ((w0 & 0xffc0) === 0xfe80 || (w0 & 0xffc0) === 0xfec0) return false; // link-local, old site-local
  if ((w0 & 0xff00) === 0xff00) return false; // multicast
  return true;
}
