// `meshctl lab`: a whole meshctl network on one machine, in namespaces: an
// internet bridge with the control server and two relay regions, and nodes on
// it directly or behind NAT routers of chosen kinds. It starts everything with
// the real binary, waits for paths, and tears it all down again. Everything it
// made is recorded in DIR/lab.json, so `down` removes exactly that.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, chmodSync } from '../util/cjs.js';
import { join } from 'node:path';
import {
  CONTROL_IP,
  CONTROL_PORT,
  INET_PREFIX,
  NAT_DESCRIPTION,
  natRules,
  planNodes,
  RELAYS,
  type LabNode,
  type NatKind,
  type RouterFirewall,
} from './topology.js';
import { addTransitHop } from './transit.js';
import { miniupnpdConfig } from './upnp.js';
import { ipv6Steps, relayIpv6Query, ssListening } from './ipv6.js';
import { requireTool } from '../util/tools.js';

export interface LabOptions {
  name: string;
  kinds: NatKind[];
  /** TBF rate for every NAT router's uplink, e.g. "20mbit" */
  uplink?: string;
  dir?: string;
  bin: string;
  progress?: (msg: string) => void;
  /** extra environment for every daemon (test knobs) */
  env?: Record<string, string>;
  /** dual-stack: IPv6 on the internet bridge and a routed /64 per NAT site behind a stateful firewall (src/lab/ipv6.ts) */
  ipv6?: boolean;
  /** what every NAT router does with unsolicited WAN input (default drop; the bare kinds never drop) */
  routerFirewall?: RouterFirewall;
  /** an ISP router namespace between each NAT router and the internet bridge */
  transit?: boolean;
}

export interface LabState {
  name: string;
  prefix: string;
  dir: string;
  bin: string;
  namespaces: string[];
  pids: Record<string, number>;
  nodes: LabNode[];
  controlNs: string;
  relayNs: Record<string, string>;
  authKey: string;
  env: Record<string, string>;
  /** built with IPv6 (`lab up --ipv6`) */
  ipv6?: boolean;
}

export class LabError extends Error {
  override readonly name = 'LabError';
}

const STATE_FILE = 'lab.json';
const START_TIMEOUT_MS = 15_000;
/** A control server asked to stop gets this long to close its database and streams before it is killed. */
const CONTROL_STOP_TIMEOUT_MS = 5_000;

export function labDir(name: string, dir?: string): string {
  return dir ?? join('/run/meshctl-lab', name);
}

/**
 * Checks every program an argv runs before it runs: the command itself, and
 * the one `ip netns exec NS [env VAR=…]` runs in turn, so a missing one fails
 * with its Debian package named instead of "exec failed".
 */
export function requireArgv(cmd: string, args: readonly string[]): void {
  requireTool(cmd);
  if (cmd !== 'ip' || args[0] !== 'netns' || args[1] !== 'exec') return;
  let rest = args.slice(3);
  if (rest[0] === 'env') {
    requireTool('env');
    rest = rest.slice(1);
    while (rest[0]?.includes('=')) rest = rest.slice(1);
  }
  if (rest[0] !== undefined) requireTool(rest[0]);
}

async function sh(cmd: string, args: string[], input?: string, timeoutMs = 30_000): Promise<{ code: number; out: string; err: string }> {
  requireArgv(cmd, args);
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, out, errOut) =>
      resolve({
        code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0,
        out: String(out),
        err: String(errOut),
      }),
    );
    if (input !== undefined) p.stdin?.end(input);
  });
}

async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await sh(cmd, args, input);
  if (r.code !== 0) throw new LabError(`${cmd} ${args.join(' ')}: ${r.err.trim() || `exit ${r.code}`}`);
  return r.out;
}

const inNs = (ns: string, args: string[], input?: string) => must('ip', ['netns', 'exec', ns, ...args], input);

/** The relays' shared mesh key, written by the lab (0600) and passed as `--mesh-key file:…`: a secret in argv shows in ps. */
export const RELAY_MESH_KEY_FILE = 'relay-mesh.key';

