// Every MESHCTL_* environment variable meshctl reads, declared once: what it
// is for, who it is for, what it holds and its default, with a typed getter
// for each. No other module reads these names from the environment (a test
// reads the sources to keep it so), and man/meshctl.1 lists them all.
//
// A getter reads the environment when it is called: callers that read a knob
// once at start call it once at start, and the engine reads its timer knobs
// when it is built. An empty value counts as unset everywhere.
//
// Who a knob is for:
//   user    part of normal use, documented for everyone
//   secret  user-facing and a secret: removed from the environment once read,
//           so no child process (the daemon, `ip`) inherits it
//   tuning  switches a data-path choice off or pins it, to compare in
//           benchmarks or to profile; unset in normal use
//   test    shortens a timer so a test need not wait for it; unset in normal use

export type KnobUse = 'user' | 'secret' | 'tuning' | 'test';

export interface KnobSpec {
  use: KnobUse;
  /** what the value is: a path, a flag, milliseconds, one of some words */
  value: string;
  /** what happens when it is unset */
  default: string;
  /** what it is for */
  doc: string;
}

const POSITIVE_MS = 'a positive number of milliseconds';

export const KNOBS = {
  MESHCTL_SOCKET: {
    use: 'user',
    value: 'a path',
    default: '/var/run/meshctl/meshctld.sock',
    doc: "the daemon's local API socket, for every command and for the daemon itself; --socket overrides it",
  },
  MESHCTL_STATE_DIR: {
    use: 'user',
    value: 'a directory',
    default: '/var/lib/meshctl',
    doc: 'the default of --state-dir for `up` and `daemon`: keys, settings, the last network map',
  },
  MESHCTL_CONFIG_DIR: {
    use: 'user',
    value: 'a directory',
    default: '$XDG_CONFIG_HOME/meshctl, else ~/.config/meshctl',
    doc: 'where the CLI keeps what `up` remembers (cli.json)',
  },
  MESHCTL_CONTROL_STATE_DIR: {
    use: 'user',
    value: 'a directory',
    default: '/var/lib/meshctl-control',
    doc: "the default of --state-dir for `meshctl control`: the control server's database and key",
  },
  MESHCTL_RELAY_STATE_DIR: {
    use: 'user',
    value: 'a directory',
    default: '/var/lib/meshctl-relay',
    doc: "the default of --state-dir for `meshctl relay serve`: the relay's key and self-signed certificate",
  },
  MESHCTL_PLAIN: {
    use: 'user',
    value: 'any non-empty value',
    default: 'a spinner on a terminal',
    doc: 'progress as plain lines, no spinner, even on a terminal',
  },
  MESHCTL_NO_INSTALL: {
    use: 'user',
    value: 'any non-empty value',
    default: '`lab up` installs missing Debian packages when asked to (--install-deps, or yes at the prompt)',
    doc: '`lab up` never installs packages, as with --no-install: it prints the apt-get command and exits non-zero',
  },
  MESHCTL_AUTH_KEY: {
    use: 'secret',
    value: 'an auth key, or file:PATH',
    default: 'none: `up` registers without a key',
    doc: 'the auth key for `up` when --auth-key is not given; removed from the environment before the daemon or any program starts',
  },
  MESHCTL_JOIN: {
    use: 'secret',
    value: 'a join string (mesh1:…)',
    default: 'none: `up` takes --login-server and --auth-key',
    doc: 'the join string for `up` when neither --join nor --join-file is given; removed from the environment before the daemon or any program starts',
  },
  MESHCTL_RELAY_MESH_KEY: {
    use: 'secret',
    value: '32-512 printable characters',
    default: 'none: the relay meshes with no other',
    doc: "the region's mesh key for `relay serve` when --mesh-key is not given; removed from the environment once read",
  },
  MESHCTL_PG_PASSWORD: {
    use: 'secret',
    value: 'a password',
    default: "none: PGPASSWORD, ~/.pgpass or the server's trust/peer rules apply",
    doc: 'the PostgreSQL password for `control serve --db postgres://…` (never in the URL); removed from the environment once read',
  },
  MESHCTL_DAEMON_NODE_ARGS: {
    use: 'tuning',
    value: 'Node flags separated by spaces',
    default: 'none',
    doc: 'Node flags for the daemon `up` starts, e.g. --cpu-prof to profile it',
  },
  MESHCTL_TUN_OFFLOAD: {
    use: 'tuning',
    value: '0',
    default: 'offloads on',
    doc: 'opens the TUN device without TSO and without merging received TCP segments, to compare',
  },
  MESHCTL_UDP_GSO: {
    use: 'tuning',
    value: '0',
    default: 'on where the kernel takes UDP_SEGMENT',
    doc: 'sends every datagram as a message of its own instead of runs of same-size datagrams as one UDP GSO message, to compare',
  },
  MESHCTL_UDP_GRO: {
    use: 'tuning',
    value: '0',
    default: 'UDP GRO on while the reader thread reads the sockets',
    doc: 'never asks the kernel to merge received datagrams (UDP_GRO), to compare',
  },
  MESHCTL_RING_IN_PLACE: {
    use: 'tuning',
    value: '1',
    default: "each batch copied out of a reader thread's ring before it is handled",
    doc: 'the event loop handles the packets of a reader ring where the thread wrote them (no copy per batch), to compare',
  },
  MESHCTL_RELAY_SHORT_IDS: {
    use: 'tuning',
    value: '0',
    default: 'relay connections agree on 2-byte peer ids when the relay offers them',
    doc: 'every relayed packet names its peer by its 32-byte key, as with a relay that offers no short ids, to compare',
  },
  MESHCTL_AEAD: {
    use: 'tuning',
    value: 'evp|node',
    default: "libsodium through koffi (one call a packet), else Node's own OpenSSL through koffi, else node:crypto",
    doc: "seals and opens packets with Node's OpenSSL (four calls a packet) or node:crypto (same bytes, slower), to compare",
  },
  MESHCTL_JIT_DEFAULTS: {
    use: 'tuning',
    value: '1',
    default: 'a short V8 interrupt budget once an engine exists',
    doc: "keeps V8's own interrupt budget (when it optimises the data path), to compare",
  },
  MESHCTL_READER_MODE: {
    use: 'tuning',
    value: 'thread or main',
    default: 'the event loop reads a quiet tunnel, a thread a busy one',
    doc: 'pins who reads the TUN device and the UDP sockets: always a reader thread, or always the event loop',
  },
  MESHCTL_READER_RETIRE_MS: {
    use: 'test',
    value: POSITIVE_MS,
    default: '15000',
    doc: 'how long an idle reader thread lives before it ends (any other value: the default)',
  },
  MESHCTL_ENGINE_ACL_RULES: {
    use: 'tuning',
    value: "a path: a JSON array of packet-filter rules (the map's packetFilter)",
    default: 'no filter: every packet passes',
    doc: '`debug engine` enforces these rules with the access filter, to measure its cost against the same build without',
  },
  MESHCTL_REKEY_AFTER_TIME_MS: { use: 'test', value: POSITIVE_MS, default: '120000', doc: "WireGuard's REKEY_AFTER_TIME" },
  MESHCTL_REJECT_AFTER_TIME_MS: { use: 'test', value: POSITIVE_MS, default: '180000', doc: "WireGuard's REJECT_AFTER_TIME" },
  MESHCTL_KEEPALIVE_TIMEOUT_MS: { use: 'test', value: POSITIVE_MS, default: '10000', doc: "WireGuard's KEEPALIVE_TIMEOUT" },
  MESHCTL_REKEY_TIMEOUT_MS: { use: 'test', value: POSITIVE_MS, default: '5000', doc: "WireGuard's REKEY_TIMEOUT" },
  MESHCTL_PATH_HEARTBEAT_MS: { use: 'test', value: POSITIVE_MS, default: '1500', doc: "path selection's heartbeat to each peer's direct path" },
  MESHCTL_PATH_TRUST_MS: { use: 'test', value: POSITIVE_MS, default: '3500', doc: 'how long a direct path stays trusted after its last pong' },
  MESHCTL_TEST_EXTRA_ALLOWED_IPS: {
    use: 'test',
    value: 'NODE=PREFIX[,NODE=PREFIX...]',
    default: 'only what control assigned',
    doc: "adds prefixes to a peer's AllowedIPs on this node: a dishonest node, to test a router's destination check",
  },
  MESHCTL_IDLE_RELEASE_MS: {
    use: 'test',
    value: POSITIVE_MS,
    default: '10000',
    doc: 'the quiet time after which the daemon hands memory back',
  },
} as const satisfies Record<`MESHCTL_${string}`, KnobSpec>;

