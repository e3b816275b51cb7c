// `meshctl control …`: run the control server and administer its network.
import { existsSync, readFileSync } from '../util/cjs.js';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { ControlError } from '../control/protocol.js';
import type { RelayRegion } from '../netmap/types.js';
import type { ControlMetricsView } from '../control/server.js';
import { durationArg, printJson } from './context.js';
import { CliError } from './errors.js';
import { isoTime } from '../util/time.js';
import { controlStateDirFromEnv, takePgPassword } from '../util/knobs.js';
import { terminalSafe } from '../util/text.js';
import { AddressSyntaxError, parseIp } from '../util/netaddr.js';
import { registerPolicy } from './control-policy.js';
import { controlUrlArg, joinStringFor, printJoin } from './join.js';
import { metricsAllowRemoteOption, metricsListenOf, metricsListenOption, serveWithMetrics, type MetricsOpts } from './metrics.js';
import { asciiLower, DEFAULT_DNS_SUFFIX, dnsSuffixProblem } from '../netmap/dns-names.js';
import { adminListenArg, registerAdminTokens } from './control-admin.js';
import { ownerCell, registerAuthKeyAdmin, registerNodeApprove, registerUsers, type IdentityCliDeps } from './control-identity.js';

export const DEFAULT_CONTROL_STATE_DIR = '/var/lib/meshctl-control';
const DEFAULT_LISTEN = '0.0.0.0:8443';

