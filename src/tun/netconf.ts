// OS configuration of an interface: link state and MTU through ioctls on a
// socket; addresses and routes through rtnetlink (./netlink.ts), built from
// typed prefixes and the interface's index, so no text made from data ever
// reaches another program. No process is started (an `ip` process cost `up`
// 10–25 ms on a small machine). Each failure names the item and the kernel's words.
import type { IpPrefix } from '../util/netaddr.js';
import { TunError } from './errors.js';
import { delAddressMessage, hostBitsSet, newAddressMessage, newRouteMessage, type RouteSocketOptions } from './netlink.js';
import { checkIfname, runRequests } from './requests.js';
import { AF_INET, bindLibc, IFF_UP, IFNAMSIZ, ifreq, SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFMTU, SOCK_DGRAM_CLOEXEC } from './libc.js';

const EEXIST = 17;
const EADDRNOTAVAIL = 99;
const ENODEV = 19;

function errnoHint(errno: number): string {
  if (errno === 1) return 'run as root or with CAP_NET_ADMIN';
  if (errno === 19) return 'no such interface';
  if (errno === 22) return 'the kernel refused the value';
  return `errno ${errno}`;
}

/** One ioctl on an AF_INET socket with a struct ifreq naming the interface; `fill` writes ifr_mtu or ifr_flags. */
function ifreqIoctl(ifname: string, req: number, what: string, fill?: (ifr: Buffer) => void): Buffer {
  const libc = bindLibc();
  const ifr = ifreq(ifname);
  fill?.(ifr);
  const sock = libc.socket(AF_INET, SOCK_DGRAM_CLOEXEC, 0);
  if (sock < 0) throw new TunError('TUN_CONFIG_FAILED', `${what} on ${ifname}: cannot open a socket (${errnoHint(libc.errno())})`);
  try {
    if (libc.ioctl(sock, req, ifr) !== 0) throw new TunError('TUN_CONFIG_FAILED', `${what} on ${ifname}: ${errnoHint(libc.errno())}`);
    return ifr;
  } finally {
    libc.close(sock);
  }
}

export async function setMtu(ifname: string, mtu: number): Promise<void> {
  ifreqIoctl(ifname, SIOCSIFMTU, `setting MTU ${mtu}`, (ifr) => ifr.writeInt32LE(mtu, IFNAMSIZ));
}

export async function setLinkUp(ifname: string, mtu: number): Promise<void> {
  await setMtu(ifname, mtu);
  const flags = ifreqIoctl(ifname, SIOCGIFFLAGS, 'reading link flags').readUInt16LE(IFNAMSIZ);
  if (flags & IFF_UP) return;
  ifreqIoctl(ifname, SIOCSIFFLAGS, 'setting the link up', (ifr) => ifr.writeUInt16LE(flags | IFF_UP, IFNAMSIZ));
}

/** Most addresses plus routes one call configures: the daemon gives two or three of each; this bounds the time spent. */
export const MAX_NETCONF_ITEMS = 64;

/**
 * Gives the interface these addresses and routes over rtnetlink, one request
 * and one ack each. An address is replaced (a repeat succeeds); a route is only
 * added: when the kernel answers EEXIST (this or another interface already
 * routes the prefix, e.g. a second daemon in the same namespace) that route
 * stays as it is and it is not an error. Every item is tried, as `ip -force`
 * did; the first failure is thrown as one TUN_CONFIG_FAILED line naming the
 * address or route and the kernel's words.
 */
export async function addAddressesAndRoutes(
  ifname: string,
  addresses: readonly IpPrefix[],
  routes: readonly IpPrefix[],
  opts: RouteSocketOptions = {},
): Promise<void> {
  if (addresses.length + routes.length === 0) return;
  if (addresses.length + routes.length > MAX_NETCONF_ITEMS) {
    throw new TunError('TUN_CONFIG_FAILED', `${addresses.length} addresses and ${routes.length} routes for ${ifname}: more than ${MAX_NETCONF_ITEMS} at once`);
  }
  for (const r of routes) {
    if (hostBitsSet(r)) {
      throw new TunError('TUN_CONFIG_FAILED', `route ${r.text} dev ${ifname}: the address has bits set after /${r.bits}; give the network address`);
    }
  }
  checkIfname(ifname);
  const libc = bindLibc();
  const ifindex = libc.ifNameToIndex(ifname);
  if (ifindex === 0) throw new TunError('TUN_CONFIG_FAILED', `addresses and routes on ${ifname}: ${errnoHint(libc.errno())}`);
  await runRequests(
    `addresses and routes on ${ifname}`,
    [
      ...addresses.map((p) => ({ text: `address ${p.text} dev ${ifname}`, build: (seq: number) => newAddressMessage(seq, ifindex, p), ok: [] })),
      ...routes.map((p) => ({ text: `route ${p.text} dev ${ifname}`, build: (seq: number) => newRouteMessage(seq, ifindex, p), ok: [EEXIST] })),
    ],
    opts,
  );
}

/**
 * Takes these addresses off the interface over rtnetlink, one request and one
 * ack each. An address that is not there (EADDRNOTAVAIL) and an interface that
 * is gone already count as done: the caller wants them absent. The first other
 * failure is thrown as one TUN_CONFIG_FAILED line, after every item was tried.
 */
export async function removeAddresses(ifname: string, addresses: readonly IpPrefix[], opts: RouteSocketOptions = {}): Promise<void> {
  if (addresses.length === 0) return;
  if (addresses.length > MAX_NETCONF_ITEMS)
    throw new TunError('TUN_CONFIG_FAILED', `${addresses.length} addresses for ${ifname}: more than ${MAX_NETCONF_ITEMS} at once`);
  checkIfname(ifname);
  const ifindex = bindLibc().ifNameToIndex(ifname);
  if (ifindex === 0) return; // the interface is gone, and its addresses with it
  await runRequests(
    `removing addresses from ${ifname}`,
    addresses.map((p) => ({
      text: `removing address ${p.text} dev ${ifname}`,
      build: (seq: number) => delAddressMessage(seq, ifindex, p),
      ok: [EADDRNOTAVAIL, ENODEV],
    })),
    opts,
  );
}
