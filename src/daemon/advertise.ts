// What this node advertises (subnet routes, exit node), kept in step with the
// control server: sent with `register`, and with the `advertise` op whenever
// the node's own view in the map says something other than the settings (a
// `set` changed them, or control lost them). One request at a time; a failure
// is a health line and the next map tries again.
import type { NodeView } from '../netmap/types.js';
import type { ControlClient } from './control-client.js';
import type { Prefs } from './state.js';
import type { UpRequest } from '../localapi/types.js';
import { terminalSafe } from '../util/text.js';

/** How long one advertise request may take before the next map retries it. */
export const ADVERTISE_TIMEOUT_MS = 10_000;

/** The body of the `advertise` op and of register's `advertised` field. */
export interface Advertisement {
  routes: string[];
  exitNode: boolean;
}

/** What the settings advertise. Exit-node support sets exitNode from its own setting. */
export function advertisementOf(prefs: Pick<Prefs, 'advertiseRoutes'> & Partial<Pick<Prefs, 'advertiseExitNode'>>): Advertisement {
  return { routes: [...prefs.advertiseRoutes].sort(), exitNode: prefs.advertiseExitNode === true };
}

const keyOf = (a: Advertisement): string => JSON.stringify({ routes: [...a.routes].sort(), exitNode: a.exitNode });

export class Advertiser {
  /** the advertisement control last accepted ('' none yet) and the one on its way */
  private acked = '';
  private inflight = '';
  private error: string | null = null;

  constructor(private readonly log: (msg: string) => void) {}

  /** register's `advertised` field: present when the node advertises something or `up` changes it. */
  registerField(prefs: Prefs, req: UpRequest): { advertised?: Advertisement } {
    if (req.advertiseRoutes === undefined && req.advertiseExitNode === undefined && prefs.advertiseRoutes.length === 0 && !prefs.advertiseExitNode) return {};
    const a = advertisementOf({
      advertiseRoutes: req.advertiseRoutes ?? prefs.advertiseRoutes,
      advertiseExitNode: req.advertiseExitNode ?? prefs.advertiseExitNode,
    });
    this.acked = keyOf(a);
    return { advertised: a };
  }

  /** Sends the advertisement; throws what control answered (a refusal carries `controlCode`). */
  async send(control: ControlClient, a: Advertisement): Promise<void> {
    const key = keyOf(a);
    this.inflight = key;
    try {
      await control.call('advertise', a, ADVERTISE_TIMEOUT_MS);
      this.acked = key;
      this.error = null;
    } finally {
      if (this.inflight === key) this.inflight = '';
    }
  }

  /** Sends the advertisement when the node's own view differs from the settings and it is not already on its way. */
  async sync(control: ControlClient, self: NodeView, prefs: Prefs): Promise<void> {
    const a = advertisementOf(prefs);
    const key = keyOf(a);
    const seen = self.advertised ? keyOf(self.advertised) : null;
    if (seen === key) {
      this.acked = key;
      this.error = null;
      return;
    }
    // a control server that does not echo the advertisement: once accepted is enough
    if (key === this.inflight || (seen === null && key === this.acked)) return;
    if (seen === null && this.acked === '' && a.routes.length === 0 && !a.exitNode) return;
    try {
      await this.send(control, a);
    } catch (err) {
      this.error = `advertising ${a.routes.join(', ') || 'no routes'} to control failed: ${terminalSafe((err as Error).message, 300)}`;
      this.log(this.error);
    }
  }

  health(): string[] {
    return this.error ? [this.error] : [];
  }
}
