// `meshctl ping PEER`: disco probes over the path the engine uses for PEER,
// one line per pong naming that path; stops at the first direct pong unless
// --until-direct=false.
import { type Command, Option } from 'commander';
import { LOCALAPI, type PingResponse } from '../localapi/types.js';
import { boolArg, clientOf, durationArg, printJson, socketOf } from './context.js';
import { CliError, fromApi } from './errors.js';
import { terminalSafe } from '../util/text.js';

const DEFAULT_COUNT = 10;
const DEFAULT_TIMEOUT_MS = 5000;
/** Pause between probes after a pong, as ping(8) does. */
const PROBE_INTERVAL_MS = 1000;

interface PingOpts {
  c: number;
  untilDirect: boolean;
  timeout: number;
  json?: boolean;
}

function countArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1) throw new CliError('USAGE', `-c ${v}: expected a count of at least 1`);
  return n;
}

export function registerPing(program: Command): void {
  program
    .command('ping <peer>')
    .description('probe a peer (hostname or mesh IP) and show which path answered')
    .addOption(new Option('-c, --count <n>', 'number of probes').argParser(countArg).default(DEFAULT_COUNT))
    .addOption(new Option('--until-direct [bool]', 'stop at the first direct pong').argParser(boolArg).default(true))
    .addOption(new Option('--timeout <dur>', 'wait this long for each pong').argParser(durationArg).default(DEFAULT_TIMEOUT_MS, '5s'))
    .option('--json', 'print one JSON object per probe')
    .action(async (peer: string, o: PingOpts & { count: number }, cmd: Command) => {
      const client = clientOf(cmd);
      let pongs = 0;
      let direct = false;
      for (let i = 0; i < o.count; i++) {
        let r: PingResponse;
        try {
          r = await client.post<PingResponse>(LOCALAPI.ping, { peer, timeoutMs: o.timeout });
        } catch (err) {
          throw fromApi(err, socketOf(cmd));
        }
        if (o.json) printJson(r);
        if (!r.pong) {
          if (!o.json) process.stdout.write(`timeout waiting for pong from ${terminalSafe(r.name)} (${terminalSafe(r.ip)}) after ${o.timeout} ms\n`);
          continue;
        }
        pongs++;
        const via = terminalSafe(r.pong.via === 'direct' ? r.pong.endpoint : `relay(${r.pong.region})`);
        if (!o.json)
          process.stdout.write(`pong from ${terminalSafe(r.name)} (${terminalSafe(r.ip)}) via ${via} in ${Math.max(0, Math.round(r.pong.latencyMs))}ms\n`);
        if (r.pong.via === 'direct') {
          direct = true;
          if (o.untilDirect) return;
        }
        if (i + 1 < o.count) await new Promise((res) => setTimeout(res, PROBE_INTERVAL_MS));
      }
      if (pongs === 0) throw new CliError('TIMEOUT', 'no reply');
      if (o.untilDirect && !direct) throw new CliError('FAILURE', 'direct connection not established');
    });
}
