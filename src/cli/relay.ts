// `meshctl relay serve`: the relay and its STUN server.
import { type Command, Option } from 'commander';
import { portArg } from './context.js';
import { listenArg } from './control.js';
import { CliError } from './errors.js';
import { isoTime } from '../util/time.js';
import { RELAY_MESH_KEY_ENV, relayStateDirFromEnv } from '../util/knobs.js';
import type { MeshPeer } from '../relay/mesh-peer.js';
import { metricsAllowRemoteOption, metricsListenOf, metricsListenOption, serveWithMetrics } from './metrics.js';

export const DEFAULT_RELAY_STATE_DIR = '/var/lib/meshctl-relay';

export function registerRelay(program: Command): void {
  const relay = program.command('relay').description('the relay: carries packets between nodes that cannot reach each other directly');
  relay
    .command('serve')
    .description('run a relay (TLS/TCP, HTTP upgrade) and a STUN server')
    .addOption(new Option('--listen <host:port>', 'address for the relay (HTTPS)').argParser(listenArg).default(listenArg('0.0.0.0:443'), '0.0.0.0:443'))
    .addOption(new Option('--stun-port <n>', 'UDP port of the STUN server').argParser(portArg).default(3478))
    .requiredOption('--region <code>', "the region this relay serves (as named in the control server's --relay)")
    .option('--state-dir <dir>', 'where its key and self-signed certificate live', relayStateDirFromEnv() ?? DEFAULT_RELAY_STATE_DIR)
    .option('--tls-cert <file>', 'certificate (PEM); default: self-signed, pinned by nodes through the control server')
    .option('--tls-key <file>', 'private key (PEM) for --tls-cert')
    .option('--verify-clients <url>', 'only relay for nodes this control server knows (https://HOST:PORT)')
    .option('--control-ca <pemfile>', "the control server's certificate, for --verify-clients")
    .option(
      '--mesh-key <file:PATH>',
      `shared secret of the relays of this region, read from PATH (mode 600); or set ${RELAY_MESH_KEY_ENV}. Never the secret itself: argv shows in ps`,
    )
    .addOption(
      new Option('--mesh-with <url>', 'another relay of this region to mesh with: https://HOST:PORT?fingerprint=SHA256HEX, its certificate pinned (repeatable)')
        .argParser((v: string, prev: string[]) => [...prev, v])
        .default([]),
    )
    .addOption(
      new Option('--client-rate <bytes/s>', 'per-client rate limit, 0 = none')
        .argParser((v: string) => {
          if (!/^\d+$/.test(v)) throw new CliError('USAGE', `--client-rate ${v}: expected bytes per second`);
          return Number(v);
        })
        .default(0),
    )
    .addOption(metricsListenOption('the relay'))
    .addOption(metricsAllowRemoteOption())
    .action(
      async (o: {
        listen: { host: string; port: number };
        stunPort: number;
        region: string;
        stateDir: string;
        tlsCert?: string;
        tlsKey?: string;
        verifyClients?: string;
        controlCa?: string;
        meshKey?: string;
        meshWith: string[];
        clientRate: number;
        metricsListen?: string;
        metricsAllowRemote?: boolean;
      }) => {
        if (!!o.tlsCert !== !!o.tlsKey) throw new CliError('USAGE', '--tls-cert and --tls-key go together');
        const metricsListen = metricsListenOf(o);
        const { loadMeshKey } = await import('../relay/mesh-key.js');
        const { parseMeshPeer } = await import('../relay/mesh-peer.js');
        let meshKey: string | undefined;
        let meshWith: MeshPeer[];
        try {
          meshKey = loadMeshKey(o.meshKey);
          meshWith = o.meshWith.map(parseMeshPeer);
        } catch (err) {
          throw new CliError('USAGE', (err as Error).message);
        }
        if (meshWith.length && !meshKey)
          throw new CliError(
            'USAGE',
            `--mesh-with needs the region's mesh key: --mesh-key file:PATH or ${RELAY_MESH_KEY_ENV} (the same on every relay of the region)`,
          );
        if (!/^[a-z0-9-]{1,32}$/.test(o.region)) throw new CliError('USAGE', `--region ${o.region}: use 1-32 lower-case letters, digits or dashes`);
        const { RelayServer } = await import('../relay/server.js');
        const server = new RelayServer({
          host: o.listen.host,
          port: o.listen.port,
          stunPort: o.stunPort,
          region: o.region,
          stateDir: o.stateDir,
          tlsCert: o.tlsCert,
          tlsKey: o.tlsKey,
          verifyClientsUrl: o.verifyClients,
          verifyClientsCa: o.controlCa,
          meshKey,
          meshWith,
          clientRateBytesPerSec: o.clientRate,
          logger: (m) => process.stderr.write(`${isoTime()} meshctl relay: ${m}\n`),
        });
        try {
          await server.start();
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          throw new CliError('FAILURE', `meshctl relay serve: ${e.code === 'EADDRINUSE' ? 'a port is in use (relay or STUN): pick others' : e.message}`);
        }
        process.on('SIGUSR1', () =>
          process.stderr.write(`stats ${JSON.stringify({ ...server.stats, stun: server.stunStats, verify: server.verifierStats })}\n`),
        );
        const metrics = metricsListen ? { listen: metricsListen, source: (await import('../relay/metrics.js')).relayMetrics(server) } : null;
        await serveWithMetrics(server, metrics, 'meshctl relay');
      },
    );
}
