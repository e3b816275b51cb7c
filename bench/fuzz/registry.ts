// The fuzz targets by name. Adding one is a file exporting a FuzzTarget as its
// default, plus one line here. Loaded lazily, so a run of the pure parsers
// never loads the servers.
import type { FuzzTarget } from './harness.js';

export const TARGETS: Record<string, () => Promise<{ default: FuzzTarget }>> = {
  gso: () => import('./gso.js'),
  gro: () => import('./gro.js'),
  sealed: () => import('./sealed.js'),
  'relay-frames': () => import('./relay-frames.js'),
  'relay-server': () => import('./relay-server.js'),
  portmap: () => import('./portmap.js'),
  stun: () => import('./stun.js'),
  disco: () => import('./disco.js'),
  control: () => import('./control.js'),
  localapi: () => import('./localapi.js'),
  'map-parse': () => import('./map-parse.js'),
  dns: () => import('./dns.js'),
  policy: () => import('./policy.js'),
};

export async function loadTarget(name: string): Promise<FuzzTarget> {
  const load = TARGETS[name];
  if (!load) throw new Error(`no fuzz target "${name}": the targets are ${Object.keys(TARGETS).join(', ')}`);
  return (await load()).default;
}
