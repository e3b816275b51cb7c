// SNAT of forwarded subnet traffic: an nftables table of meshctl's own,
// `inet meshctl-subnets`, that marks what arrives from the mesh interface and
// is forwarded, and masquerades it toward the advertised prefixes, so hosts on
// the LAN answer the router's own LAN address and need no route back into the
// mesh. The ruleset is built as nft's JSON from typed values (JSON.stringify;
// no text from data reaches nft's parser) and applied with nft's JSON input in
// one transaction that replaces the whole table. The JSON goes to nft as its
// one argument (`nft -j JSON`): Node's stdio pipes are sockets, which nft's
// `-f -` cannot open as /dev/stdin. The argument stays far below the kernel's
// 128 KiB per-argument limit: at most 64 prefixes of ~400 bytes each.
import { spawn } from 'node:child_process';
import type { IpPrefix } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';
import { requireTool } from '../util/tools.js';

export const SNAT_TABLE = 'meshctl-subnets';
/** The mark on a packet that came in on the mesh interface and is being forwarded (Tailscale's subnet-route mark). */
export const FORWARDED_MARK = 0x40000;
/** The bits of the packet mark that are meshctl's (util/marked-socket.ts MESH_FWMARK_MASK). */
const MARK_MASK = 0xff0000;
/** nft answers in milliseconds; a wedged nft must not hold the daemon's reconcile forever. */
export const NFT_TIMEOUT_MS = 10_000;
/** nft's error output kept for the one-line error. */
const NFT_STDERR_MAX_CHARS = 400;

type NftCommand = Record<string, unknown>;

const table = { family: 'inet', name: SNAT_TABLE };

/** Deleting the table whether or not it exists: add (a no-op when present), then delete, in one transaction. */
function deleteTable(): NftCommand[] {
  return [{ add: { table } }, { delete: { table } }];
}

/**
 * The whole table for a router on `ifname` forwarding to `prefixes`: a forward chain that marks packets from the
 * mesh interface, and a nat postrouting chain that masquerades marked packets leaving another interface toward one
 * of the prefixes.
 */
export function snatRuleset(ifname: string, prefixes: readonly IpPrefix[]): { nftables: NftCommand[] } {
  const mark = { meta: { key: 'mark' } };
  const cmds: NftCommand[] = [
    ...deleteTable(),
    { add: { table } },
    { add: { chain: { ...table, table: SNAT_TABLE, name: 'forward', type: 'filter', hook: 'forward', prio: -1, policy: 'accept' } } },
    { add: { chain: { ...table, table: SNAT_TABLE, name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } } },
    {
      add: {
        rule: {
          family: 'inet',
          table: SNAT_TABLE,
          chain: 'forward',
          expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: ifname } }, { mangle: { key: mark, value: { '|': [mark, FORWARDED_MARK] } } }],
        },
      },
    },
  ];
  for (const p of prefixes) {
    // a default route (an exit node): any destination of the family, IPv6 included (NAT66)
    const dest =
      p.bits === 0
        ? { match: { op: '==', left: { meta: { key: 'nfproto' } }, right: p.address.family === 4 ? 'ipv4' : 'ipv6' } }
        : {
            match: {
              op: '==',
              left: { payload: { protocol: p.address.family === 4 ? 'ip' : 'ip6', field: 'daddr' } },
              right: { prefix: { addr: p.address.text, len: p.bits } },
            },
          };
    cmds.push({
      add: {
        rule: {
          family: 'inet',
          table: SNAT_TABLE,
          chain: 'postrouting',
          expr: [
            { match: { op: '==', left: { '&': [mark, MARK_MASK] }, right: FORWARDED_MARK } },
            { match: { op: '!=', left: { meta: { key: 'oifname' } }, right: ifname } },
            dest,
            { masquerade: null },
          ],
        },
      },
    });
  }
  // a table's `delete` deletes its contents with it: the chains are recreated above
  return { nftables: cmds };
}

/** The ruleset that removes the table (nothing else of the host's is touched). */
export function snatRemoval(): { nftables: NftCommand[] } {
  return { nftables: deleteTable() };
}

/** Runs `nft -j RULESET`; rejects with one line naming nft's complaint. */
export function runNft(ruleset: object, timeoutMs = NFT_TIMEOUT_MS): Promise<void> {
  try {
    requireTool('nft');
  } catch (err) {
    return Promise.reject(new Error(`${(err as Error).message}, or run with --snat-subnet-routes=false`));
  }
  return new Promise((resolve, reject) => {
    const p = spawn('nft', ['-j', JSON.stringify(ruleset)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stderr.on('data', (d: Buffer) => {
      if (err.length < NFT_STDERR_MAX_CHARS) err += d.toString('utf8');
    });
    p.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      reject(new Error(e.code === 'ENOENT' ? 'nft not found: install nftables, or run with --snat-subnet-routes=false' : `running nft: ${e.message}`));
    });
    p.on('close', (code, signal) => {
      clearTimeout(t);
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `nft ${signal ? `killed (${signal}) after ${timeoutMs} ms` : `failed (${code})`}: ${terminalSafe(err.trim(), NFT_STDERR_MAX_CHARS) || 'no message'}`,
          ),
        );
    });
  });
}
