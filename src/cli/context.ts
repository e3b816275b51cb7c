// What every node-side command needs: the socket path (flag, env or default),
// a local API client, and option parsers that fail with usage errors.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { LocalClient } from '../localapi/client.js';
import { DEFAULT_SOCKET } from '../localapi/types.js';
import { parseDuration } from '../util/duration.js';
import { socketFromEnv } from '../util/knobs.js';
import { sdNotify, statusLine } from '../util/sd-notify.js';

export function socketOf(cmd: Command): string {
  let c: Command | null = cmd;
  while (c) {
    const s = (c.opts() as { socket?: string }).socket;
    if (s) return s;
    c = c.parent;
  }
  return socketFromEnv() ?? DEFAULT_SOCKET;
}

export function clientOf(cmd: Command): LocalClient {
  return new LocalClient(socketOf(cmd));
}

export function durationArg(v: string): number {
  const ms = parseDuration(v);
  if (ms === null || ms <= 0) throw new InvalidArgumentError(`"${v}" is not a duration (e.g. 500ms, 10s, 5m, 2h, 7d)`);
  return ms;
}

export function portArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError(`"${v}" is not a port number (0-65535)`);
  return n;
}

export function boolArg(v: string): boolean {
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw new InvalidArgumentError(`"${v}" is not true or false`);
}

/** A comma-separated list of prefixes (`--advertise-routes P1,P2`); "" is the empty list. The daemon checks each prefix. */
export function prefixListArg(v: string): string[] {
  return v
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

/**
 * Keeps a server command running until SIGTERM/SIGINT, then stops the server and exits 0. It is called once the
 * server listens, so it tells systemd (Type=notify) the service is ready, and that it is stopping on a signal.
 */
export async function serveUntilSignal(server: { stop(): Promise<void> }): Promise<never> {
  sdNotify(`READY=1\n${statusLine(`serving, pid ${process.pid}`)}`);
  const stop = (): void => {
    sdNotify(`STOPPING=1\n${statusLine('shutting down')}`);
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return new Promise<never>(() => {});
}
