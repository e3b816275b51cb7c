// The endpoints a node reports to control: every address of its interfaces
// with the WireGuard port. On a LAN these are how peers reach each other
// directly. The engine host reports them with the STUN-mapped and port-mapped
// endpoints netcheck learns.
import { networkInterfaces } from 'node:os';

function isMeshAddress(a: string): boolean {
  const o = a.split('.').map(Number);
  return o.length === 4 && o[0] === 100 && o[1]! >= 64 && o[1]! < 128;
}

export function localEndpoints(port: number, meshIfname: string, meshPrefix6: string | null): string[] {
  if (!port) return [];
  const out: string[] = [];
  const prefix6 = meshPrefix6?.replace(/::\/48$/, ':') ?? null;
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name === meshIfname) continue;
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4') {
        if (!isMeshAddress(a.address)) out.push(`${a.address}:${port}`);
      } else if (!a.address.startsWith('fe80') && !(prefix6 && a.address.startsWith(prefix6))) {
        out.push(`[${a.address}]:${port}`);
      }
    }
  }
  // IPv4 first: it is what most LANs route
  return out.sort((x, y) => Number(x.startsWith('[')) - Number(y.startsWith('[')));
}

/**
 * The endpoints a node reports to control: local addresses first, then what
 * netcheck learned (STUN-mapped, port-mapped), each once, at most `max`
 * (control refuses a longer list). On a host with more addresses than fit,
 * the last local ones give way: the learned ones are what works from outside.
 */
export function endpointsToReport(local: string[], learned: string[], max: number): string[] {
  const all = [...new Set([...local, ...learned])];
  if (all.length <= max) return all;
  const keep = new Set(learned.slice(0, max));
  let spare = max - keep.size;
  return all.filter((e) => keep.has(e) || spare-- > 0);
}