/** Writes the relays' mesh key into `dir` unless it is there (a restarted relay keeps the same key). */
export function writeRelayMeshKey(dir: string): string {
  const f = join(dir, RELAY_MESH_KEY_FILE);
  if (!existsSync(f)) writeFileSync(f, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  return f;
}

/** The command line of a lab relay: no secret in it, the mesh key is named by its file. */
export function relayServeArgs(
  s: Pick<LabState, 'dir' | 'bin'> & { ipv6?: boolean },
  r: { region: string; ip: string; port: number; stunPort: number },
): string[] {
  return [
    process.execPath,
    s.bin,
    'relay',
    'serve',
    '--listen',
    // dual-stack: one listener (and STUN socket) on :: takes IPv4 and IPv6
    s.ipv6 ? `[::]:${r.port}` : `${r.ip}:${r.port}`,
    '--stun-port',
    String(r.stunPort),
    '--region',
    r.region,
    '--state-dir',
    join(s.dir, `relay-${r.region}`),
    '--verify-clients',
    `https://${CONTROL_IP}:${CONTROL_PORT}`,
    '--control-ca',
    join(s.dir, 'ca.pem'),
    '--mesh-key',
    `file:${join(s.dir, RELAY_MESH_KEY_FILE)}`,
  ];
}

export function loadLab(name: string, dir?: string): LabState | null {
  const f = join(labDir(name, dir), STATE_FILE);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as LabState) : null;
}

