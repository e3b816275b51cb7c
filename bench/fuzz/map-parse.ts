// The node's parsers of what the control server sends (src/netmap/parse.ts)
// and of the state file it reads back (src/daemon/state.ts): a hostile or
// broken control server, or a corrupted disk. Inputs: valid map-stream lines
// and state files, their JSON mutations (type swaps, odd strings such as
// addresses with newlines, dropped and added keys), damaged JSON text and
// random JSON. Checked: only MapParseError / a one-line state error comes out;
// what is accepted is canonical (parsing it again gives the same value), every
// address, prefix and endpoint in it parses strictly, and no string in it
// carries a control character.
import { keyToText } from '../../src/crypto/keys.js';
import { MapParseError, parseMapLine, parseResolverAddress } from '../../src/netmap/parse.js';
import { dnsNameProblem } from '../../src/netmap/dns-names.js';
import { maskedPrefix } from '../../src/netmap/routes.js';
import { parseNodeState } from '../../src/daemon/state.js';
import { parseIp, parseIpEndpoint, parsePrefix } from '../../src/util/netaddr.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { jsonText, mutateJson, randomJson } from './mutate.js';
import type { Rng } from './rng.js';
import { randomAddress } from './stun.js';

function nodeView(r: Rng, id: number): Record<string, unknown> {
  const v4 = `100.64.${r.int(256)}.${r.range(1, 254)}`;
  const v6 = `fd7a:115c:a1e0::${r.int(65536).toString(16)}`;
  // subnet routes: approved ones, the primary subset (also in allowedIps), the exit flag, and for the self view what it advertises
  const routes = Array.from({ length: r.int(3) }, (_, i) => r.pick([`192.168.${i}.0/24`, `10.${i}.0.0/16`, `fd00:${i}::/64`, `FD00:${i}::/64`]));
  const primary = routes.filter(() => r.bool());
  const routeFields = r.chance(0.5)
    ? {
        routes,
        primaryRoutes: primary,
        exitNode: r.bool(),
        ...(id === 1 && r.bool() ? { advertised: { routes: [...routes, '172.16.0.0/12'], exitNode: r.bool() } } : {}),
      }
    : {};
  return {
    ...routeFields,
    id,
    name: r.pick(['nas', 'laptop', 'pi-4', `node${id}`]),
    nodeKey: keyToText(r.bytes(32)),
    discoKey: keyToText(r.bytes(32)),
    addresses: [v4, v6],
    allowedIps: [`${v4}/32`, `${v6}/128`, ...primary],
    endpoints: Array.from({ length: r.int(4) }, () => {
      const a = randomAddress(r);
      return a.includes(':') ? `[${a}]:${r.range(1, 65535)}` : `${a}:${r.range(1, 65535)}`;
    }),
    homeRelay: r.chance(0.5) ? r.pick(['east', 'west']) : null,
    online: r.bool(),
    lastSeen: r.chance(0.5) ? new Date(1_700_000_000_000 + r.int(1e9)).toISOString() : null,
    os: 'linux',
    version: '0.1.0',
    keyExpiry: null,
    ephemeral: r.bool(),
    ...(r.chance(0.3) ? { user: r.pick(['alice', 'bob.smith', 'Alice']) } : r.chance(0.3) ? { tags: r.pick([['tag:nas'], ['tag:a', 'tag:b-1']]) } : {}),
  };
}

/** The policy's rules for this node: sources (some not canonical), port ranges at the edges, protocol numbers. */
function packetFilter(r: Rng): unknown {
  return Array.from({ length: r.int(4) }, () => ({
    srcIps: Array.from({ length: r.range(1, 3) }, () => r.pick(['100.64.0.0/10', '100.64.0.5/32', '0.0.0.0/0', '::/0', 'FD7A:115C:A1E0::5/128', '10.1.2.3/8'])),
    dstPorts: Array.from({ length: r.range(1, 3) }, () => {
      const first = r.pick([0, 22, 443, 65535]);
      return { ip: r.pick(['100.64.0.1/32', '192.168.0.0/24', 'fd7a:115c:a1e0::1/128']), first, last: r.pick([first, 65535, 21]) };
    }),
    protocols: r.pick([[], [6], [6, 17], [1, 58], [132], [300]]),
  }));
}

function mapLine(r: Rng): unknown {
  const kind = r.int(10);
  if (kind === 0) return { type: 'keepalive' };
  if (kind === 1) return { type: 'gone', reason: r.pick(['NODE_UNKNOWN', 'NODE_EXPIRED']) };
  return {
    type: 'map',
    map: {
      self: nodeView(r, 1),
      peers: Array.from({ length: r.int(5) }, (_, i) => nodeView(r, i + 2)),
      ipv4Prefix: '100.64.0.0/10',
      ipv6Prefix: 'fd7a:115c:a1e0::/48',
      relays: r.chance(0.7) ? [{ code: 'east', url: 'https://relay.example:8443', stunPort: 3478, certFingerprint: 'ab'.repeat(32) }] : [],
      ...(r.chance(0.7) ? { dns: dnsConfig(r) } : {}),
      ...(r.chance(0.5) ? { devices: devices(r) } : {}),
      ...(r.chance(0.5) ? { packetFilter: packetFilter(r) } : {}),
    },
  };
}

/** Devices on stock WireGuard behind a gateway: the map's own node (with key) or a peer name that may not exist. */
function devices(r: Rng): unknown {
  return Array.from({ length: r.int(3) }, (_, i) => ({
    id: i + 1,
    name: r.pick([`phone${i}`, `Tab-${i}`]),
    addresses: [`100.64.200.${i + 1}`, `fd7a:115c:a1e0::64c8:${i + 1}`],
    gateway: r.pick(['nas', 'laptop', 'node1', 'node2']),
    ...(r.bool() ? { publicKey: keyToText(r.bytes(32)) } : {}),
  }));
}

