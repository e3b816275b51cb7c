// Runs a bare WireGuard device: TUN + UDP + UAPI socket, nothing else. It is
// how meshctl's data plane is tested against wireguard-go with the `wg` tool.
import { spawn } from 'node:child_process';
import { existsSync } from '../util/cjs.js';
import { join } from 'node:path';
import { Device } from '../engine/device/device.js';
import { UdpBind } from '../engine/conn/udp.js';
import { startUapiServer } from '../engine/ipc/uapi-server.js';
import { openTun } from '../tun/device.js';
import { engineTimersFromEnv } from './test-knobs.js';
import { tuneJitForDataPath } from '../util/jit-tiering.js';
import { IdleMemory } from '../util/idle-memory.js';
import { readFileSync } from 'node:fs';
import { AclFilter } from '../engine/device/acl-filter.js';
import type { FilterRule } from '../netmap/types.js';
import { MAX_FILTER_RULES, parseFilterRule } from '../netmap/parse.js';
import { knobText } from '../util/knobs.js';

export interface EngineConfig {
  ifname: string;
  listenPort: number;
  mtu: number;
  uapiDir: string;
}

const DETACH_READY_TIMEOUT_MS = 10_000;
const DETACH_POLL_MS = 50;

function log(msg: string): void {
  process.stderr.write(`meshctl engine: ${msg}\n`);
}

/** The rules MESHCTL_ENGINE_ACL_RULES names (a JSON array, as a map's packetFilter), or null when it is unset. */
function rulesFromEnv(): FilterRule[] | null {
  const path = knobText('MESHCTL_ENGINE_ACL_RULES');
  if (path === undefined) return null;
  const json: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (!Array.isArray(json) || json.length > MAX_FILTER_RULES) throw new Error(`${path}: not a JSON array of at most ${MAX_FILTER_RULES} packet-filter rules`);
  return json.map((r, i) => parseFilterRule(r, `${path}[${i}]`));
}

export async function runEngineForeground(cfg: EngineConfig): Promise<void> {
  const device = new Device({ mtu: cfg.mtu, timers: engineTimersFromEnv(process.env), logger: log });
  const rules = rulesFromEnv();
  const acl = rules ? new AclFilter(rules, { clock: device.clock }) : null;
  if (acl) device.setPacketFilter(acl.hooks());
  const tun = await openTun({ name: cfg.ifname, mtu: cfg.mtu, log });
  const bind = new UdpBind(log);
  let uapi: { close(): Promise<void> } | null = null;
  const idle = new IdleMemory(() => tun.stats.txPackets + device.stats.routed);
  const printStats = (): void => {
    process.stderr.write(
      `stats ${JSON.stringify({ ...device.stats, tun: tun.stats, udpSendErrors: bind.sendErrors, udpBatches: bind.batchedSends, udpSend: bind.sendStats, udpReader: bind.readerStats, acl: acl?.stats() ?? null })}\n`,
    );
  };
  let closing = false;
  const shutdown = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    idle.stop();
    printStats();
    await uapi?.close();
    await device.close();
    await tun.close();
    process.exit(0);
  };
  try {
    await device.attachBind(bind, cfg.listenPort);
    device.attachTun((p) => tun.write(p));
    tun.onPackets((pkts: Buffer[]) => device.sendPackets(pkts));
    tuneJitForDataPath();
    // the daemon's memory policy, so what the bench measures here is what `up` runs
    idle.start();
    uapi = await startUapiServer({ ifname: cfg.ifname, target: device, dir: cfg.uapiDir, logger: log });
  } catch (err) {
    idle.stop();
    await uapi?.close();
    await device.close();
    await tun.close();
    throw err;
  }
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGUSR1', printStats);
  log(`${cfg.ifname} up, listening on UDP port ${device.port}, UAPI at ${join(cfg.uapiDir, cfg.ifname + '.sock')}`);
  // stay alive: the UAPI server and sockets keep the loop busy until a signal
  await new Promise<never>(() => {});
}

/** Re-runs this command with --foreground in the background and returns once its UAPI socket exists. */
export async function startEngineDetached(cfg: EngineConfig, args: string[]): Promise<void> {
  const sock = join(cfg.uapiDir, `${cfg.ifname}.sock`);
  const child = spawn(process.execPath, [...args, '--foreground'], { detached: true, stdio: 'ignore' });
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  const deadline = Date.now() + DETACH_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`engine exited with status ${exited} before it was up; run with --foreground to see why`);
    if (existsSync(sock)) {
      child.unref();
      process.stdout.write(`${cfg.ifname}: engine running as pid ${child.pid}\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, DETACH_POLL_MS));
  }
  child.kill('SIGTERM');
  throw new Error(`engine did not come up within ${DETACH_READY_TIMEOUT_MS / 1000}s; run with --foreground to see why`);
}
