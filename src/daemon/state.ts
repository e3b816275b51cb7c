// The node's persistent state: its keys, the settings `up`/`set` gave it and
// what the control server assigned. One JSON file, mode 0600 (it holds the
// private keys), replaced atomically; the last network map sits beside it so
// a restarted daemon can carry traffic before the control server answers.
import { existsSync, readFileSync, rmSync } from '../util/cjs.js';
import { join } from 'node:path';
import { generatePrivateKey } from '../crypto/x25519.js';
import type { NetworkMap, NodeView } from '../control/protocol.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export interface Prefs {
  loginServer: string | null;
  controlCaPem: string | null;
  hostname: string | null;
  ifname: string;
  port: number;
  wantRunning: boolean;
  /** a user name (or uid) besides root and the daemon's uid who may change state */
  operator: string | null;
}

export interface NodeState {
  version: 1;
  nodePrivateKey: string;
  discoPrivateKey: string;
  prefs: Prefs;
  /** what the control server assigned; null until the first registration */
  node: NodeView | null;
  ipv4Prefix: string | null;
  ipv6Prefix: string | null;
}

export class StateStore {
  readonly file: string;
  readonly mapFile: string;

  constructor(readonly dir: string) {
    this.file = join(dir, 'state.json');
    this.mapFile = join(dir, 'netmap.json');
  }

  load(defaults: Pick<Prefs, 'ifname' | 'port'>): NodeState {
    if (existsSync(this.file)) {
      let s: NodeState;
      try {
        s = JSON.parse(readFileSync(this.file, 'utf8')) as NodeState;
      } catch (err) {
        throw new Error(`${this.file} is unreadable (${(err as Error).message}): restore it or move it away to start as a new node`);
      }
      if (s.version !== 1) throw new Error(`${this.file} has state version ${String(s.version)}; this meshctl reads version 1`);
      return s;
    }
    const s: NodeState = {
      version: 1,
      nodePrivateKey: generatePrivateKey().toString('base64'),
      discoPrivateKey: generatePrivateKey().toString('base64'),
      prefs: { loginServer: null, controlCaPem: null, hostname: null, ifname: defaults.ifname, port: defaults.port, wantRunning: false, operator: null },
      node: null,
      ipv4Prefix: null,
      ipv6Prefix: null,
    };
    this.save(s);
    return s;
  }

  save(s: NodeState): void {
    writeFileAtomic(this.file, JSON.stringify(s, null, 2) + '\n', 0o600);
  }

  loadMap(): NetworkMap | null {
    try {
      return JSON.parse(readFileSync(this.mapFile, 'utf8')) as NetworkMap;
    } catch {
      return null;
    }
  }

  saveMap(m: NetworkMap | null): void {
    if (m === null) rmSync(this.mapFile, { force: true });
    else writeFileAtomic(this.mapFile, JSON.stringify(m) + '\n', 0o600);
  }
}
