// Keeps one control replica in step with the others on a shared PostgreSQL
// database. Changes: every committed write appended rows to the change log
// (pg-store.ts); a NOTIFY wakes this replica, which reads the log from the
// last position it read and re-reads only what those rows name (a node, or the
// devices, approvals, DNS or meta). A lost notification is caught up at the next
// one, at the listener's reconnect, or at the periodic tick; a position the
// pruned log no longer reaches means a whole re-read. Presence: each replica
// holds a lease in the database for every node streaming from it, renewed every
// tick; a node another replica holds a live lease on shows online here, and a
// killed replica's leases expire after their time to live.
import { everythingTouched, nothingTouched, type Touched } from './cached-store.js';
import type { ChangesSince, PresenceLease } from './pg-store.js';
import type { Registry } from './registry.js';

/**
 * A lease outlives three renewals, so one slow tick (a busy database, a GC
 * pause) does not show a node offline; a killed replica's nodes show offline
 * after at most TTL + one tick (20 s), while they reconnect to a live replica.
 */
export const PRESENCE_LEASE_TTL_MS = 15_000;
/** Leases are renewed, the others' leases read and the change log checked this often. */
export const PRESENCE_RENEW_MS = 5000;
/** Change-log rows read per query: a few hundred KB; a longer backlog is read in several. */
export const CHANGE_READ_BATCH = 2000;
/** A backlog touching more nodes than this is read as the whole network (one query beats a thousand). */
export const MAX_NODES_PER_INCREMENTAL_READ = 500;

export interface ReplicaLimits {
  leaseTtlMs: number;
  renewMs: number;
  readBatch: number;
}

/** What the sync needs of the store (PgStore). */
export interface ReplicaStore {
  readonly instance: string;
  /** calls `onChange` on another replica's commit and after its listener reconnects; `log` gets a line when it is lost and when back */
  watch(onChange: () => void, log: (msg: string) => void): Promise<void>;
  changeHead(): Promise<number>;
  changesSince(since: number, limit: number): Promise<ChangesSince>;
  updatePresence(claim: readonly number[], release: readonly number[], ttlMs: number): Promise<void>;
  renewPresence(held: readonly number[], ttlMs: number): Promise<void>;
  listPresence(): Promise<{ nowMs: number; leases: PresenceLease[] }>;
}

export interface ReplicaHooks {
  registry: Registry;
  /** the nodes streaming from this replica now */
  held(): number[];
  /** the copy changed (another replica's write, a lease came or went): push maps; `touched` says which nodes' records were re-read */
  applied(touched: Touched): void;
  log(msg: string): void;
}

export function isReplicaStore(s: object): s is ReplicaStore {
  return typeof (s as Partial<ReplicaStore>).changesSince === 'function' && typeof (s as Partial<ReplicaStore>).updatePresence === 'function';
}

export class ReplicaSync {
  private position = 0;
  private reading = false;
  private again = false;
  /** node id → the lease another replica holds on it (only live ones, as last read) */
  private remote = new Map<number, PresenceLease>();
  private readonly claims = new Set<number>();
  private readonly releases = new Set<number>();
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  readonly limits: ReplicaLimits;
  /** figures for tests and logs: change rows applied, whole re-reads */
  readonly stats = { applied: 0, fullReads: 0 };

  constructor(
    private readonly store: ReplicaStore,
    private readonly hooks: ReplicaHooks,
    limits: Partial<ReplicaLimits> = {},
  ) {
    this.limits = { leaseTtlMs: PRESENCE_LEASE_TTL_MS, renewMs: PRESENCE_RENEW_MS, readBatch: CHANGE_READ_BATCH, ...limits };
  }

  /**
   * Takes the log's head, then reads the network whole once (what the registry
   * read before this may predate the head), then follows the log from there.
   */
  async start(): Promise<void> {
    this.position = await this.store.changeHead();
    await this.hooks.registry.refresh(everythingTouched());
    await this.store.watch(() => this.wake(), this.hooks.log);
    await this.readPresence();
    this.timer = setInterval(() => void this.tick(), this.limits.renewMs);
    this.timer.unref();
  }

