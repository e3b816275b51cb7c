// `meshctl dns status` and `meshctl dns query NAME [TYPE]`: what the daemon's
// resolver does (and did to the OS resolver), and one question asked of it
// directly, for scripts and debugging. Everything shown came from the network
// or the disk through the daemon, so every field is made terminal-safe.
import type { Command } from 'commander';
import { LOCALAPI, type DnsQueryRequest, type DnsQueryResponse, type DnsStatus } from '../localapi/types.js';
import { clientOf, printJson, socketOf } from './context.js';
import { CliError, fromApi } from './errors.js';
import { terminalSafe } from '../util/text.js';

/** A DNS name is at most 253 characters; a record's text form (an IPv6 address, a name) fits as well. */
const MAX_FIELD_CHARS = 253;
/** A health or error line. */
const MAX_LINE_CHARS = 1024;

const t = (v: unknown): string => terminalSafe(v, MAX_FIELD_CHARS);

export function formatDnsStatus(s: DnsStatus): string {
  const lines: string[] = [];
  const row = (k: string, v: string): number => lines.push(`${(k ? `${k}:` : '').padEnd(12)}${v}`);
  if (!s.enabled) row('MagicDNS', 'off (the control server sends no DNS config)');
  else row('MagicDNS', `on, names are NAME.${t(s.suffix)}`);
  row('Resolver', s.resolvers.length ? s.resolvers.map(t).join(', ') : '-');
  row('Listening', s.listening.length ? `${s.listening.map(t).join(', ')} (UDP and TCP)` : 'no');
  row('OS', `${t(s.mode)}: ${terminalSafe(s.why, MAX_LINE_CHARS)}`);
  s.written.forEach((w, i) => row(i === 0 ? 'Written' : '', terminalSafe(w, MAX_LINE_CHARS)));
  row('Upstreams', s.upstreams.length ? s.upstreams.map(t).join(', ') : 'none');
  if (s.routes.length === 0) row('Split DNS', 'none');
  for (const r of s.routes) row('Split DNS', `${t(r.domain)} -> ${r.resolvers.map(t).join(', ')}`);
  row('Records', String(s.records));
  if (s.counters) {
    row(
      'Counters',
      Object.entries(s.counters)
        .map(([k, v]) => `${t(k)} ${Number(v)}`)
        .join(', '),
    );
  }
  for (const e of s.errors) lines.push(`# Health: ${terminalSafe(e, MAX_LINE_CHARS)}`);
  return `${lines.join('\n')}\n`;
}

/** dig's answer section: NAME. TTL IN TYPE DATA, after a comment line naming the server, the status and the time. */
export function formatDnsAnswer(a: DnsQueryResponse): string {
  const head = `;; ${t(a.name)} ${t(a.type)}: ${t(a.rcode)} from ${t(a.server)} in ${Math.round(a.ms)} ms, ${a.answers.length} answer(s)`;
  const rows = a.answers.map((r) => `${t(r.name).replace(/\.?$/, '.')}\t${Number(r.ttl)}\tIN\t${t(r.type)}\t${t(r.data)}`);
  return `${[head, ...rows].join('\n')}\n`;
}

/** The exit status for a response code: NXDOMAIN and SERVFAIL have their own (man meshctl(1), EXIT STATUS). */
export function rcodeError(a: DnsQueryResponse): CliError | null {
  const what = `${t(a.name)} ${t(a.type)}`;
  if (a.rcode === 'NOERROR') return null;
  if (a.rcode === 'NXDOMAIN') return new CliError('NXDOMAIN', `${what}: NXDOMAIN (no such name)`);
  if (a.rcode === 'SERVFAIL') return new CliError('SERVFAIL', `${what}: SERVFAIL (the resolver could not get an answer; see \`meshctl dns status\`)`);
  return new CliError('FAILURE', `${what}: ${t(a.rcode)}`);
}

export function registerDns(program: Command): void {
  const dns = program.command('dns').description("the mesh's name service (MagicDNS) on this node");
  dns
    .command('status')
    .description('show the resolver, what was configured in the OS and why, upstreams, split DNS and counters')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const s = await clientOf(cmd)
        .get<DnsStatus>(LOCALAPI.dnsStatus)
        .catch((e: unknown) => Promise.reject(fromApi(e, socketOf(cmd))));
      if (o.json) printJson(s);
      else process.stdout.write(formatDnsStatus(s));
    });
  dns
    .command('query <name> [type]')
    .description("ask the daemon's resolver directly (type A, AAAA, PTR, TXT, MX, ...; default A); exit 8 on NXDOMAIN, 9 on SERVFAIL")
    .option('--json', 'print as JSON')
    .action(async (name: string, type: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const req: DnsQueryRequest = { name, type: (type ?? 'A').toUpperCase() };
      const a = await clientOf(cmd)
        .post<DnsQueryResponse>(LOCALAPI.dnsQuery, req)
        .catch((e: unknown) => Promise.reject(fromApi(e, socketOf(cmd))));
      if (o.json) printJson(a);
      else process.stdout.write(formatDnsAnswer(a));
      const err = rcodeError(a);
      if (err) throw err;
    });
}
