// `meshctl ip [-4|-6] [PEER]` and `meshctl whois IP`.
import type { Command } from 'commander';
import { LOCALAPI, type Status, type WhoisResponse } from '../localapi/types.js';
import { clientOf, printJson, socketOf } from './context.js';
import { CliError, fromApi } from './errors.js';
import { terminalSafe } from '../util/text.js';

/** `meshctl whois` as text; every field came from the network, so each is made terminal-safe. */
export function formatWhois(w: WhoisResponse): string {
  const ips = w.ips.map((a) => terminalSafe(a)).join(', ');
  const name = `${terminalSafe(w.name)}${w.self ? ' (this node)' : ''}`;
  const owner = w.user !== undefined ? `  User:     ${terminalSafe(w.user)}\n` : '';
  const tags = w.tags?.length ? `  Tags:     ${w.tags.map((t) => terminalSafe(t)).join(', ')}\n` : '';
  return `Machine:\n  Name:     ${name}\n  OS:       ${terminalSafe(w.os)}\n  IPs:      ${ips}\n  Node key: ${terminalSafe(w.nodeKey)}\n${owner}${tags}`;
}

export function registerIp(program: Command): void {
  program
    .command('ip [peer]')
    .description("print this node's mesh addresses, or a peer's")
    .option('-4', 'only the IPv4 address')
    .option('-6', 'only the IPv6 address')
    .option('--json', 'print as JSON')
    .action(async (peer: string | undefined, o: { 4?: boolean; 6?: boolean; json?: boolean }, cmd: Command) => {
      if (o[4] && o[6]) throw new CliError('USAGE', '-4 and -6 exclude each other');
      const s = await clientOf(cmd)
        .get<Status>(LOCALAPI.status)
        .catch((e: unknown) => Promise.reject(fromApi(e, socketOf(cmd))));
      let ips: string[];
      if (peer) {
        // a name, a full name (NAME.suffix, with or without the root's dot) or an address
        const ref = peer.toLowerCase().replace(/\.$/, '');
        const p = s.peers.find((x) => x.name === ref || x.dnsName === ref || x.ips.includes(peer));
        if (!p) throw new CliError('NOT_FOUND', `no peer "${peer}" in the network: see \`meshctl status\``);
        ips = p.ips;
      } else {
        if (!s.self) throw new CliError('FAILURE', 'this node has no addresses yet: run `meshctl up`');
        ips = s.self.ips;
      }
      if (o[4]) ips = ips.filter((a) => !a.includes(':'));
      if (o[6]) ips = ips.filter((a) => a.includes(':'));
      if (o.json) printJson(ips);
      else process.stdout.write(ips.map((a) => terminalSafe(a) + '\n').join(''));
    });

  program
    .command('whois <ip>')
    .description('show which node owns a mesh address')
    .option('--json', 'print as JSON')
    .action(async (ip: string, o: { json?: boolean }, cmd: Command) => {
      const w = await clientOf(cmd)
        .get<WhoisResponse>(`${LOCALAPI.whois}?ip=${encodeURIComponent(ip)}`)
        .catch((e: unknown) => Promise.reject(fromApi(e, socketOf(cmd))));
      if (o.json) printJson(w);
      else process.stdout.write(formatWhois(w));
    });
}
