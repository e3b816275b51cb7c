// The node's persistent state: its keys, the settings `up`/`set` gave it and
// what the control server assigned. One JSON file, mode 0600 (it holds the
// private keys), replaced atomically; the last network map sits beside it so
// a restarted daemon can carry traffic before the control server answers.
// Both are read back through the same strict parsers as control's answers
// (netmap/parse.ts): the addresses in them end up on the OS. A state.json that is
// wrong stops the daemon with one line naming the field; the file is left as
// it is (it holds the node's identity), never rewritten or deleted.
import { parsePin } from '../crypto/spki-pin.js';
import { cjsRequire, existsSync, readFileSync, rmSync } from '../util/cjs.js';
import { join } from 'node:path';
import { generatePrivateKey } from '../crypto/x25519.js';
import { keyFromText, keyToText } from '../crypto/keys.js';
import type { NetworkMap, NodeView } from '../netmap/types.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { isPrintable, terminalSafe } from '../util/text.js';
import { fail, MapParseError, parseMeshPrefix, parseNetworkMap, parseNodeView, shown } from '../netmap/parse.js';
import { DEFAULT_ROUTE_PREFS, parseRoutePrefs, type RoutePrefs } from './route-prefs.js';
import type { TimestampFloorStore } from '../engine/device/tai64n-source.js';

const { statSync } = cjsRequire('node:fs') as typeof import('node:fs');

/** Reads `file` unless it is larger than MAX_STATE_FILE_BYTES (checked before reading, so a huge file is not taken into memory). */
function readBounded(file: string): string {
  const size = statSync(file).size;
  if (size > MAX_STATE_FILE_BYTES) throw new Error(`${size} bytes, more than the ${MAX_STATE_FILE_BYTES} a state file can be`);
  return readFileSync(file, 'utf8');
}

/** The handshake timestamp file holds 24 hex digits and a newline; anything much longer is not one. */
const MAX_TIMESTAMP_FILE_BYTES = 64;
/** Longest state.json or netmap.json read: a map of MAX_PEERS peers is ~7 MB; more is not a file this daemon wrote. */
export const MAX_STATE_FILE_BYTES = 32 * 1024 * 1024;
/** A PEM certificate (chain) pinned for the control server: a few KiB; 64 KiB leaves room for a chain. */
export const MAX_CA_PEM_CHARS = 64 * 1024;
/** Linux interface names: IFNAMSIZ is 16 with the terminating NUL. */
export const MAX_IFNAME_CHARS = 15;
/** Control URLs kept (replicas of one network): bounds state.json. */
export const MAX_LOGIN_SERVERS = 8;
/** A login server URL. */
export const MAX_LOGIN_SERVER_CHARS = 2048;
/** A host name as `up --hostname` gives it (a DNS name's longest text form). */
export const MAX_HOSTNAME_CHARS = 253;
/** An operator: a user name (32 on Linux) or a uid. */
export const MAX_OPERATOR_CHARS = 64;

export interface Prefs extends RoutePrefs {
  loginServer: string | null;
  /** every control URL of the network (replicas), `loginServer` first; the daemon fails over between them */
  loginServers: string[];
  controlCaPem: string | null;
  /** the control server's public-key pin (`sha256//BASE64`), from a join string; when set, no CA is consulted */
  controlPin: string | null;
  hostname: string | null;
  ifname: string;
  port: number;
  wantRunning: boolean;
  /** a user name (or uid) besides root and the daemon's uid who may change state */
  operator: string | null;
  /** point the OS resolver at the mesh's name service (`up --accept-dns`); the daemon's resolver runs either way */
  acceptDns: boolean;
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
  readonly timestampFile: string;

  constructor(readonly dir: string) {
    this.file = join(dir, 'state.json');
    this.mapFile = join(dir, 'netmap.json');
    this.timestampFile = join(dir, 'handshake-timestamp');
  }

