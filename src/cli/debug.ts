// `meshctl debug engine`: the WireGuard engine alone on a TUN device, driven
// by the standard `wg` tool over the cross-platform UAPI, like wireguard-go.
import type { Command } from 'commander';
import { CliError } from './errors.js';

const IFNAME_RE = /^[^\s/:]{1,15}$/;

export function registerDebug(program: Command): void {
  const debug = program.command('debug').description('tools for developers and for checking interoperability');
  debug
    .command('engine')
    .description('run the WireGuard engine alone on a TUN device, configured with `wg` over /var/run/wireguard/NAME.sock')
    .requiredOption('--ifname <name>', 'TUN interface to create (1–15 characters)')
    .option('--listen-port <n>', 'UDP port to listen on (0 = any; `wg set NAME listen-port` changes it)', '0')
    .option('--mtu <n>', 'MTU of the interface', '1420')
    .option('--uapi-dir <dir>', 'directory of the UAPI socket', '/var/run/wireguard')
    .option('--foreground', 'stay in the foreground (default: detach once the UAPI socket is up)')
    .action(async (opts: { ifname: string; listenPort: string; mtu: string; uapiDir: string; foreground?: boolean }) => {
      if (!IFNAME_RE.test(opts.ifname)) {
        throw new CliError('USAGE', `--ifname: "${opts.ifname}" is not an interface name; use 1–15 characters without spaces, '/' or ':'`);
      }
      const port = parsePort(opts.listenPort);
      const mtu = Number(opts.mtu);
      if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new CliError('USAGE', `--mtu: "${opts.mtu}" must be a whole number from 576 to 65535`);
      const config = { ifname: opts.ifname, listenPort: port, mtu, uapiDir: opts.uapiDir };
      const { runEngineForeground, startEngineDetached } = await import('../daemon/debug-engine.js');
      if (opts.foreground) await runEngineForeground(config);
      else await startEngineDetached(config, process.argv.slice(1));
    });
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError('USAGE', `--listen-port: "${text}" must be a whole number from 0 to 65535`);
  return n;
}
