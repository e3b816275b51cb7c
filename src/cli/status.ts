// `meshctl status`: the node and its peers, with the path that carries each
// peer's traffic now; `--watch` keeps the table live (ink on a terminal).
import { type Command, Option } from 'commander';
import { DaemonNotRunning } from '../localapi/client.js';
import { LOCALAPI, type Status } from '../localapi/types.js';
import { clientOf, durationArg, printJson, socketOf } from './context.js';
import { CliError, fromApi } from './errors.js';
import { formatStatus, stoppedMessage, type TableOptions } from './status-format.js';
import { terminalSafe } from '../util/text.js';

interface StatusOpts {
  json?: boolean;
  peers: boolean;
  self: boolean;
  active?: boolean;
  watch?: boolean;
  interval: number;
}

const DEFAULT_WATCH_INTERVAL = '1s';

async function watch(fetch: () => Promise<Status>, o: TableOptions, intervalMs: number): Promise<void> {
  const render = (s: Status): string => stoppedMessage(s) ?? (formatStatus(s, o) || '(no peers)\n');
  if (!process.stdout.isTTY) {
    for (;;) {
      process.stdout.write(render(await fetch()) + '\n');
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
  const React = (await import('react')).default;
  const { render: inkRender, Text, Box } = await import('ink');
  function Live(): React.ReactElement {
    const [text, setText] = React.useState('…');
    React.useEffect(() => {
      let stop = false;
      const tick = async (): Promise<void> => {
        try {
          setText(render(await fetch()));
        } catch (err) {
          setText(terminalSafe((err as Error).message, 1024));
        }
        if (!stop) setTimeout(() => void tick(), intervalMs);
      };
      void tick();
      return () => void (stop = true);
    }, []);
    return React.createElement(
      Box,
      { flexDirection: 'column' },
      React.createElement(Text, { dimColor: true }, `meshctl status — every ${intervalMs / 1000}s, Ctrl-C to stop`),
      React.createElement(Text, null, text.trimEnd()),
    );
  }
  await inkRender(React.createElement(Live)).waitUntilExit();
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show this node and its peers, and the path that carries traffic to each')
    .option('--json', 'print the full status as JSON (stable, documented in meshctl(1))')
    .option('--peers', 'show peers (default)', true)
    .option('--no-peers', 'leave peers out')
    .option('--self', 'show this node (default)', true)
    .option('--no-self', 'leave this node out')
    .option('--active', 'only peers that moved traffic in the last 45 s')
    .option('--watch', 'refresh until interrupted')
    .addOption(new Option('--interval <dur>', 'refresh interval for --watch').argParser(durationArg).default(1000, DEFAULT_WATCH_INTERVAL))
    .action(async (o: StatusOpts, cmd: Command) => {
      const client = clientOf(cmd);
      const fetch = (): Promise<Status> => client.get<Status>(LOCALAPI.status);
      const table: TableOptions = { self: o.self, peers: o.peers, activeOnly: o.active === true };
      let s: Status;
      try {
        s = await fetch();
      } catch (err) {
        if (err instanceof DaemonNotRunning && !o.json) throw new CliError('FAILURE', 'meshctl is stopped.');
        throw fromApi(err, socketOf(cmd));
      }
      if (o.watch) return watch(fetch, table, o.interval);
      if (o.json) return printJson(s);
      const stopped = stoppedMessage(s);
      if (stopped) throw new CliError('FAILURE', stopped);
      process.stdout.write(formatStatus(s, table));
    });
}