  /**
   * The floor of the engine's handshake timestamps (engine/device/tai64n-source.ts): one line of 24 hex digits,
   * a TAI64N timestamp, written atomically (0600) and only when the engine raises it, at most once a minute
   * while handshakes go on. A missing file is no floor; an unreadable or malformed one is refused with its cause.
   */
  timestampFloor(): TimestampFloorStore {
    const file = this.timestampFile;
    return {
      load: () => {
        let size: number;
        try {
          size = statSync(file).size;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
          throw err;
        }
        if (size > MAX_TIMESTAMP_FILE_BYTES) throw new Error(`${file}: ${size} bytes, not a timestamp`);
        const text = readFileSync(file, 'utf8').trim();
        if (!/^[0-9a-f]{24}$/.test(text)) throw new Error(`${file}: not 24 hex digits`);
        return Buffer.from(text, 'hex');
      },
      save: (floor) => writeFileAtomic(file, `${floor.toString('hex')}\n`, 0o600),
    };
  }

  load(defaults: Pick<Prefs, 'ifname' | 'port'>): NodeState {
    if (existsSync(this.file)) {
      let raw: unknown;
      try {
        raw = JSON.parse(readBounded(this.file));
      } catch (err) {
        throw new Error(`${this.file} is unreadable (${terminalSafe((err as Error).message, 200)}): restore it or move it away to start as a new node`);
      }
      try {
        return parseNodeState(raw);
      } catch (err) {
        if (!(err instanceof MapParseError)) throw err;
        throw new Error(`${this.file}: ${err.message}: fix that field, or move the file away (it holds this node's keys) to start as a new node`);
      }
    }
    const s: NodeState = {
      version: 1,
      nodePrivateKey: generatePrivateKey().toString('base64'),
      discoPrivateKey: generatePrivateKey().toString('base64'),
      prefs: {
        loginServer: null,
        loginServers: [],
        controlCaPem: null,
        controlPin: null,
        hostname: null,
        ifname: defaults.ifname,
        port: defaults.port,
        wantRunning: false,
        operator: null,
        acceptDns: true,
        ...structuredClone(DEFAULT_ROUTE_PREFS),
      },
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

  /** The last map, or null when there is none; a corrupt one is reported through `onBad` (one line) and ignored. */
  loadMap(onBad: (msg: string) => void = () => {}): NetworkMap | null {
    let text: string;
    try {
      text = readBounded(this.mapFile);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'ENOENT') onBad(`${this.mapFile} is unreadable (${terminalSafe(e.code ?? e.message, 200)}): ignored, waiting for control's map`);
      return null;
    }
    try {
      return parseNetworkMap(JSON.parse(text));
    } catch (err) {
      onBad(`${this.mapFile} is corrupt (${terminalSafe((err as Error).message, 200)}): ignored, waiting for control's map`);
      return null;
    }
  }

  saveMap(m: NetworkMap | null): void {
    if (m === null) rmSync(this.mapFile, { force: true });
    else writeFileAtomic(this.mapFile, JSON.stringify(m) + '\n', 0o600);
  }
}

function privateKey(v: unknown, field: string): string {
  const k = keyFromText(v);
  if (!k) fail(field, `not a 32-byte base64 private key: ${shown(v)}`);
  return keyToText(k);
}

function nullableText(v: unknown, field: string, max: number): string | null {
  if (v === null || v === undefined) return null;
  if (!isPrintable(v, max)) fail(field, `expected null or 1-${max} printable characters, got ${shown(v)}`);
  return v;
}

function parsePrefs(v: unknown): Prefs {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('prefs', `expected an object, got ${shown(v)}`);
  const o = v as Record<string, unknown>;
  const loginServer = nullableText(o.loginServer, 'prefs.loginServer', MAX_LOGIN_SERVER_CHARS);
  if (loginServer !== null && !/^https:\/\/[^\s/?#]+/.test(loginServer)) fail('prefs.loginServer', `not an https:// URL: ${shown(loginServer)}`);
  // absent in state files written before replicas: the one login server
  let loginServers: string[] = loginServer === null ? [] : [loginServer];
  if (o.loginServers !== undefined) {
    const l = o.loginServers;
    if (!Array.isArray(l) || l.length > MAX_LOGIN_SERVERS) fail('prefs.loginServers', `expected a list of at most ${MAX_LOGIN_SERVERS} URLs`);
    for (const u of l as unknown[]) {
      const t = nullableText(u, 'prefs.loginServers', MAX_LOGIN_SERVER_CHARS);
      if (t === null || !/^https:\/\/[^\s/?#]+/.test(t)) fail('prefs.loginServers', `not an https:// URL: ${shown(u)}`);
    }
    loginServers = l as string[];
    if (loginServer !== null ? loginServers[0] !== loginServer : loginServers.length > 0) fail('prefs.loginServers', 'must start with prefs.loginServer');
  }
  const ca = o.controlCaPem;
  if (ca !== null && ca !== undefined && (typeof ca !== 'string' || ca.length > MAX_CA_PEM_CHARS || !ca.includes('-----BEGIN CERTIFICATE-----'))) {
    fail('prefs.controlCaPem', `expected null or a PEM certificate of at most ${MAX_CA_PEM_CHARS} characters`);
  }
  // absent in state files written before pins existed: none
  if (o.controlPin !== null && o.controlPin !== undefined && parsePin(o.controlPin) === null)
    fail('prefs.controlPin', `expected null or sha256//BASE64, got ${shown(o.controlPin)}`);
  const ifname = o.ifname;
  if (typeof ifname !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(ifname) || ifname.length > MAX_IFNAME_CHARS || ifname === '.' || ifname === '..') {
    fail('prefs.ifname', `not an interface name (1-${MAX_IFNAME_CHARS} of A-Z a-z 0-9 _ . -): ${shown(ifname)}`);
  }
  const port = o.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) fail('prefs.port', `not a UDP port (0-65535): ${shown(port)}`);
  if (typeof o.wantRunning !== 'boolean') fail('prefs.wantRunning', `expected true or false, got ${shown(o.wantRunning)}`);
  // absent in state files written before the setting existed: the default, true
  if (o.acceptDns !== undefined && typeof o.acceptDns !== 'boolean') fail('prefs.acceptDns', `expected true or false, got ${shown(o.acceptDns)}`);
  let routePrefs: RoutePrefs;
  try {
    routePrefs = parseRoutePrefs(o, (k) => `prefs.${k}`);
  } catch (err) {
    fail('prefs', (err as Error).message);
  }
  return {
    loginServer,
    loginServers,
    controlCaPem: (ca as string | null | undefined) ?? null,
    controlPin: (o.controlPin as string | null | undefined) ?? null,
    hostname: nullableText(o.hostname, 'prefs.hostname', MAX_HOSTNAME_CHARS),
    ifname,
    port,
    wantRunning: o.wantRunning,
    operator: nullableText(o.operator, 'prefs.operator', MAX_OPERATOR_CHARS),
    acceptDns: (o.acceptDns as boolean | undefined) ?? true,
    ...routePrefs,
  };
}

/** A whole state.json, every field checked, in canonical form; throws MapParseError naming the first bad field. */
export function parseNodeState(raw: unknown): NodeState {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('state', `expected an object, got ${shown(raw)}`);
  const o = raw as Record<string, unknown>;
  if (o.version !== 1) fail('version', `state version ${shown(o.version)}; this meshctl reads version 1`);
  const node = o.node === null || o.node === undefined ? null : parseNodeView(o.node, 'node', { self: true });
  return {
    version: 1,
    nodePrivateKey: privateKey(o.nodePrivateKey, 'nodePrivateKey'),
    discoPrivateKey: privateKey(o.discoPrivateKey, 'discoPrivateKey'),
    prefs: parsePrefs(o.prefs),
    node,
    ipv4Prefix: o.ipv4Prefix === null || o.ipv4Prefix === undefined ? null : parseMeshPrefix(o.ipv4Prefix, 'ipv4Prefix', 4),
    ipv6Prefix: o.ipv6Prefix === null || o.ipv6Prefix === undefined ? null : parseMeshPrefix(o.ipv6Prefix, 'ipv6Prefix', 6),
  };
}