export function listenArg(v: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError(`"${v}" is not HOST:PORT (e.g. 0.0.0.0:8443 or [::]:8443)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

const RELAY_ARG_FORM = 'CODE=https://HOST:PORT[?stun=PORT][&ipv6=ADDRESS]';

/**
 * `--relay CODE=https://HOST:PORT[?stun=PORT][&ipv6=ADDRESS]`: a relay region. HOST may be an IPv6
 * literal in brackets; `ipv6=` names the relay's IPv6 address when HOST is an IPv4 address or a
 * name, so nodes without IPv4 (or whose IPv4 path fails) reach it over IPv6, for STUN too.
 */
export function relayArg(v: string, prev: RelayRegion[]): RelayRegion[] {
  const m = /^([a-z0-9-]{1,32})=(https:\/\/[^?\s]+)(?:\?([a-z0-9=&:.]*))?$/i.exec(v);
  if (!m) throw new InvalidArgumentError(`"${terminalSafe(v, 120)}" is not ${RELAY_ARG_FORM}`);
  const url = m[2]!;
  const bracketed = /^https:\/\/\[([^\]]*)\]/.exec(url);
  if (bracketed) {
    try {
      if (parseIp(bracketed[1]).family !== 6) throw new AddressSyntaxError('');
    } catch {
      throw new InvalidArgumentError(`"${terminalSafe(v, 120)}": ${terminalSafe(bracketed[1]!, 64)} in brackets is not an IPv6 address (${RELAY_ARG_FORM})`);
    }
  }
  const r: RelayRegion = { code: m[1]!, url, stunPort: 3478 };
  for (const kv of m[3] ? m[3].split('&') : []) {
    const [k, val = ''] = kv.split('=', 2) as [string, string?];
    if (k === 'stun' && /^\d{1,5}$/.test(val) && Number(val) >= 1 && Number(val) <= 65535) r.stunPort = Number(val);
    else if (k === 'ipv6' && !r.ipv6) {
      try {
        const ip = parseIp(val);
        if (ip.family !== 6) throw new AddressSyntaxError('');
        r.ipv6 = ip.text;
      } catch {
        throw new InvalidArgumentError(`"${terminalSafe(v, 120)}": ipv6=${terminalSafe(val, 64)} is not an IPv6 address`);
      }
    } else throw new InvalidArgumentError(`"${terminalSafe(v, 120)}": "${terminalSafe(kv, 64)}" is not stun=PORT or ipv6=ADDRESS (${RELAY_ARG_FORM})`);
  }
  return [...prev, r];
}

function dnsSuffixArg(v: string): string {
  const problem = dnsSuffixProblem(v);
  if (problem) throw new InvalidArgumentError(`"${terminalSafe(v, 80)}" is not a DNS suffix: ${problem}; use a name such as ${DEFAULT_DNS_SUFFIX}`);
  return asciiLower(v);
}

export function mapControlError(err: unknown): never {
  if (err instanceof ControlError)
    throw new CliError(err.code === 'NODE_UNKNOWN' || err.code === 'NOT_FOUND' ? 'NOT_FOUND' : err.code === 'BAD_REQUEST' ? 'USAGE' : 'FAILURE', err.message);
  throw err;
}

/** Rows as columns two spaces apart, each cell made safe for the terminal. */
function table(rows: string[][]): string {
  const safe = rows.map((r) => r.map((c) => terminalSafe(c, 256)));
  const w = safe[0]!.map((_, i) => Math.max(...safe.map((r) => (r[i] ?? '').length)));
  const lines = safe.map((r) =>
    r
      .map((c, i) => c.padEnd(w[i]!))
      .join('  ')
      .trimEnd(),
  );
  return `${lines.join('\n')}\n`;
}

// loaded on use: the database engine (WASM) must not slow down every other command
export const admin = async () => (await import('../control/admin-client.js')).admin;

export const stateDirOption = (): Option =>
  new Option('--state-dir <dir>', "the control server's state directory").default(controlStateDirFromEnv() ?? DEFAULT_CONTROL_STATE_DIR);

interface AuthKeyCreateOpts {
  stateDir: string;
  reusable?: boolean;
  ephemeral?: boolean;
  expiry?: number;
  user?: string;
  tags?: string;
  json?: boolean;
  join?: boolean;
  controlUrl?: string[];
  tlsCert?: string;
}

export function registerControl(program: Command): void {
  const control = program.command('control').description('the control server: run it and administer its network');

  control
    .command('serve')
    .description('run the HTTPS control server')
    .addOption(new Option('--listen <host:port>', 'address to listen on').argParser(listenArg).default(listenArg(DEFAULT_LISTEN), DEFAULT_LISTEN))
    .addOption(stateDirOption())
    .option('--tls-cert <file>', 'certificate (PEM); default: a self-signed one made in the state dir')
    .option('--tls-key <file>', 'private key (PEM) for --tls-cert')
    .addOption(new Option('--relay <code=url>', 'add a relay region to the map (repeatable)').argParser(relayArg).default([]))
    .option('--config <file>', 'JSON config: relay regions (several relays per region), keyExpiry, ephemeralGrace, dnsSuffix')
    .addOption(new Option('--key-expiry <dur>', 'node keys expire after this long (default: never)').argParser(durationArg))
    .addOption(new Option('--ephemeral-grace <dur>', 'an ephemeral node offline this long is deleted').argParser(durationArg).default(30_000, '30s'))
    .addOption(
      new Option(
        '--dns-suffix <suffix>',
        `node names are NAME.SUFFIX (default: the one set before, else ${DEFAULT_DNS_SUFFIX}); kept in the state dir`,
      ).argParser(dnsSuffixArg),
    )
    .option(
      '--db <url>',
      'keep the network in PostgreSQL, postgres://USER@HOST[:PORT]/DB (password: PGPASSWORD or MESHCTL_PG_PASSWORD); default: SQLite in the state dir',
    )
    .option('--fresh', 'start a new, empty network although control.key shows one ran here (its database is missing, empty or damaged)')
    .option('--require-approval', 'new nodes wait, in no map, until `meshctl control nodes approve NODE`')
    .addOption(new Option('--admin-listen <ip:port>', 'also serve the admin page and API (/admin/) on this address alone').argParser(adminListenArg))
    .addOption(metricsListenOption('the control server'))
    .addOption(metricsAllowRemoteOption())
    .action(
      async (
        o: {
          listen: { host: string; port: number };
          stateDir: string;
          tlsCert?: string;
          tlsKey?: string;
          relay: RelayRegion[];
          keyExpiry?: number;
          ephemeralGrace: number;
          config?: string;
          fresh?: boolean;
          db?: string;
          dnsSuffix?: string;
          requireApproval?: boolean;
          adminListen?: { address: string; port: number };
        } & MetricsOpts,
        cmd: Command,
      ) => {
        if (!!o.tlsCert !== !!o.tlsKey) throw new CliError('USAGE', '--tls-cert and --tls-key go together');
        const metricsListen = metricsListenOf(o);
        if (o.config) {
          const { loadControlConfig } = await import('../control/config.js');
          let c;
          try {
            c = loadControlConfig(o.config);
          } catch (err) {
            throw new CliError('USAGE', `--config ${(err as Error).message}`);
          }
          o.relay = [...c.relays, ...o.relay];
          if (o.keyExpiry === undefined) o.keyExpiry = c.keyExpiryMs;
          if (c.ephemeralGraceMs !== undefined && cmd.getOptionValueSource('ephemeralGrace') === 'default') o.ephemeralGrace = c.ephemeralGraceMs;
          if (o.dnsSuffix === undefined) o.dnsSuffix = c.dnsSuffix;
        }
        let db: { url: string; password?: string } | undefined;
        if (o.db !== undefined) {
          const { parsePgUrl } = await import('../control/pg-store.js');
          try {
            parsePgUrl(o.db);
          } catch (err) {
            throw new CliError('USAGE', (err as Error).message);
          }
          if (o.fresh)
            throw new CliError('USAGE', '--fresh is for the SQLite database in the state dir: with --db, drop and create the PostgreSQL database instead');
          db = { url: o.db, password: takePgPassword() };
        }
        const { ControlServer } = await import('../control/server.js');
        // the metrics read the server once it exists; its request observer is handed to it here
        let view: (() => ControlMetricsView) | null = null;
        const metrics = metricsListen ? (await import('../control/metrics.js')).controlMetrics(() => view?.() ?? null) : null;
        const server = new ControlServer({
          requestObserver: metrics?.observer,
          db,
          host: o.listen.host,
          port: o.listen.port,
          stateDir: o.stateDir,
          tlsCert: o.tlsCert,
          tlsKey: o.tlsKey,
          relays: o.relay,
          keyExpiryMs: o.keyExpiry ?? null,
          ephemeralGraceMs: o.ephemeralGrace,
          fresh: o.fresh === true,
          dnsSuffix: o.dnsSuffix,
          requireApproval: o.requireApproval === true,
          adminListen: o.adminListen,
          logger: (m) => process.stderr.write(`${isoTime()} meshctl control: ${m}\n`),
        });
        view = () => server.metricsView();
        try {
          await server.start();
        } catch (err) {
          if ((err as Error).name !== 'ListenError') throw new CliError('FAILURE', `meshctl control serve: ${(err as Error).message}`);
          const e = (err as Error & { errno: NodeJS.ErrnoException }).errno;
          const why =
            e.code === 'EADDRINUSE'
              ? 'the port is in use: stop the other server or pick another --listen'
              : e.code === 'EACCES'
                ? 'permission denied: use a port above 1023 or run as root'
                : e.message;
          throw new CliError('FAILURE', `meshctl control serve: cannot listen on ${o.listen.host}:${o.listen.port}: ${why}`);
        }
        await serveWithMetrics(server, metricsListen && metrics ? { listen: metricsListen, source: metrics } : null, 'meshctl control');
      },
    );

  control
    .command('ca')
    .description("print the control server's certificate (PEM), for clients' --control-ca")
    .addOption(stateDirOption())
    .action(async (o: { stateDir: string }) => {
      const { stateFiles } = await import('../control/state-dir.js');
      const f = stateFiles(o.stateDir).cert;
      if (!existsSync(f))
        throw new CliError('FAILURE', `no certificate in ${o.stateDir}: start \`meshctl control serve --state-dir ${o.stateDir}\` once to create it`);
      process.stdout.write(readFileSync(f, 'utf8'));
    });

  registerAdminTokens(control, stateDirOption, mapControlError);

  const authkey = control.command('authkey').description('auth keys that let nodes join');
  authkey
    .command('create')
    .description('create an auth key; it is printed as the last line of stdout')
    .addOption(stateDirOption())
    .option('--reusable', 'the key may register any number of nodes')
    .option('--ephemeral', 'nodes joining with it are deleted when they go offline')
    .addOption(new Option('--expiry <dur>', 'the key stops working after this long (e.g. 1h, 90d)').argParser(durationArg))
    .addOption(new Option('--user <name>', 'the nodes it registers are owned by this user').conflicts('tags'))
    .option('--tags <tags>', 'the nodes it registers carry these tags (tag:a,tag:b) and have no owner')
    .option('--join', "print a join string instead of the key: control URL(s), the server key's pin and the key (and a QR code on a terminal)")
    .addOption(
      new Option('--control-url <url>', 'with --join: https://HOST:PORT nodes reach this server at (repeatable, for replicas)').argParser(controlUrlArg),
    )
    .option('--tls-cert <file>', "with --join: the certificate `control serve --tls-cert` uses (default: the state dir's)")
    .option('--json', 'print as JSON')
    .action(async (o: AuthKeyCreateOpts) => {
      // checked before the key is made: a refused --join leaves no unused key behind
      if (o.join) await joinStringFor('mskey-check', o.controlUrl, o.stateDir, o.tlsCert);
      const owner = { user: o.user, tags: o.tags === undefined ? undefined : o.tags.split(',') };
      const k = await (await admin())
        .createAuthKey(o.stateDir, { reusable: o.reusable === true, ephemeral: o.ephemeral === true, expiryMs: o.expiry ?? null, ...owner })
        .catch(mapControlError);
      const joinString = o.join ? await joinStringFor(k.key, o.controlUrl, o.stateDir, o.tlsCert) : undefined;
      if (o.json) return printJson(joinString ? { ...k, join: joinString } : k);
      const who = k.user ? `, owner ${k.user}` : k.tags.length ? `, tags ${k.tags.join(',')}` : ', no owner';
      process.stderr.write(
        `${k.reusable ? 'reusable' : 'single-use'}${k.ephemeral ? ', ephemeral' : ''} key ${k.id}${who}, ${k.expires ? `expires ${k.expires}` : 'never expires'}\n`,
      );
      if (joinString) await printJoin(joinString);
      else process.stdout.write(`${k.key}\n`);
    });

  const nodes = control.command('nodes').description('the nodes of the network');
  nodes
    .command('list')
    .description('list nodes')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const list = await (await admin()).listNodes(o.stateDir).catch(mapControlError);
      if (o.json) return printJson(list);
      const rows = [
        ['ID', 'NAME', 'IPV4', 'IPV6', 'OS', 'OWNER', 'STATE', 'LAST SEEN'],
        ...list.map((n) => [
          String(n.id),
          n.name,
          n.addresses[0]!,
          n.addresses[1]!,
          n.os,
          ownerCell(n),
          n.pending ? 'pending' : n.expired ? 'expired' : n.online ? 'online' : 'offline',
          n.lastSeen ?? '-',
        ]),
      ];
      process.stdout.write(table(rows));
    });
  for (const [verb, done] of [
    ['delete', 'deleted'],
    ['expire', 'expired (it must re-authenticate with an auth key)'],
  ] as const) {
    nodes
      .command(`${verb} <node>`)
      .description(`${verb} a node (by id, name, address or node key)`)
      .addOption(stateDirOption())
      .option('--json', 'print as JSON')
      .action(async (ref: string, o: { stateDir: string; json?: boolean }) => {
        const a = await admin();
        const r = await (verb === 'delete' ? a.deleteNode(o.stateDir, ref) : a.expireNode(o.stateDir, ref)).catch(mapControlError);
        if (o.json) printJson(r);
        else process.stderr.write(`node ${r.name} (id ${r.id}) ${done}\n`);
      });
  }

  const deps: IdentityCliDeps = { admin, stateDirOption, mapControlError, table };
  registerAuthKeyAdmin(authkey, deps);
  registerNodeApprove(nodes, deps);
  registerUsers(control, deps);
  registerDns(control);
  registerRoutes(control);
  registerDevices(control);
  registerPolicy(control);
}

