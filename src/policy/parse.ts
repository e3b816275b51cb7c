// The policy file: JSON with comments (jsonc-parser), checked field by field
// into typed values (types.ts). Every refusal names the field and where it is
// in the file, e.g. `acls[2].dst[0]: unknown group "group:admin" (line 14:9)`,
// so an operator can fix it without guessing. Groups and hosts are expanded
// here; a tag must be declared in tagOwners before anything uses it.
import { parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { tagProblem, userNameProblem } from '../netmap/identity.js';
import { maskedPrefix } from '../netmap/routes.js';
import { hostPrefix, parseIp, parsePrefix } from '../util/netaddr.js';
import {
  type Acl,
  type AclDestination,
  MAX_ACL_DESTINATIONS,
  MAX_ACL_PROTOCOLS,
  MAX_ACL_SOURCES,
  MAX_AUTO_APPROVER_ROUTES,
  MAX_POLICY_ACLS,
  MAX_POLICY_BYTES,
  MAX_POLICY_GROUPS,
  MAX_POLICY_HOSTS,
  MAX_POLICY_MEMBERS,
  MAX_POLICY_TAGS,
  MAX_POLICY_TESTS,
  MAX_PORT_RANGES,
  MAX_TEST_DESTINATIONS,
  type Policy,
  type PolicyTest,
  type PortRange,
  type Selector,
} from './types.js';

/** A refused policy: the field, why, and the 1-based line and column of the value at fault. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(
    readonly field: string,
    readonly reason: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(`${field}: ${reason} (line ${line}:${col})`);
  }
}

/** IP protocols by name, as `proto` may give them. */
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  icmpv6: 58,
  'ipv6-icmp': 58,
  sctp: 132,
};

const HOST_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const GROUP_RE = /^group:[a-z0-9][a-z0-9._-]{0,62}$/;

class Reader {
  private readonly lineStarts: number[] = [0];
  constructor(text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  /** 1-based line and column of a character offset. */
  position(offset: number): [number, number] {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return [lo + 1, offset - this.lineStarts[lo]! + 1];
  }

  fail(node: Node | undefined, field: string, reason: string): never {
    const [line, col] = this.position(node?.offset ?? 0);
    throw new PolicyError(field, reason, line, col);
  }
}

const shown = (s: string): string => JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);

/** The properties of an object node, duplicates refused, only `allowed` keys. */
function props(r: Reader, node: Node, field: string, allowed: string[] | null, max: number): Array<[string, Node, Node]> {
  if (node.type !== 'object') r.fail(node, field, `expected an object, got ${node.type}`);
  const out: Array<[string, Node, Node]> = [];
  const seen = new Set<string>();
  const children = node.children ?? [];
  if (children.length > max) r.fail(node, field, `${children.length} entries, more than the ${max} allowed`);
  for (const p of children) {
    const [k, v] = p.children as [Node, Node | undefined];
    const key = k.value as string;
    const at = field ? `${field}.${key}` : key;
    if (seen.has(key)) r.fail(k, at, 'given twice');
    seen.add(key);
    if (allowed && !allowed.includes(key)) r.fail(k, at, `unknown field (expected one of ${allowed.join(', ')})`);
    if (!v) r.fail(k, at, 'no value');
    out.push([key, k, v]);
  }
  return out;
}

function items(r: Reader, node: Node, field: string, max: number): Node[] {
  if (node.type !== 'array') r.fail(node, field, `expected a list, got ${node.type}`);
  const c = node.children ?? [];
  if (c.length > max) r.fail(node, field, `${c.length} entries, more than the ${max} allowed`);
  return c;
}

function str(r: Reader, node: Node, field: string): string {
  if (node.type !== 'string') r.fail(node, field, `expected a string, got ${node.type}`);
  return node.value as string;
}

function strings(r: Reader, node: Node, field: string, max: number): Array<[string, Node, string]> {
  return items(r, node, field, max).map((n, i) => [str(r, n, `${field}[${i}]`), n, `${field}[${i}]`]);
}

