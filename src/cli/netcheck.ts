// `meshctl netcheck`: the network report from the daemon's own socket.
import type { Command } from 'commander';
import { LOCALAPI, type NetcheckResponse } from '../localapi/types.js';
import { clientOf, printJson, socketOf } from './context.js';
import { fromApi } from './errors.js';
import { terminalSafe } from '../util/text.js';

export function formatNetcheck(r: NetcheckResponse): string {
  const t = (v: unknown): string => terminalSafe(v);
  const lines = ['Report:', `\t* UDP: ${r.udp}`, `\t* IPv4: ${r.ipv4 ? `yes, ${t(r.ipv4)}` : 'no'}`];
  if (r.ipv6 !== undefined) lines.push(`\t* IPv6: ${r.ipv6 ? `yes, ${t(r.ipv6)}` : 'no'}`);
  lines.push(`\t* MappingVariesByDestIP: ${r.mappingVariesByDestIP === null ? 'unknown (needs two STUN servers)' : r.mappingVariesByDestIP}`);
  lines.push(`\t* PortMapping: ${r.portMapping.length ? r.portMapping.map(t).join(', ') : 'none'}`);
  const home = r.homeRegion && r.homeRegion !== r.preferredRegion ? ` (home stays ${t(r.homeRegion)})` : '';
  lines.push(`\t* Nearest relay: ${r.preferredRegion ? t(r.preferredRegion) : 'none reachable'}${home}`);
  lines.push('\t* Relay latency:');
  const entries = Object.entries(r.regionLatencyMs).sort((a, b) => a[1] - b[1]);
  for (const [code, ms] of entries) lines.push(`\t\t- ${t(code)}: ${Number(ms).toFixed(1)}ms`);
  for (const rel of r.relays) if (!Object.hasOwn(r.regionLatencyMs, rel.region)) lines.push(`\t\t- ${t(rel.region)}: unreachable`);
  return lines.join('\n') + '\n';
}

export function registerNetcheck(program: Command): void {
  program
    .command('netcheck')
    .description('report UDP reachability, the NAT mapping, port mapping and relay latency')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await clientOf(cmd)
        .get<NetcheckResponse>(LOCALAPI.netcheck)
        .catch((e: unknown) => Promise.reject(fromApi(e, socketOf(cmd))));
      if (o.json) printJson(r);
      else process.stdout.write(formatNetcheck(r));
    });
}