export type KnobName = keyof typeof KNOBS;

/** The variables holding secrets, by name (the code that reads one also removes it). */
export const AUTH_KEY_ENV = 'MESHCTL_AUTH_KEY' satisfies KnobName;
export const JOIN_ENV = 'MESHCTL_JOIN' satisfies KnobName;
export const RELAY_MESH_KEY_ENV = 'MESHCTL_RELAY_MESH_KEY' satisfies KnobName;
export const PG_PASSWORD_ENV = 'MESHCTL_PG_PASSWORD' satisfies KnobName;

/** The PostgreSQL password from MESHCTL_PG_PASSWORD, removed from the environment so no child inherits it. */
export function takePgPassword(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = knobText(PG_PASSWORD_ENV, env);
  delete env[PG_PASSWORD_ENV];
  return v;
}

/** A knob's text, or undefined when it is unset or empty. */
export function knobText(name: KnobName, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** A knob of milliseconds: undefined when unset, else a positive number or an error naming the knob. */
export function knobMs(name: KnobName, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = knobText(name, env);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}="${v}" must be a positive number of milliseconds`);
  return n;
}

export const socketFromEnv = (env: NodeJS.ProcessEnv = process.env): string | undefined => knobText('MESHCTL_SOCKET', env);
export const stateDirFromEnv = (env: NodeJS.ProcessEnv = process.env): string | undefined => knobText('MESHCTL_STATE_DIR', env);
export const configDirFromEnv = (env: NodeJS.ProcessEnv = process.env): string | undefined => knobText('MESHCTL_CONFIG_DIR', env);
export const controlStateDirFromEnv = (env: NodeJS.ProcessEnv = process.env): string | undefined => knobText('MESHCTL_CONTROL_STATE_DIR', env);
export const relayStateDirFromEnv = (env: NodeJS.ProcessEnv = process.env): string | undefined => knobText('MESHCTL_RELAY_STATE_DIR', env);

/** MESHCTL_PLAIN: plain progress lines even on a terminal. */
export const plainOutput = (env: NodeJS.ProcessEnv = process.env): boolean => knobText('MESHCTL_PLAIN', env) !== undefined;

/** MESHCTL_NO_INSTALL: `lab up` never installs host packages. */
export const noInstallFromEnv = (env: NodeJS.ProcessEnv = process.env): boolean => knobText('MESHCTL_NO_INSTALL', env) !== undefined;

/** MESHCTL_DAEMON_NODE_ARGS as a list of Node flags (none when unset). */
export const daemonNodeArgs = (env: NodeJS.ProcessEnv = process.env): string[] => (env.MESHCTL_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** MESHCTL_TUN_OFFLOAD: false only for "0". */
export const tunOffloadWanted = (env: NodeJS.ProcessEnv = process.env): boolean => env.MESHCTL_TUN_OFFLOAD !== '0';

/** MESHCTL_UDP_GSO: false only for "0". */
export const udpGsoWanted = (env: NodeJS.ProcessEnv = process.env): boolean => env.MESHCTL_UDP_GSO !== '0';

/** MESHCTL_UDP_GRO=0: no UDP_GRO on the WireGuard sockets. */
export const udpGroWanted = (env: NodeJS.ProcessEnv = process.env): boolean => env.MESHCTL_UDP_GRO !== '0';

/** MESHCTL_RING_IN_PLACE=1: reader rings visited in place instead of copied out per batch. */
export const ringInPlace = (env: NodeJS.ProcessEnv = process.env): boolean => env.MESHCTL_RING_IN_PLACE === '1';

/** MESHCTL_RELAY_SHORT_IDS=0: the daemon's relay connections offer no short peer ids. */
export const relayShortIdsWanted = (env: NodeJS.ProcessEnv = process.env): boolean => env.MESHCTL_RELAY_SHORT_IDS !== '0';

/** MESHCTL_AEAD: 'evp' (Node's OpenSSL) or 'node' (node:crypto) instead of libsodium, else 'sodium'. */
export function aeadChoice(env: NodeJS.ProcessEnv = process.env): 'evp' | 'node' | 'sodium' {
  const v = env.MESHCTL_AEAD;
  return v === 'node' || v === 'evp' ? v : 'sodium';
}

/** MESHCTL_JIT_DEFAULTS=1: V8's own interrupt budget. */
export const jitDefaults = (env: NodeJS.ProcessEnv = process.env): boolean => env.MESHCTL_JIT_DEFAULTS === '1';

/** MESHCTL_READER_MODE: 'thread' or 'main' when pinned, else 'auto'. */
export function readerModeKnob(env: NodeJS.ProcessEnv = process.env): 'auto' | 'thread' | 'main' {
  const v = env.MESHCTL_READER_MODE;
  return v === 'thread' || v === 'main' ? v : 'auto';
}

/** MESHCTL_READER_RETIRE_MS when it is a positive number, else undefined (the caller's default). */
export function readerRetireMs(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = Number(env.MESHCTL_READER_RETIRE_MS);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}
