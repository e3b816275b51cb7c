// A batch of rtnetlink requests on one socket, one request and one ack each:
// every item is tried (as `ip -force` does), errnos an item names count as
// done, and the first failure is thrown as one TUN_CONFIG_FAILED line naming
// the item and the kernel's words (with the fix for EPERM).
import { TunError } from './errors.js';
import { bindLibc, IFNAMSIZ } from './libc.js';
import { NetlinkFormatError, RouteSocket, type RouteSocketOptions } from './netlink.js';

const EPERM = 1;

export interface RequestItem {
  /** the item as the error names it: `route 10.1.0.0/16 dev meshctl0` */
  text: string;
  /** the request with this sequence number */
  build: (seq: number) => Buffer;
  /** errnos that mean the item is already as wanted (EEXIST on an add, ESRCH on a delete) */
  ok: readonly number[];
}

/** Throws TUN_CONFIG_FAILED unless `ifname` can name an interface (1..15 bytes, no NUL). */
export function checkIfname(ifname: string): void {
  if (ifname.length === 0 || ifname.length >= IFNAMSIZ || ifname.includes('\0')) {
    throw new TunError('TUN_CONFIG_FAILED', `${JSON.stringify(ifname)} is not an interface name`);
  }
}

/** Sends each item and checks its ack; `what` names the batch when the socket itself cannot be opened. */
export async function runRequests(what: string, items: readonly RequestItem[], opts: RouteSocketOptions = {}): Promise<void> {
  if (items.length === 0) return;
  const libc = bindLibc();
  let sock: RouteSocket;
  try {
    sock = RouteSocket.open(opts);
  } catch (err) {
    throw new TunError('TUN_CONFIG_FAILED', `${what}: ${(err as Error).message}`);
  }
  const failures: string[] = [];
  try {
    for (const item of items) {
      const seq = sock.nextSeq();
      try {
        const ack = await sock.request(item.build(seq), seq);
        if (ack.errno === 0 || item.ok.includes(ack.errno)) continue;
        const hint = ack.errno === EPERM ? '; run as root or with CAP_NET_ADMIN' : '';
        failures.push(`${item.text}: ${libc.strerror(ack.errno)}${ack.message ? ` (${ack.message})` : ''}${hint}`);
      } catch (err) {
        failures.push(`${item.text}: ${(err as Error).message}`);
        if (!(err instanceof NetlinkFormatError)) break; // the socket itself failed: the rest would too
      }
    }
  } finally {
    sock.close();
  }
  if (failures.length > 0) throw new TunError('TUN_CONFIG_FAILED', failures[0]! + (failures.length > 1 ? ` (and ${failures.length - 1} more)` : ''));
}