/** The map's name service: a suffix, the resolver's two addresses, a few routes and records. */
function dnsConfig(r: Rng): unknown {
  return {
    suffix: r.pick(['mesh.internal', 'home.example', 'Corp.EXAMPLE']),
    resolvers: ['100.100.100.100', 'fd7a:115c:a1e0::53'],
    routes: Array.from({ length: r.int(3) }, (_, i) => ({
      domain: `d${i}.${r.pick(['corp.example', 'in-addr.arpa', 'lan'])}`,
      resolvers: Array.from({ length: r.range(1, 3) }, () => r.pick(['10.1.2.3', '10.1.2.3:5353', '[fd00::1]:53', 'FD00::2'])),
    })),
    records: Array.from({ length: r.int(4) }, (_, i) =>
      r.chance(0.5)
        ? { name: `r${i}.home.arpa`, type: 'A', value: `100.64.0.${r.range(1, 254)}` }
        : { name: `R${i}.home.arpa`, type: 'AAAA', value: 'fd00::0:5' },
    ),
  };
}

function stateFile(r: Rng): unknown {
  const line = mapLine(r) as { map?: { self: unknown } };
  return {
    version: 1,
    nodePrivateKey: keyToText(r.bytes(32)),
    discoPrivateKey: keyToText(r.bytes(32)),
    prefs: {
      loginServer: 'https://control.example:8443',
      controlCaPem: null,
      hostname: 'nas',
      ifname: 'meshctl0',
      port: 41641,
      wantRunning: r.bool(),
      operator: null,
    },
    node: line.map?.self ?? nodeView(r, 1),
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'fd7a:115c:a1e0::/48',
  };
}

// C0/C1 controls, DEL, bidi overrides: what terminalSafe would have to clean up
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** Every string in `v`, with its path. */
function strings(v: unknown, path = '', out: Array<[string, string]> = []): Array<[string, string]> {
  if (typeof v === 'string') out.push([path, v]);
  else if (Array.isArray(v)) v.forEach((x, i) => strings(x, `${path}[${i}]`, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) strings(x, `${path}.${k}`, out);
  return out;
}

/** The network-facing fields of an accepted value parse strictly and are already canonical. */
function checkCanonical(v: unknown): void {
  for (const [path, s] of strings(v)) {
    check(!CONTROL.test(s), `${path} carries a control character: ${JSON.stringify(s)}`);
    const leaf = path.replace(/\[\d+\]$/, '');
    if (/\.addresses$/.test(leaf)) check(parseIp(s).text === s, `${path} is not canonical: ${s}`);
    if (/\.srcIps$|\.dstPorts\.ip$/.test(leaf.replace(/\[\d+\]/g, ''))) check(maskedPrefix(parsePrefix(s)).text === s, `${path} is not canonical: ${s}`);
    if (/\.allowedIps$|Prefix$/.test(leaf)) check(parsePrefix(s).text === s, `${path} is not canonical: ${s}`);
    if (/\.routes$|\.primaryRoutes$/.test(leaf)) check(parsePrefix(s).text === s, `${path} is not canonical: ${s}`);
    if (/\.publicKey$/.test(leaf)) check(/^[A-Za-z0-9+/]{43}=$/.test(s), `${path} is not a canonical key: ${s}`);
    if (/\.endpoints$/.test(leaf)) check(parseIpEndpoint(s).text === s, `${path} is not canonical: ${s}`);
    if (/\.dns\.resolvers$|\.records\.value$/.test(leaf.replace(/\[\d+\]/g, ''))) check(parseIp(s).text === s, `${path} is not canonical: ${s}`);
    if (/\.routes\.resolvers$/.test(leaf.replace(/\[\d+\]/g, ''))) check(parseResolverAddress(s).text === s, `${path} is not canonical: ${s}`);
    if (/\.dns\.suffix$|\.routes\.domain$|\.records\.name$/.test(leaf.replace(/\[\d+\]/g, ''))) {
      check(dnsNameProblem(s, 1) === null, `${path} is not a lowercase DNS name: ${JSON.stringify(s)}`);
    }
  }
}

const target: FuzzTarget = {
  name: 'map-parse',
  kind: 'pure',
  description: 'parseMapLine and parseNodeState: typed refusals only; what passes is canonical, strictly parsed and free of control characters',
  run: (rng, iterations, onProgress) =>
    fuzzLoop(
      rng,
      iterations,
      onProgress,
      (r, ctx) => {
        const state = r.chance(0.3);
        const valid = state ? stateFile(r) : mapLine(r);
        const kind = r.int(8);
        let text: string;
        if (kind <= 1) text = JSON.stringify(valid);
        else if (kind <= 5) text = JSON.stringify(mutateJson(r, valid));
        else if (kind === 6) text = jsonText(r, valid, 1);
        else text = JSON.stringify(randomJson(r));
        ctx.input = text;
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          return 'rejected'; // the daemon refuses text that is not JSON before these parsers run
        }
        if (state) {
          const st = parseNodeState(json);
          checkCanonical(st);
          check(JSON.stringify(parseNodeState(JSON.parse(JSON.stringify(st)))) === JSON.stringify(st), 'a parsed state does not parse back to itself');
          return 'accepted';
        }
        const line = parseMapLine(json);
        if (line === null) return 'accepted';
        checkCanonical(line);
        check(JSON.stringify(parseMapLine(JSON.parse(JSON.stringify(line)))) === JSON.stringify(line), 'a parsed line does not parse back to itself');
        return 'accepted';
      },
      { typedError: (e) => e instanceof MapParseError },
    ),
};

export default target;
