// The access policy as typed values: what parse.ts makes of the policy file
// and what compile.ts and engine.ts work from. Groups and hosts are resolved
// at parse time, so a selector is one of a few flat kinds.

/** The policy file: far above a hand-written policy for thousands of nodes; bounds the parser's memory. */
export const MAX_POLICY_BYTES = 1024 * 1024;
/** acl entries: each becomes up to one packet-filter rule per node (netmap's MAX_FILTER_RULES). */
export const MAX_POLICY_ACLS = 1_000;
/** Groups, hosts and tag owners: each an entry an operator writes by hand. */
export const MAX_POLICY_GROUPS = 1_000;
export const MAX_POLICY_HOSTS = 1_000;
export const MAX_POLICY_TAGS = 1_000;
/** Members of one group, owners of one tag, approvers of one route. */
export const MAX_POLICY_MEMBERS = 1_000;
/** Sources and destinations of one acl entry. */
export const MAX_ACL_SOURCES = 256;
export const MAX_ACL_DESTINATIONS = 256;
/** Port ranges in one destination (`22,80,443,8000-8999`). */
export const MAX_PORT_RANGES = 64;
/** Protocols of one acl entry. */
export const MAX_ACL_PROTOCOLS = 16;
/** Routes under autoApprovers. */
export const MAX_AUTO_APPROVER_ROUTES = 1_000;
/** tests entries, and accept/deny destinations of one test: all run before a policy is accepted. */
export const MAX_POLICY_TESTS = 256;
export const MAX_TEST_DESTINATIONS = 256;

/** Who or what a source or destination names; groups and hosts are already expanded. */
export type Selector =
  | { kind: 'all' }
  | { kind: 'user'; name: string }
  | { kind: 'tag'; name: string }
  | { kind: 'prefix'; prefix: string }
  | { kind: 'member' }
  | { kind: 'tagged' }
  /** destinations only: the source node's own user's untagged nodes */
  | { kind: 'self' };

export interface PortRange {
  first: number;
  last: number;
}

export interface AclDestination {
  selector: Selector;
  ports: PortRange[];
}

export interface Acl {
  src: Selector[];
  dst: AclDestination[];
  /** IANA numbers; empty: TCP, UDP, ICMP, ICMPv6 */
  protocols: number[];
}

/** A policy test: from `src` (a user, tag or host address), each of `accept` must pass and each of `deny` must not. */
export interface PolicyTest {
  src: Selector;
  accept: Array<{ selector: Selector; port: number; text: string }>;
  deny: Array<{ selector: Selector; port: number; text: string }>;
}

export interface Policy {
  /** group name (`group:x`) -> its users */
  groups: Map<string, string[]>;
  /** tag -> who may apply it: users and tags (groups expanded) */
  tagOwners: Map<string, Selector[]>;
  /** host name -> prefix */
  hosts: Map<string, string>;
  acls: Acl[];
  autoApprovers: { routes: Array<{ prefix: string; approvers: Selector[] }>; exitNode: Selector[] };
  tests: PolicyTest[];
}

/** What the policy knows of a node: its identity, addresses and what it serves as a router or gateway. */
export interface PolicyNode {
  id: number;
  /** null for a tagged node or a node without owner */
  user: string | null;
  tags: string[];
  /** canonical mesh addresses */
  addresses: string[];
  /** the subnet routes it routes (canonical prefixes) */
  routes: string[];
  /** an approved exit node */
  exitNode: boolean;
  /** addresses of the stock-WireGuard devices it is the gateway of */
  deviceAddresses: string[];
}
