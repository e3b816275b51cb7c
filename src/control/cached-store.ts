// A store whose writes keep the registry's in-memory copy current: each write
// (and each transaction, once it commits) resolves only after the copy holds
// what it changed, so whoever broadcasts after awaiting a change builds maps
// that show it. Only what a write touched is read again: an endpoint update
// re-reads one node, not the network. Reads pass straight through.
import type { ControlStore, StoreTx } from './store.js';

/** What writes touched: node ids (or every node), and which other parts of the copy. */
export interface Touched {
  nodes: Set<number> | 'all';
  devices: boolean;
  approvals: boolean;
  dns: boolean;
  meta: boolean;
}

export const nothingTouched = (): Touched => ({ nodes: new Set(), devices: false, approvals: false, dns: false, meta: false });
export const everythingTouched = (): Touched => ({ nodes: 'all', devices: true, approvals: true, dns: true, meta: true });

const isEmpty = (t: Touched): boolean => t.nodes !== 'all' && t.nodes.size === 0 && !t.devices && !t.approvals && !t.dns && !t.meta;

/** Records in `t` what the write `method` with `args` (and its result) touches. */
function record(t: Touched, method: string, args: unknown[], result: unknown): void {
  const node = (id: unknown): void => {
    if (t.nodes !== 'all' && typeof id === 'number') t.nodes.add(id);
  };
  switch (method) {
    case 'setMeta':
      t.meta = true;
      break;
    case 'insertNode':
      node((result as { id: number }).id);
      break;
    case 'updateNode':
      node(args[0]);
      break;
    case 'deleteNode':
      node(args[0]);
      // its approvals and devices go with it
      t.approvals = true;
      t.devices = true;
      break;
    case 'putDnsRoute':
    case 'deleteDnsRoute':
    case 'insertDnsRecord':
    case 'deleteDnsRecords':
      t.dns = true;
      break;
    case 'approveRoute':
    case 'removeRouteApproval':
      t.approvals = true;
      break;
    case 'insertDevice':
    case 'deleteDevice':
      t.devices = true;
      break;
  }
}

const WRITES: ReadonlySet<string> = new Set([
  'setMeta',
  'insertNode',
  'updateNode',
  'deleteNode',
  'putDnsRoute',
  'deleteDnsRoute',
  'insertDnsRecord',
  'deleteDnsRecords',
  'approveRoute',
  'removeRouteApproval',
  'insertDevice',
  'deleteDevice',
]);

/** A handle whose writes are recorded in `t` (the transaction's handle, or the store outside one). */
function recording<S extends StoreTx>(inner: S, t: Touched): S {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || typeof v !== 'function') return v;
      const f = v as (...a: unknown[]) => unknown;
      if (prop === 'transaction') {
        return (fn: (tx: StoreTx) => Promise<unknown>) => f.call(target, (tx: StoreTx) => fn(recording(tx, t)));
      }
      if (!WRITES.has(prop)) return f.bind(target);
      return async (...args: unknown[]) => {
        const out = await f.apply(target, args);
        record(t, prop, args, out);
        return out;
      };
    },
  });
}

/** `store`, with `apply` called (and awaited) with what each write or committed transaction touched. */
export function cachedStore(store: ControlStore, apply: (t: Touched) => Promise<void>): ControlStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || typeof v !== 'function') return v;
      const f = v as (...a: unknown[]) => unknown;
      if (prop !== 'transaction' && !WRITES.has(prop)) return f.bind(target);
      return async (...args: unknown[]) => {
        const t = nothingTouched();
        const out = await (recording(target, t) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[prop]!(...args);
        if (!isEmpty(t)) await apply(t);
        return out;
      };
    },
  });
}
