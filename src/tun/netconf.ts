// OS configuration of an interface through iproute2's `ip`: link state, MTU,
// addresses and routes. Each failure names the command and the kernel's words.
import { execFile } from 'node:child_process';
import { TunError } from './errors.js';

function ip(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _out, stderr) => {
      if (!err) return resolve();
      reject(new TunError('TUN_CONFIG_FAILED', `ip ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
    });
  });
}

export const setMtu = (ifname: string, mtu: number): Promise<void> => ip(['link', 'set', 'dev', ifname, 'mtu', String(mtu)]);
export const setLinkUp = (ifname: string, mtu: number): Promise<void> => ip(['link', 'set', 'dev', ifname, 'mtu', String(mtu), 'up']);
export const addAddress = (ifname: string, cidr: string): Promise<void> => ip(['addr', 'add', cidr, 'dev', ifname]);
export const addRoute = (ifname: string, cidr: string): Promise<void> => ip(['route', 'add', cidr, 'dev', ifname]);

