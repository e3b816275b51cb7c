// systemd-resolved mode: the mesh link gets its own DNS servers and domains
// through `resolvectl`, run with an argv array (no shell). Every value in the
// argv was parsed by checkPlan (addresses canonical, domains LDH, interface
// name without a leading `-`), so none of it can become an option or a word split.
import { execFile } from 'node:child_process';
import type { OsDnsPlan } from './plan.js';
import { terminalSafe } from '../util/text.js';
import { requireTool } from '../util/tools.js';

/** resolvectl answers in milliseconds; one that hangs (resolved stuck on D-Bus) must not hang `up` or `down`. */
export const RESOLVECTL_TIMEOUT_MS = 5_000;
/** resolvectl prints a line or two; more is not worth holding. */
const MAX_RESOLVECTL_OUTPUT_BYTES = 64 * 1024;

/** The calls that configure the link: servers, domains (the suffix both as routing `~d` and search `d`), no default route. */
export function resolvedApplyCalls(plan: OsDnsPlan): string[][] {
  const domains: string[] = [];
  for (const d of plan.searchDomains) domains.push(`~${d}`, d);
  for (const d of plan.routingDomains) if (!plan.searchDomains.includes(d)) domains.push(`~${d}`);
  return [
    ['dns', plan.ifname, ...plan.servers],
    ['domain', plan.ifname, ...domains],
    ['default-route', plan.ifname, 'false'],
  ];
}

export function resolvedRevertCall(ifname: string): string[] {
  return ['revert', ifname];
}

/** Runs `resolvectl ARGS`; rejects with a one-line error naming the call, its exit and resolvectl's first line of stderr. */
export function runResolvectl(bin: string, args: string[], timeoutMs = RESOLVECTL_TIMEOUT_MS): Promise<void> {
  try {
    requireTool(bin, 'resolvectl');
  } catch (err) {
    return Promise.reject(new Error(`${(err as Error).message}, or run with --accept-dns=false`));
  }
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: MAX_RESOLVECTL_OUTPUT_BYTES, windowsHide: true }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
      const why =
        e.code === 'ENOENT'
          ? `${bin} not found: install systemd-resolved's resolvectl, or run with --accept-dns=false`
          : e.killed
            ? `timed out after ${timeoutMs} ms`
            : `exit ${String(e.code)}: ${terminalSafe(String(stderr).trim().split('\n')[0] ?? '', 200)}`;
      reject(new Error(`resolvectl ${args.join(' ')} failed: ${why}`));
    });
  });
}