function registerRoutes(control: Command): void {
  const routes = control.command('routes').description('subnet routes and exit nodes: what nodes advertise, and what is approved');
  routes
    .command('list')
    .description('list advertised and approved routes per node, which router is primary, and exit nodes')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const rows = await (await admin()).listRoutes(o.stateDir).catch(mapControlError);
      if (o.json) return printJson(rows);
      if (rows.length === 0) return void process.stdout.write('no routes advertised or approved\n');
      const yes = (b: boolean): string => (b ? 'yes' : 'no');
      process.stdout.write(
        table([
          ['NODE', 'PREFIX', 'ADVERTISED', 'APPROVED', 'PRIMARY', 'STATE'],
          ...rows.map((r) => [
            r.node,
            r.kind === 'exit' ? 'exit node' : r.prefix,
            yes(r.advertised),
            yes(r.approved),
            r.kind === 'exit' ? '-' : yes(r.primary),
            r.online ? 'online' : 'offline',
          ]),
        ]),
      );
    });
  routes
    .command('approve <node> <prefix>')
    .description('approve PREFIX for NODE (also before it advertises it); 0.0.0.0/0 or ::/0 approves NODE as an exit node')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (node: string, prefix: string, o: { stateDir: string; json?: boolean }) => {
      const r = await (await admin()).approveRoute(o.stateDir, node, prefix).catch(mapControlError);
      if (o.json) return printJson(r);
      for (const n of r.notes) process.stderr.write(`note: ${terminalSafe(n, 300)}\n`);
      const what = r.exitNode ? 'exit node' : r.prefixes[0]!;
      process.stderr.write(`${what} approved for ${r.node}${r.advertised ? '' : ' (not advertised yet: active once the node advertises it)'}\n`);
    });
  routes
    .command('reject <node> <prefix>')
    .description("remove the approval of PREFIX for NODE (0.0.0.0/0 or ::/0: the exit node); it leaves every node's map at once")
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (node: string, prefix: string, o: { stateDir: string; json?: boolean }) => {
      const r = await (await admin()).rejectRoute(o.stateDir, node, prefix).catch(mapControlError);
      if (o.json) return printJson(r);
      process.stderr.write(`${r.exitNode ? 'exit node' : r.prefixes[0]!} no longer approved for ${r.node}\n`);
    });
}

