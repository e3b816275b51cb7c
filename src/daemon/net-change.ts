// What the daemon does when the network under it may have changed: a NAT that
// forgot its mappings or got a new public address, a move to another network.
// Nothing tells a node behind a NAT that its router's public address changed;
// what it sees is a direct path that stops answering, or its own addresses
// changing. Its long-lived TCP connections (the map stream, the relays) then
// go on looking open while nothing reaches them, until their idle timeouts,
// and control marks the node offline in the meantime, so peers drop it. So on
// either sign the daemon re-learns its public endpoint (netcheck), checks each
// relay connection with a probe, closes the idle connections it keeps to
// control, and opens a new map stream (on a new connection) before closing
// the old one. A lost direct path also happens when the peer moved, not us:
// the cost then is one probe, one netcheck and one map, at most once a
// NET_CHANGE_MIN_INTERVAL_MS.

/** At most one response this often: a flapping path or many peers losing theirs at once cost one netcheck and one map. */
export const NET_CHANGE_MIN_INTERVAL_MS = 10_000;
/**
 * A relay that sends no frame this long after a probe is reconnected. A live relay answers within its round trip;
 * relayed traffic queued ahead of the ping (at most the client's 1 MiB send queue) drains within a second at 10 Mbit/s.
 */
export const RELAY_PROBE_TIMEOUT_MS = 3000;

export interface NetChangeActions {
  /** probe the relay connections */
  probeRelays(): void;
  /** re-learn our public endpoints and report them */
  netcheck(): void;
  /** a new map stream, then the old one closed */
  renewMapStream(): void;
  log(msg: string): void;
}

export class NetChange {
  private last = -Infinity;
  readonly stats = { responses: 0, suppressed: 0 };

  constructor(
    private readonly act: NetChangeActions,
    private readonly minIntervalMs = NET_CHANGE_MIN_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A sign that the network may have changed; `why` goes to the log. */
  suspect(why: string): void {
    const t = this.now();
    if (t - this.last < this.minIntervalMs) {
      this.stats.suppressed++;
      return;
    }
    this.last = t;
    this.stats.responses++;
    this.act.log(`the network may have changed (${why}): re-checking relays, endpoints and the map stream`);
    this.act.probeRelays();
    this.act.netcheck();
    this.act.renewMapStream();
  }
}