/** A canonical prefix from an address (its /32 or /128) or a prefix with no host bits. */
function prefixOf(r: Reader, text: string, node: Node, field: string): string | null {
  if (!/^[0-9a-fA-F:.]+(\/\d+)?$/.test(text) || !/[.:]/.test(text)) return null;
  try {
    if (!text.includes('/')) return hostPrefix(parseIp(text)).text;
    const p = parsePrefix(text);
    const canon = maskedPrefix(p).text;
    if (canon !== p.text) r.fail(node, field, `${p.text} has host bits set: write ${canon}`);
    return p.text;
  } catch (err) {
    if (err instanceof PolicyError) throw err;
    r.fail(node, field, (err as Error).message);
  }
}

class PolicyParser {
  readonly groups = new Map<string, string[]>();
  readonly tagOwners = new Map<string, Selector[]>();
  readonly hosts = new Map<string, string>();
  constructor(readonly r: Reader) {}

  /** A source, an owner or an approver: `*`, users, groups, tags, hosts, addresses, prefixes, autogroups. */
  selectors(text: string, node: Node, field: string, where: 'src' | 'dst' | 'owner'): Selector[] {
    const r: Reader = this.r;
    if (text === '*') {
      if (where === 'owner') r.fail(node, field, '"*" cannot own a tag or approve a route');
      return [{ kind: 'all' }];
    }
    if (text.startsWith('autogroup:')) {
      if (where === 'owner') r.fail(node, field, `${shown(text)}: an autogroup cannot own a tag or approve a route`);
      if (text === 'autogroup:member') return [{ kind: 'member' }];
      if (text === 'autogroup:tagged') return [{ kind: 'tagged' }];
      if (text === 'autogroup:self') {
        if (where !== 'dst') r.fail(node, field, "autogroup:self is only a destination (the source's own devices)");
        return [{ kind: 'self' }];
      }
      r.fail(node, field, `unknown autogroup ${shown(text)} (autogroup:member, autogroup:tagged, autogroup:self)`);
    }
    if (text.startsWith('group:')) {
      const members = this.groups.get(text);
      if (!members) r.fail(node, field, `unknown group ${shown(text)}`);
      return members.map((name) => ({ kind: 'user', name }));
    }
    if (text.startsWith('tag:')) {
      const problem = tagProblem(text);
      if (problem) r.fail(node, field, `${problem}: ${shown(text)}`);
      if (where !== 'owner' && !this.tagOwners.has(text)) r.fail(node, field, `unknown tag ${shown(text)}: declare it in tagOwners`);
      return [{ kind: 'tag', name: text }];
    }
    if (text.startsWith('host:')) {
      if (where === 'owner') r.fail(node, field, 'a host cannot own a tag or approve a route');
      const prefix = this.hosts.get(text.slice(5));
      if (!prefix) r.fail(node, field, `unknown host ${shown(text)}: declare it in hosts`);
      return [{ kind: 'prefix', prefix }];
    }
    const prefix = where === 'owner' ? null : prefixOf(r, text, node, field);
    if (prefix) return [{ kind: 'prefix', prefix }];
    const problem = userNameProblem(text);
    if (problem) r.fail(node, field, `${shown(text)} is not a user, group:, tag:, host:, autogroup:, address or prefix (${problem})`);
    return [{ kind: 'user', name: text }];
  }

  /** `SELECTOR:PORTS`, split at the last colon (`[v6]:22` and `fd00::/64:22` both work). */
  destination(text: string, node: Node, field: string): AclDestination[] {
    const r: Reader = this.r;
    const colon = text.lastIndexOf(':');
    if (colon < 0) r.fail(node, field, `${shown(text)} has no ports: write ${text}:* or ${text}:22`);
    let sel = text.slice(0, colon);
    if (sel.startsWith('[') && sel.endsWith(']')) sel = sel.slice(1, -1);
    const ports = this.ports(text.slice(colon + 1), node, field);
    return this.selectors(sel, node, field, 'dst').map((selector) => ({ selector, ports }));
  }

  ports(text: string, node: Node, field: string): PortRange[] {
    const r: Reader = this.r;
    if (text === '*') return [{ first: 0, last: 65535 }];
    const parts = text.split(',');
    if (parts.length > MAX_PORT_RANGES) r.fail(node, field, `more than ${MAX_PORT_RANGES} port ranges`);
    return parts.map((p) => {
      const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(p);
      const first = m ? Number(m[1]) : NaN;
      const last = m ? Number(m[2] ?? m[1]) : NaN;
      if (!m || first > 65535 || last > 65535) r.fail(node, field, `bad port ${shown(p)}: ports are *, 22, 22,443 or 8000-8999 (0-65535)`);
      if (first > last) r.fail(node, field, `port range ${p} is empty (first > last)`);
      return { first, last };
    });
  }

