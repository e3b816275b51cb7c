// OS configuration of an interface: link state and MTU through ioctls on a
// socket; addresses and routes through iproute2's `ip`, together in one
// `ip -batch` run. Each `ip` process costs `up` 10–25 ms on a small machine
// (docs/performance.md, "Tenth session"), and `up` used to start six. Each
// failure names the command and the kernel's words.
import { execFile } from 'node:child_process';
import { TunError } from './errors.js';
import { AF_INET, bindLibc, IFF_UP, IFNAMSIZ, ifreq, SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFMTU, SOCK_DGRAM_CLOEXEC } from './libc.js';

function ip(args: string[], stdin?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('ip', args, { timeout: 10_000 }, (err, _out, stderr) => {
      if (!err) return resolve();
      reject(new TunError('TUN_CONFIG_FAILED', `ip ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}

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

/**
 * Gives the interface these addresses and routes, in one `ip` process. An
 * address is replaced (a repeat succeeds); a route is only added: when another
 * interface already routes the prefix (a second daemon in the same namespace),
 * that route stays, as with `ip route add`, rather than being taken over.
 */
export async function addAddressesAndRoutes(ifname: string, addresses: string[], routes: string[]): Promise<void> {
  const lines = [...addresses.map((a) => `addr replace ${a} dev ${ifname}`), ...routes.map((r) => `route add ${r} dev ${ifname}`)];
  if (lines.length === 0) return;
  try {
    await ip(['-force', '-batch', '-'], lines.join('\n') + '\n');
  } catch (err) {
    const text = (err as Error).message.replace(/^ip -force -batch -: /, '');
    // with -force ip runs every line and reports each failure as its words, then "Command failed -:N"
    const failures = [...text.matchAll(/([^]*?)\n?Command failed -:(\d+)\n?/g)].map((m) => ({ cause: m[1]!.trim().split('\n').pop()!, line: lines[Number(m[2]) - 1] }));
    const real = failures.filter((f) => !(f.line?.startsWith('route add') && /File exists/.test(f.cause)));
    if (failures.length > 0 && real.length === 0) return;
    const first = real[0];
    throw new TunError('TUN_CONFIG_FAILED', first?.line ? `ip ${first.line}: ${first.cause}` : `ip -batch (${lines.join('; ')}): ${text.split('\n')[0]}`);
  }
}
