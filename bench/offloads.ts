// Which offloads an interface has on, as `ethtool -k` shows them, read with the
// ethtool ioctl (this machine has no ethtool command and sysfs shows no
// features): the feature names (ETHTOOL_GSTRINGS of ETH_SS_FEATURES) and their
// active bits (ETHTOOL_GFEATURES). The bench prints the TUN offloads of each
// engine once, since the reference is upstream wireguard-go with TSO, USO and
// GRO on and Debian's build has none of them.
// Run as a program (`node dist/bench/offloads.js IFNAME`) it prints them as
// JSON; `offloadsIn` runs it inside a namespace.
import { fileURLToPath } from 'node:url';
import { must } from '../test/helpers/netns.js';
import { koffi } from '../src/util/koffi.js';
import { AF_INET, bindLibc, ifreq, SOCK_DGRAM_CLOEXEC } from '../src/tun/libc.js';

const SIOCETHTOOL = 0x8946;
const ETHTOOL_GSTRINGS = 0x1b;
const ETHTOOL_GSSET_INFO = 0x37;
const ETHTOOL_GFEATURES = 0x3a;
const ETH_SS_FEATURES = 4;
const ETH_GSTRING_LEN = 32;
/** the kernel has ~70 netdev features; far more means a reply this code does not understand */
const MAX_FEATURES = 1024;

/** The offloads the bench reports, by their `ethtool -k` names. */
export const REPORTED_FEATURES = ['tx-checksum-ip-generic', 'tcp-segmentation-offload', 'tx-tcp-segmentation', 'tx-udp-segmentation', 'rx-gro'] as const;

/**
 * Feature name → active, from ETHTOOL_GSTRINGS' names (`count` NUL-padded 32-byte strings) and
 * ETHTOOL_GFEATURES' blocks (4 little-endian u32 each: available, requested, active, never_changed;
 * feature i is bit i % 32 of block i / 32).
 */
export function parseFeatures(names: Uint8Array, count: number, blocks: Uint8Array): Map<string, boolean> {
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_FEATURES) throw new Error(`ethtool: ${count} features is not a plausible count`);
  if (names.length < count * ETH_GSTRING_LEN || blocks.length < Math.ceil(count / 32) * 16) throw new Error('ethtool: reply shorter than its feature count');
  const dv = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const out = new Map<string, boolean>();
  for (let i = 0; i < count; i++) {
    const raw = names.subarray(i * ETH_GSTRING_LEN, (i + 1) * ETH_GSTRING_LEN);
    const end = raw.indexOf(0);
    const name = Buffer.from(raw.subarray(0, end < 0 ? raw.length : end)).toString('latin1');
    const active = dv.getUint32(Math.floor(i / 32) * 16 + 8, true);
    if (name) out.set(name, ((active >>> (i % 32)) & 1) === 1);
  }
  // ethtool -k shows this one as the OR of the TSO kinds
  if (!out.has('tcp-segmentation-offload')) out.set('tcp-segmentation-offload', !!(out.get('tx-tcp-segmentation') || out.get('tx-tcp6-segmentation')));
  return out;
}

/** One SIOCETHTOOL on `ifname` with a command struct of `size` bytes whose head is `head`; returns the struct after the call. */
function ethtool(sock: number, ifname: string, head: Uint8Array, size: number): Uint8Array {
  const type = koffi.array('uint8', size);
  const p = koffi.alloc('uint8', size);
  try {
    const init = new Uint8Array(size);
    init.set(head);
    koffi.encode(p, type, init);
    const ifr = ifreq(ifname);
    ifr.writeBigUInt64LE(BigInt(koffi.address(p)), 16); // ifr_data: the command struct
    const libc = bindLibc();
    if (libc.ioctl(sock, SIOCETHTOOL, ifr) !== 0) throw new Error(`ethtool ioctl on ${ifname}: ${libc.strerror(libc.errno())}`);
    return Uint8Array.from(koffi.decode(p, type) as ArrayLike<number>);
  } finally {
    koffi.free(p);
  }
}

const u32s = (...xs: number[]): Uint8Array => new Uint8Array(new Uint32Array(xs).buffer);

/** Every feature of `ifname` in this process's namespace, as `ethtool -k` lists them. */
export function interfaceFeatures(ifname: string): Map<string, boolean> {
  if (process.arch !== 'x64' && process.arch !== 'arm64') throw new Error('reading offloads assumes a 64-bit little-endian ifreq');
  const libc = bindLibc();
  const sock = libc.socket(AF_INET, SOCK_DGRAM_CLOEXEC, 0);
  if (sock < 0) throw new Error(`cannot open a socket: ${libc.strerror(libc.errno())}`);
  try {
    // ethtool_sset_info: cmd, reserved, u64 sset_mask, then one u32 per set asked
    const info = ethtool(sock, ifname, u32s(ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0), 20);
    const count = new DataView(info.buffer).getUint32(16, true);
    if (count > MAX_FEATURES) throw new Error(`ethtool: ${count} features is not a plausible count`);
    const names = ethtool(sock, ifname, u32s(ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count), 12 + count * ETH_GSTRING_LEN).subarray(12);
    const nBlocks = Math.ceil(count / 32);
    const blocks = ethtool(sock, ifname, u32s(ETHTOOL_GFEATURES, nBlocks), 8 + nBlocks * 16).subarray(8);
    return parseFeatures(names, count, blocks);
  } finally {
    libc.close(sock);
  }
}

/** The reported offloads of `ifname` inside namespace `ns`, as "name on|off, …", or why they could not be read. */
export async function offloadsIn(ns: string, ifname: string): Promise<string> {
  try {
    const out = await must('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), ifname], 10_000);
    const all = JSON.parse(out) as Record<string, boolean>;
    return REPORTED_FEATURES.filter((n) => n in all)
      .map((n) => `${n} ${all[n] ? 'on' : 'off'}`)
      .join(', ');
  } catch (err) {
    return `not read (${(err as Error).message.split('\n')[0]})`;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ifname = process.argv[2] ?? '';
  if (!/^[\w.-]{1,15}$/.test(ifname)) {
    console.error('usage: node dist/bench/offloads.js IFNAME (an interface name, at most 15 characters)');
    process.exit(2);
  }
  console.log(JSON.stringify(Object.fromEntries(interfaceFeatures(ifname))));
}