  /** Stops following, and drops this replica's leases on `held` so the others show those nodes offline now. */
  async shutdown(held: readonly number[]): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.settled();
    if (held.length > 0) await this.store.updatePresence([], held, this.limits.leaseTtlMs).catch(() => {});
  }

  /** Another replica holds a live lease on this node (it streams from there). */
  online(id: number): boolean {
    return this.remote.has(id);
  }

  /** The nodes that stream from other replicas now. */
  remoteOnline(): IterableIterator<number> {
    return this.remote.keys();
  }

  /** Node `id` opened a map stream here: its lease is taken (batched with others in one transaction). */
  claim(id: number): void {
    this.releases.delete(id);
    this.claims.add(id);
    this.flush();
  }

  /** Node `id` has no stream here any more: this replica's lease on it goes. */
  release(id: number): void {
    this.claims.delete(id);
    this.releases.add(id);
    this.flush();
  }

  /** Waits for the presence writes asked for so far (tests, stop). */
  async settled(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private flush(): void {
    if (this.flushing || this.stopped) return;
    this.flushing = (async () => {
      while (this.claims.size > 0 || this.releases.size > 0) {
        const claim = [...this.claims];
        const release = [...this.releases];
        this.claims.clear();
        this.releases.clear();
        try {
          await this.store.updatePresence(claim, release, this.limits.leaseTtlMs);
        } catch (err) {
          // the tick's renewal writes the leases of the streams held then
          this.hooks.log(`recording presence failed: ${(err as Error).message}`);
          return;
        }
      }
    })().finally(() => (this.flushing = null));
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.store.renewPresence(this.hooks.held(), this.limits.leaseTtlMs);
      if (await this.readPresence()) this.hooks.applied(nothingTouched());
    } catch (err) {
      this.hooks.log(`renewing presence failed: ${(err as Error).message}`);
    }
    // a wake-up lost while the listener reconnected is caught up here at the latest
    this.wake();
  }

  /** Reads the other replicas' live leases; true when the set of nodes online elsewhere changed. */
  private async readPresence(): Promise<boolean> {
    const { leases } = await this.store.listPresence();
    const next = new Map<number, PresenceLease>();
    for (const l of leases) if (l.replica !== this.store.instance) next.set(l.nodeId, l);
    const same = next.size === this.remote.size && [...next.keys()].every((id) => this.remote.has(id));
    this.remote = next;
    return !same;
  }

  /** Reads the change log from the last position; one read at a time, one more if woken meanwhile. */
  wake(): void {
    if (this.stopped) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    void (async () => {
      do {
        this.again = false;
        await this.catchUp();
      } while (this.again && !this.stopped);
    })()
      .catch((err: Error) => this.hooks.log(`reading the change log failed: ${err.message}`))
      .finally(() => (this.reading = false));
  }

  /** Applies every change committed since the position, in batches. */
  private async catchUp(): Promise<void> {
    for (;;) {
      const r = await this.store.changesSince(this.position, this.limits.readBatch);
      if (r.behind) {
        // the log was pruned past our position: the whole network, then on from the head read before it
        this.hooks.log(`change log no longer reaches back to ${this.position} (head ${r.head}): reading the whole network`);
        await this.hooks.registry.refresh(everythingTouched());
        await this.readPresence();
        this.position = r.head;
        this.stats.fullReads++;
        this.hooks.applied(everythingTouched());
        return;
      }
      if (r.changes.length === 0) return;
      const t = nothingTouched();
      let presence = false;
      for (const c of r.changes) {
        // this replica's own writes are in its copy already
        if (c.origin === this.store.instance) continue;
        if (c.kind === 'node') {
          if (t.nodes !== 'all' && c.nodeId !== null) t.nodes.add(c.nodeId);
        } else if (c.kind === 'presence') presence = true;
        else t[c.kind] = true;
      }
      if (t.nodes !== 'all' && t.nodes.size > MAX_NODES_PER_INCREMENTAL_READ) t.nodes = 'all';
      const touchedAny = t.nodes === 'all' || t.nodes.size > 0 || t.devices || t.approvals || t.dns || t.meta;
      if (touchedAny) await this.hooks.registry.refresh(t);
      const presenceChanged = presence && (await this.readPresence());
      this.position = r.changes[r.changes.length - 1]!.seq;
      this.stats.applied += r.changes.length;
      if (touchedAny || presenceChanged) this.hooks.applied(t);
      if (this.position >= r.head) return;
    }
  }
}