function registerDevices(control: Command): void {
  const device = control.command('device').description('devices on the stock WireGuard app (phones), reached through a gateway node');
  device
    .command('add <name>')
    .description('add a device behind GATEWAY and print its wg-quick config (and a QR code on a terminal); the private key is printed once, never stored')
    .requiredOption('--via <gateway>', 'the gateway node (name, id or address) the device connects to')
    .option('--endpoint <host:port>', "the gateway's address as the device reaches it (default: its public endpoint, if it reports one)")
    .addOption(stateDirOption())
    .option('--json', 'print as JSON (the config included)')
    .action(async (name: string, o: { via: string; endpoint?: string; stateDir: string; json?: boolean }) => {
      const { generatePrivateKey, publicKeyOf } = await import('../crypto/x25519.js');
      const { keyToText } = await import('../crypto/keys.js');
      const { wgQuickConfig } = await import('../control/devices.js');
      // made here and printed once: the private key never reaches the control server
      const priv = generatePrivateKey();
      const info = await (await admin()).addDevice(o.stateDir, name, o.via, keyToText(publicKeyOf(priv)), o.endpoint).catch(mapControlError);
      const config = wgQuickConfig(keyToText(priv), info);
      priv.fill(0);
      if (o.json) return printJson({ ...info, config });
      process.stderr.write(
        `device ${info.device.name} (${info.device.addresses.join(', ')}) added behind ${info.device.gateway}; Endpoint ${info.endpoint}: ${info.endpointSource}\n`,
      );
      process.stderr.write('the private key below is shown once and stored nowhere: keep this config safe\n');
      process.stdout.write(config);
      if (process.stdout.isTTY) {
        const qrcode = (await import('qrcode')).default;
        process.stdout.write(`\n${await qrcode.toString(config, { type: 'terminal', small: true, errorCorrectionLevel: 'L' })}\n`);
      }
    });
  device
    .command('list')
    .description('list devices')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const list = await (await admin()).listDevices(o.stateDir).catch(mapControlError);
      if (o.json) return printJson(list);
      process.stdout.write(
        table([
          ['ID', 'NAME', 'IPV4', 'IPV6', 'GATEWAY', 'CREATED'],
          ...list.map((d) => [String(d.id), d.name, d.addresses[0]!, d.addresses[1]!, d.gateway, d.created]),
        ]),
      );
    });
  device
    .command('remove <device>')
    .description('remove a device (by name, id or address); its gateway drops it with the next map')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (ref: string, o: { stateDir: string; json?: boolean }) => {
      const r = await (await admin()).removeDevice(o.stateDir, ref).catch(mapControlError);
      if (o.json) return printJson(r);
      process.stderr.write(`device ${r.name} (id ${r.id}) removed\n`);
    });
}