function save(s: LabState): void {
  writeFileSync(join(s.dir, STATE_FILE), JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
}

export class Lab {
  private links = 0;
  constructor(readonly s: LabState) {}

  static async create(o: LabOptions): Promise<Lab> {
    const dir = labDir(o.name, o.dir);
    if (loadLab(o.name, o.dir)) throw new LabError(`a lab named ${o.name} is up (${dir}): run \`meshctl lab down --name ${o.name}\` first`);
    if (process.getuid?.() !== 0) throw new LabError('the lab needs root (namespaces, TUN devices, nftables): run it with sudo');
    // the IPv6 sites route their /64 through the NAT router's own WAN link, which a transit hop would sit behind
    if (o.ipv6 && o.transit) throw new LabError('--ipv6 and --transit do not combine (the transit hop is IPv4 only): choose one');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    const prefix = `${o.name.slice(0, 6)}-`;
    const lab = new Lab({
      name: o.name,
      prefix,
      dir,
      bin: o.bin,
      namespaces: [],
      pids: {},
      nodes: planNodes(prefix, o.kinds, { routerFirewall: o.routerFirewall, transit: o.transit }),
      controlNs: `${prefix}ctl`,
      relayNs: Object.fromEntries(RELAYS.map((r) => [r.region, `${prefix}${r.region}`])),
      authKey: '',
      env: o.env ?? {},
      ...(o.ipv6 ? { ipv6: true } : {}),
    });
    save(lab.s);
    return lab;
  }

  /** Creates a namespace the lab records (and `down` removes). */
  async netns(name: string): Promise<string> {
    await must('ip', ['netns', 'add', name]);
    this.s.namespaces.push(name);
    save(this.s);
    await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  private get authKeyFile(): string {
    return join(this.s.dir, 'authkey');
  }

  private get inet(): string {
    return `${this.s.prefix}inet`;
  }

  /** A veth from `ns` (named `ifname` there) to the internet bridge. */
  async onInternet(ns: string, ifname: string, ip: string): Promise<void> {
    const outer = `${this.s.prefix.slice(0, 6)}i${this.links++}`;
    await must('ip', ['link', 'add', outer, 'netns', this.inet, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    await must('ip', ['-n', this.inet, 'link', 'set', outer, 'master', 'br0', 'up']);
    await must('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', ifname]);
    await must('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
  }

  private spawnIn(ns: string, id: string, args: string[], env: Record<string, string> = {}): number {
    const argv = ['netns', 'exec', ns, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...args];
    requireArgv('ip', argv);
    const log = openSync(join(this.s.dir, `${id}.log`), 'a');
    const p = spawn('ip', argv, {
      detached: true,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    p.unref();
    this.s.pids[id] = p.pid!;
    save(this.s);
    return p.pid!;
  }

  meshctl(node: LabNode, args: string[], timeoutMs = 60_000) {
    return sh(
      'ip',
      [
        'netns',
        'exec',
        node.ns,
        'env',
        `MESHCTL_CONFIG_DIR=${join(this.s.dir, `${node.name}-cli`)}`,
        'MESHCTL_PLAIN=1',
        ...Object.entries(this.s.env).map(([k, v]) => `${k}=${v}`),
        process.execPath,
        this.s.bin,
        '--socket',
        this.socket(node),
        ...args,
      ],
      undefined,
      timeoutMs,
    );
  }

  socket(node: LabNode): string {
    return join(this.s.dir, `${node.name}.sock`);
  }

  async build(o: LabOptions): Promise<void> {
    const say = o.progress ?? (() => {});
    say(`building the internet (${INET_PREFIX}.0/24), control server and relays`);
    await this.netns(this.inet);
    await must('ip', ['-n', this.inet, 'link', 'add', 'br0', 'type', 'bridge']);
    await must('ip', ['-n', this.inet, 'link', 'set', 'br0', 'up']);
    await this.netns(this.s.controlNs);
    await this.onInternet(this.s.controlNs, 'eth0', CONTROL_IP);
    for (const r of RELAYS) {
      const ns = await this.netns(this.s.relayNs[r.region]!);
      await this.onInternet(ns, 'eth0', r.ip);
    }
    for (const n of this.s.nodes) {
      say(`node ${n.name}: ${NAT_DESCRIPTION[n.kind]}`);
      await this.netns(n.ns);
      ownResolvConf(n.ns);
      if (!n.routerNs) {
        await this.onInternet(n.ns, 'eth0', n.wanIp);
        continue;
      }
      await this.netns(n.routerNs);
      if (n.transitNs) await addTransitHop(this, n, (cmd, args, input) => must(cmd, args, input));
      else await this.onInternet(n.routerNs, 'wan', n.wanIp);
      await must('ip', ['link', 'add', 'lan', 'netns', n.routerNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.ns]);
      await must('ip', ['-n', n.routerNs, 'addr', 'add', `192.168.${n.index}.1/24`, 'dev', 'lan']);
      await must('ip', ['-n', n.routerNs, 'link', 'set', 'lan', 'up']);
      await must('ip', ['-n', n.ns, 'addr', 'add', `${n.lanIp}/24`, 'dev', 'eth0']);
      await must('ip', ['-n', n.ns, 'link', 'set', 'eth0', 'up']);
      await must('ip', ['-n', n.ns, 'route', 'add', 'default', 'via', `192.168.${n.index}.1`]);
      await inNs(n.routerNs, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
      await inNs(n.routerNs, ['nft', '-f', '-'], natRules(n.kind, n.firewall ?? 'drop'));
      if (o.uplink) await inNs(n.routerNs, ['tc', 'qdisc', 'add', 'dev', 'wan', 'root', 'tbf', 'rate', o.uplink, 'burst', '32kbit', 'latency', '50ms']);
      if (n.kind === 'upnp') {
        const conf = join(this.s.dir, `${n.name}-miniupnpd.conf`);
        writeFileSync(conf, miniupnpdConfig(n));
        this.spawnIn(n.routerNs, `${n.name}-miniupnpd`, ['miniupnpd', '-f', conf, '-d']);
      }
    }
    if (this.s.ipv6) await this.buildIpv6(say);
  }

  /** IPv6 beside the IPv4 lab: addresses, routes to each site's /64, forwarding and a stateful firewall on each router. */
  private async buildIpv6(say: (msg: string) => void): Promise<void> {
    say('adding IPv6: 2001:db8:113::/64 on the internet, a routed /64 per NAT site behind a stateful firewall');
    const steps = ipv6Steps({ inetNs: this.inet, controlNs: this.s.controlNs, relayNs: this.s.relayNs, nodes: this.s.nodes });
    for (const st of steps) {
      if ('ip' in st) await must('ip', st.ip);
      else if ('nft' in st) await inNs(st.ns, ['nft', '-f', '-'], st.nft);
      else await inNs(st.ns, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/all/forwarding']);
    }
  }

  private relayArgs(r: (typeof RELAYS)[number]): string[] {
    return relayServeArgs(this.s, r);
  }

  async startServers(): Promise<void> {
    const d = this.s.dir;
    const ctlDir = join(d, 'control');
    await this.spawnControl();
    // relays verify clients with the control server, so they need its certificate first
    writeFileSync(join(d, 'ca.pem'), await must(process.execPath, [this.s.bin, 'control', 'ca', '--state-dir', ctlDir]));
    writeRelayMeshKey(d);
    for (const r of RELAYS) this.spawnIn(this.s.relayNs[r.region]!, `relay-${r.region}`, this.relayArgs(r));
    for (const r of RELAYS)
      await this.waitFor(`relay ${r.region}`, async () =>
        ssListening((await sh('ip', ['netns', 'exec', this.s.relayNs[r.region]!, 'ss', '-tln'])).out, r.ip, r.port),
      );
    this.s.authKey = (await must(process.execPath, [this.s.bin, 'control', 'authkey', 'create', '--reusable', '--state-dir', ctlDir]))
      .trim()
      .split('\n')
      .pop()!;
    // nodes read the key from a 0600 file: on argv it would show in `ps` to every user
    writeFileSync(this.authKeyFile, this.s.authKey + '\n', { mode: 0o600 });
    save(this.s);
  }

  private async spawnControl(): Promise<void> {
    const relayFlags = RELAYS.flatMap((r) => ['--relay', `${r.region}=https://${r.ip}:${r.port}?stun=${r.stunPort}${relayIpv6Query(r.region, !!this.s.ipv6)}`]);
    this.spawnIn(this.s.controlNs, 'control', [
      process.execPath,
      this.s.bin,
      'control',
      'serve',
      '--listen',
      this.s.ipv6 ? `[::]:${CONTROL_PORT}` : `${CONTROL_IP}:${CONTROL_PORT}`,
      '--state-dir',
      join(this.s.dir, 'control'),
      ...relayFlags,
    ]);
    await this.waitFor('control server', async () =>
      ssListening((await sh('ip', ['netns', 'exec', this.s.controlNs, 'ss', '-tln'])).out, CONTROL_IP, CONTROL_PORT),
    );
  }

  /** Stops the control server (SIGTERM, SIGKILL after CONTROL_STOP_TIMEOUT_MS) and starts it again on the same state (the soak). */
  async restartControl(): Promise<void> {
    const pid = this.s.pids.control;
    if (pid) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const alive = async (): Promise<boolean> => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      try {
        await this.waitFor('control server to stop', async () => !(await alive()), CONTROL_STOP_TIMEOUT_MS);
      } catch {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await this.waitFor('control server to die', async () => !(await alive()));
      }
    }
    await this.spawnControl();
  }

  /** Restarts a relay (tests: a relay restarted mid-session). */
  async restartRelay(region: string): Promise<void> {
    const pid = this.s.pids[`relay-${region}`];
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    const r = RELAYS.find((x) => x.region === region)!;
    await new Promise((res) => setTimeout(res, 200));
    this.spawnIn(this.s.relayNs[region]!, `relay-${region}`, this.relayArgs(r));
  }

  async waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await fn())) {
      if (Date.now() > deadline) throw new LabError(`${what} did not come up within ${timeoutMs / 1000}s: see ${this.s.dir}/*.log`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async up(node: LabNode): Promise<{ code: number; out: string; err: string }> {
    return this.meshctl(node, [
      'up',
      '--login-server',
      `https://${CONTROL_IP}:${CONTROL_PORT}`,
      '--control-ca',
      join(this.s.dir, 'ca.pem'),
      '--auth-key',
      `file:${this.authKeyFile}`,
      '--hostname',
      node.name,
      '--state-dir',
      join(this.s.dir, node.name),
      '--timeout',
      '30s',
    ]);
  }

  async upAll(): Promise<void> {
    const results = await Promise.all(this.s.nodes.map((n) => this.up(n)));
    results.forEach((r, i) => {
      if (r.code !== 0) throw new LabError(`${this.s.nodes[i]!.name}: meshctl up failed: ${r.err.trim().split('\n').pop()}`);
    });
    for (const n of this.s.nodes) {
      const pid = Number(readFileSync(join(this.s.dir, n.name, 'daemon.pid'), 'utf8'));
      this.s.pids[`${n.name}-daemon`] = pid;
    }
    save(this.s);
  }

  async down(): Promise<void> {
    await tearDown(this.s);
  }
}

export async function tearDown(s: LabState): Promise<void> {
  for (const pid of Object.values(s.pids)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const ns of s.namespaces) {
    const pids = (await sh('ip', ['netns', 'pids', ns])).out.split(/\s+/).filter(Boolean);
    for (const p of pids) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const ns of [...s.namespaces].reverse()) await sh('ip', ['netns', 'del', ns]);
  for (const ns of s.namespaces) rmSync(join(NETNS_ETC, ns), { recursive: true, force: true });
  rmSync(s.dir, { recursive: true, force: true });
}

/** `ip netns exec NS` mounts the files of /etc/netns/NS over /etc: a node's daemon then configures its own resolv.conf, not the host's. */
const NETNS_ETC = '/etc/netns';

function ownResolvConf(ns: string): void {
  mkdirSync(join(NETNS_ETC, ns), { recursive: true, mode: 0o755 });
  writeFileSync(join(NETNS_ETC, ns, 'resolv.conf'), `# meshctl lab: the resolv.conf of namespace ${ns} (its node's MagicDNS configures it)\n`, { mode: 0o644 });
}