  protocols(node: Node, field: string): number[] {
    const r: Reader = this.r;
    const list = node.type === 'array' ? items(r, node, field, MAX_ACL_PROTOCOLS).map((n, i) => [n, `${field}[${i}]`] as const) : [[node, field] as const];
    const out = list.map(([n, f]) => {
      const v: unknown = n.value;
      const num =
        typeof v === 'number'
          ? v
          : typeof v === 'string' && /^\d{1,3}$/.test(v)
            ? Number(v)
            : typeof v === 'string'
              ? PROTOCOL_NUMBERS[v.toLowerCase()]
              : undefined;
      if (num === undefined || !Number.isInteger(num) || num < 0 || num > 255) {
        r.fail(
          n,
          f,
          `not a protocol: ${typeof v === 'string' ? shown(v) : String(v)} (a name: ${Object.keys(PROTOCOL_NUMBERS).join(', ')}, or a number 0-255)`,
        );
      }
      return num;
    });
    return [...new Set(out)].sort((a, b) => a - b);
  }
}

const TOP = ['groups', 'tagOwners', 'hosts', 'acls', 'autoApprovers', 'tests'];

/** Parses and checks a policy; throws PolicyError with the field and line:col of the first problem. */
export function parsePolicy(text: string): Policy {
  const r: Reader = new Reader(text);
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) r.fail(undefined, 'policy', `larger than ${MAX_POLICY_BYTES} bytes`);
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const e = errors[0]!;
    const [line, col] = r.position(e.offset);
    throw new PolicyError('policy', `not JSON with comments: ${printParseErrorCode(e.error)}`, line, col);
  }
  if (!root) r.fail(undefined, 'policy', 'empty file: a policy is a JSON object');
  const top = new Map(props(r, root, '', TOP, TOP.length).map(([k, , v]) => [k, v]));
  const p = new PolicyParser(r);

  const groups = top.get('groups');
  if (groups) {
    for (const [name, k, v] of props(r, groups, 'groups', null, MAX_POLICY_GROUPS)) {
      if (!GROUP_RE.test(name)) r.fail(k, `groups.${name}`, 'a group name is "group:" then lower-case letters, digits, ".", "_" and "-"');
      const members = strings(r, v, `groups.${name}`, MAX_POLICY_MEMBERS).map(([m, n, f]) => {
        const problem = userNameProblem(m);
        if (problem) r.fail(n, f, `${shown(m)}: a group holds users only (${problem})`);
        return m;
      });
      p.groups.set(name, [...new Set(members)]);
    }
  }
  const hosts = top.get('hosts');
  if (hosts) {
    for (const [name, k, v] of props(r, hosts, 'hosts', null, MAX_POLICY_HOSTS)) {
      if (!HOST_NAME_RE.test(name)) r.fail(k, `hosts.${name}`, 'a host name is one DNS label: lower-case letters, digits and "-"');
      const s = str(r, v, `hosts.${name}`);
      const prefix = prefixOf(r, s, v, `hosts.${name}`);
      if (!prefix) r.fail(v, `hosts.${name}`, `not an address or prefix: ${shown(s)}`);
      p.hosts.set(name, prefix);
    }
  }
  const tagOwners = top.get('tagOwners');
  if (tagOwners) {
    const entries = props(r, tagOwners, 'tagOwners', null, MAX_POLICY_TAGS);
    // declared first, so owners may name other tags in any order
    for (const [tag, k] of entries) {
      const problem = tagProblem(tag);
      if (problem) r.fail(k, `tagOwners.${tag}`, `${problem}: ${shown(tag)}`);
      p.tagOwners.set(tag, []);
    }
    for (const [tag, , v] of entries) {
      const owners = strings(r, v, `tagOwners.${tag}`, MAX_POLICY_MEMBERS).flatMap(([s, n, f]) => {
        const sel = p.selectors(s, n, f, 'owner');
        for (const o of sel) if (o.kind === 'tag' && !p.tagOwners.has(o.name)) r.fail(n, f, `unknown tag ${shown(o.name)}: declare it in tagOwners`);
        return sel;
      });
      p.tagOwners.set(tag, owners);
    }
  }

  const acls: Acl[] = [];
  const aclNode = top.get('acls');
  if (aclNode) {
    for (const [i, a] of items(r, aclNode, 'acls', MAX_POLICY_ACLS).entries()) {
      const f = `acls[${i}]`;
      const fields = new Map(props(r, a, f, ['action', 'src', 'dst', 'proto'], 4).map(([k, , v]) => [k, v]));
      const action = fields.get('action');
      if (!action) r.fail(a, `${f}.action`, 'missing: write "action": "accept"');
      if (action.value !== 'accept') r.fail(action, `${f}.action`, `only "accept" (everything not accepted is denied), got ${JSON.stringify(action.value)}`);
      const srcNode = fields.get('src');
      const dstNode = fields.get('dst');
      if (!srcNode) r.fail(a, `${f}.src`, 'missing');
      if (!dstNode) r.fail(a, `${f}.dst`, 'missing');
      const src = strings(r, srcNode, `${f}.src`, MAX_ACL_SOURCES).flatMap(([s, n, ff]) => p.selectors(s, n, ff, 'src'));
      const dst = strings(r, dstNode, `${f}.dst`, MAX_ACL_DESTINATIONS).flatMap(([s, n, ff]) => p.destination(s, n, ff));
      const proto = fields.get('proto');
      acls.push({ src, dst, protocols: proto ? p.protocols(proto, `${f}.proto`) : [] });
    }
  }

  const autoApprovers: Policy['autoApprovers'] = { routes: [], exitNode: [] };
  const aa = top.get('autoApprovers');
  if (aa) {
    const fields = new Map(props(r, aa, 'autoApprovers', ['routes', 'exitNode'], 2).map(([k, , v]) => [k, v]));
    const routes = fields.get('routes');
    if (routes) {
      for (const [prefix, k, v] of props(r, routes, 'autoApprovers.routes', null, MAX_AUTO_APPROVER_ROUTES)) {
        const f = `autoApprovers.routes.${prefix}`;
        const canon = prefix.includes('/') ? prefixOf(r, prefix, k, f) : null;
        if (!canon) r.fail(k, f, `not a prefix: ${shown(prefix)}`);
        autoApprovers.routes.push({ prefix: canon, approvers: strings(r, v, f, MAX_POLICY_MEMBERS).flatMap(([s, n, ff]) => p.selectors(s, n, ff, 'owner')) });
      }
    }
    const exit = fields.get('exitNode');
    if (exit) autoApprovers.exitNode = strings(r, exit, 'autoApprovers.exitNode', MAX_POLICY_MEMBERS).flatMap(([s, n, f]) => p.selectors(s, n, f, 'owner'));
  }

  const tests: PolicyTest[] = [];
  const testNode = top.get('tests');
  if (testNode) {
    for (const [i, t] of items(r, testNode, 'tests', MAX_POLICY_TESTS).entries()) {
      const f = `tests[${i}]`;
      const fields = new Map(props(r, t, f, ['src', 'accept', 'deny'], 3).map(([k, , v]) => [k, v]));
      const srcNode = fields.get('src');
      if (!srcNode) r.fail(t, `${f}.src`, 'missing');
      const src = p.selectors(str(r, srcNode, `${f}.src`), srcNode, `${f}.src`, 'src');
      if (src.length !== 1 || src[0]!.kind === 'all' || src[0]!.kind === 'member' || src[0]!.kind === 'tagged') {
        r.fail(srcNode, `${f}.src`, 'a test source is one user, tag, host or address');
      }
      const dests = (key: 'accept' | 'deny'): PolicyTest['accept'] => {
        const n = fields.get(key);
        if (!n) return [];
        return strings(r, n, `${f}.${key}`, MAX_TEST_DESTINATIONS).flatMap(([s, sn, ff]) =>
          p.destination(s, sn, ff).map((d) => {
            const k = d.selector.kind;
            if (d.ports.length !== 1 || d.ports[0]!.first !== d.ports[0]!.last || (k !== 'user' && k !== 'tag' && k !== 'prefix')) {
              r.fail(sn, ff, 'a test destination is one user, tag, host or address and one port, e.g. tag:nas:22');
            }
            return { selector: d.selector, port: d.ports[0]!.first, text: s };
          }),
        );
      };
      tests.push({ src: src[0]!, accept: dests('accept'), deny: dests('deny') });
    }
  }
  return { groups: p.groups, tagOwners: p.tagOwners, hosts: p.hosts, acls, autoApprovers, tests };
}
