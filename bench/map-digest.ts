// A digest of a network map that does not depend on the order of object keys
// (control builds views in one order, the node's parser in another), so the
// bench can compare what a simulated node holds with what control would send it.
import { createHash } from 'node:crypto';
import type { NetworkMap } from '../src/netmap/types.js';

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function mapDigest(m: NetworkMap): string {
  return createHash('sha256').update(canonical(m)).digest('base64');
}
