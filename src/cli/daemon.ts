// `meshctl daemon`: the node daemon in the foreground, as `up` starts it in
// the background and as service managers run it.
import { type Command, Option } from 'commander';
import { DEFAULT_IFNAME, DEFAULT_PORT, DEFAULT_STATE_DIR } from '../localapi/types.js';
import { portArg, socketOf } from './context.js';
import { CliError } from './errors.js';
import { meshctlVersion } from './version.js';
import { stateDirFromEnv } from '../util/knobs.js';
import { metricsAllowRemoteOption, metricsListenOf, metricsListenOption, type MetricsOpts } from './metrics.js';

export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('run the node daemon in the foreground (`up` starts it for you)')
    .option('--state-dir <dir>', 'state directory (keys, settings, last network map)', stateDirFromEnv() ?? DEFAULT_STATE_DIR)
    .option('--ifname <name>', 'the mesh interface', DEFAULT_IFNAME)
    .addOption(new Option('--port <n>', 'UDP port (0 = any)').argParser(portArg).default(DEFAULT_PORT))
    .addOption(metricsListenOption('the daemon'))
    .addOption(metricsAllowRemoteOption())
    .action(async (o: { stateDir: string; ifname: string; port: number } & MetricsOpts, cmd: Command) => {
      const metricsListen = metricsListenOf(o);
      const { startDaemon } = await import('../daemon/main.js');
      try {
        await startDaemon({ socket: socketOf(cmd), stateDir: o.stateDir, ifname: o.ifname, port: o.port, version: meshctlVersion(), metricsListen });
      } catch (err) {
        throw new CliError('FAILURE', `meshctl daemon: ${(err as Error).message}`);
      }
      await new Promise<never>(() => {});
    });
}