function registerDns(control: Command): void {
  const dns = control.command('dns').description("the network's names (MagicDNS): suffix, split-DNS routes, extra records");
  dns
    .command('show')
    .description("print the DNS suffix, the nodes' resolver addresses, the routes and the records")
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (o: { stateDir: string; json?: boolean }) => {
      const d = await (await admin()).showDns(o.stateDir).catch(mapControlError);
      if (o.json) return printJson(d);
      let out = table([
        ['suffix', d.suffix],
        ['resolvers', d.resolvers.join(', ')],
      ]);
      out += d.routes.length
        ? `\nroutes:\n${table([['DOMAIN', 'RESOLVERS'], ...d.routes.map((r) => [r.domain, r.resolvers.join(', ')])])}`
        : '\nroutes: none\n';
      const records = [
        ...d.records.map((r) => [r.name, r.type, r.value, '']),
        ...d.shadowedRecords.map((r) => [r.name, r.type, r.value, '(a node has this name; not served)']),
      ];
      out += records.length ? `\nrecords:\n${table([['NAME', 'TYPE', 'VALUE', ''], ...records])}` : '\nrecords: none\n';
      process.stdout.write(out);
    });

  const route = dns.command('route').description('split DNS: send the names under a domain to its own resolvers');
  route
    .command('add <domain> <resolvers...>')
    .description('route DOMAIN (and names under it) to RESOLVER[,RESOLVER…] (IP, IP:PORT or [IPv6]:PORT); replaces an existing route for DOMAIN')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (domain: string, resolvers: string[], o: { stateDir: string; json?: boolean }) => {
      const list = resolvers.flatMap((r) => r.split(',')).filter((r) => r !== '');
      const r = await (await admin()).addDnsRoute(o.stateDir, domain, list).catch(mapControlError);
      if (o.json) printJson(r);
      else process.stderr.write(`DNS route ${r.domain} -> ${r.resolvers.join(', ')} ${r.replaced ? 'replaced' : 'added'}\n`);
    });
  route
    .command('remove <domain>')
    .description('remove the route for DOMAIN')
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (domain: string, o: { stateDir: string; json?: boolean }) => {
      const r = await (await admin()).removeDnsRoute(o.stateDir, domain).catch(mapControlError);
      if (o.json) printJson(r);
      else process.stderr.write(`DNS route ${r.domain} removed\n`);
    });

  const record = dns.command('record').description('extra A/AAAA records every node serves');
  record
    .command('add <name> <address>')
    .description("add a record NAME -> ADDRESS (A for IPv4, AAAA for IPv6); a node's own name (NAME.suffix) is refused")
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (name: string, address: string, o: { stateDir: string; json?: boolean }) => {
      const r = await (await admin()).addDnsRecord(o.stateDir, name, address).catch(mapControlError);
      if (o.json) printJson(r);
      else process.stderr.write(`DNS record ${r.name} ${r.type} ${r.value} ${r.added ? 'added' : 'was already there'}\n`);
    });
  record
    .command('remove <name> [address]')
    .description("remove NAME's records, or only the one with ADDRESS")
    .addOption(stateDirOption())
    .option('--json', 'print as JSON')
    .action(async (name: string, address: string | undefined, o: { stateDir: string; json?: boolean }) => {
      const r = await (await admin()).removeDnsRecord(o.stateDir, name, address).catch(mapControlError);
      if (o.json) printJson(r);
      else process.stderr.write(`${r.removed} DNS record${r.removed === 1 ? '' : 's'} of ${r.name} removed\n`);
    });
}
