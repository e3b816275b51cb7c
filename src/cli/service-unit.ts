// systemd units for meshctl's three roles, as text: the node daemon, the
// control server and the relay. Every line of a unit is explained by the
// comment above it, in the unit itself, so an admin reading
// /etc/systemd/system/meshctl-ROLE.service sees why it is there.
//
// ExecStart is written in systemd's own syntax, never as shell text: each
// argument stands alone, double-quoted when it holds anything but plain
// characters, with `\` and `"` escaped for the quotes, `%` doubled (systemd's
// specifiers) and `$` doubled (its variable expansion). An argument with a
// control character (a newline would end the line and start another
// directive) is refused.

export type Role = 'node' | 'control' | 'relay';
export const ROLES: readonly Role[] = ['node', 'control', 'relay'];

export const unitName = (role: Role): string => `meshctl-${role}.service`;
export const stateDirOf = (role: Role): string => `/var/lib/meshctl-${role}`;

export class UnitArgError extends Error {
  override name = 'UnitArgError';
}

/** A word systemd reads back as exactly `arg`. */
export function quoteExecArg(arg: string): string {
  if (/[\x00-\x1f\x7f]/.test(arg)) throw new UnitArgError('has a control character (a newline, tab or escape): a unit cannot carry it');
  const doubled = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (arg === ';') return '\\;';
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(arg)) return doubled;
  return `"${doubled.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A value for an EnvironmentFile line (KEY="VALUE"), or an error for one with a control character. */
export function quoteEnvValue(v: string): string {
  if (/[\x00-\x1f\x7f]/.test(v)) throw new UnitArgError('has a control character: an environment file cannot carry it');
  return `"${v.replace(/[\\"`$]/g, (c) => `\\${c}`)}"`;
}

export interface UnitSpec {
  role: Role;
  /** the whole command line: node, the meshctl script, the command and the role's flags */
  argv: string[];
  /** ports below 1024 the role listens on (CAP_NET_BIND_SERVICE is granted only then, for control and relay) */
  privilegedPorts: number[];
  /** an EnvironmentFile of secrets, mode 0600, when there are any */
  envFile?: string;
  /** a state dir other than /var/lib/meshctl-ROLE given with --state-dir: made writable too */
  extraStateDir?: string;
}

const DESCRIPTION: Record<Role, string> = {
  node: 'meshctl node daemon (mesh VPN interface and local API)',
  control: 'meshctl control server',
  relay: 'meshctl relay and STUN server',
};

export function renderUnit(u: UnitSpec): string {
  const exec = u.argv.map(quoteExecArg).join(' ');
  const L: string[] = [];
  const c = (comment: string, ...lines: string[]): void => {
    L.push(...comment.split('\n').map((l) => `# ${l}`), ...lines);
  };
  L.push(`# ${unitName(u.role)}: written by \`meshctl service install ${u.role}\`; \`meshctl service uninstall ${u.role}\` removes it.`);
  L.push('# Edit it with `systemctl edit` (a drop-in), or install it again with other flags.', '');
  L.push('[Unit]', `Description=${DESCRIPTION[u.role]}`, 'Documentation=man:meshctl(1)');
  c(
    'start once the network is configured: the role connects out (node) or binds addresses (control, relay)',
    'Wants=network-online.target',
    'After=network-online.target',
  );
  L.push('', '[Service]');
  c(
    'meshctl sends READY=1 to $NOTIFY_SOCKET once it serves, so units ordered after this one start then;\nSTATUS= shows in `systemctl status`, STOPPING=1 on SIGTERM',
    'Type=notify',
    'NotifyAccess=main',
  );
  c('the role and its flags, one quoted word each (no shell)', `ExecStart=${exec}`);
  if (u.envFile) c('secrets (mode 0600, root only), never on the command line above', `EnvironmentFile=${quoteExecArg(u.envFile)}`);
  c('a crash or a failed start is retried, a clean stop (exit 0) is not', 'Restart=on-failure', 'RestartSec=2s');
  c(`state: ${stateDirOf(u.role)}, made by systemd, mode 0700, kept on uninstall`, `StateDirectory=meshctl-${u.role}`, 'StateDirectoryMode=0700');
  if (u.extraStateDir) c('the state dir given with --state-dir', `ReadWritePaths=${quoteExecArg(u.extraStateDir)}`);
  if (u.role === 'node') c("the local API socket's directory, /run/meshctl", 'RuntimeDirectory=meshctl', 'RuntimeDirectoryMode=0755');
  c(`logs: one line per event on stdout/stderr, into the journal (journalctl -u ${unitName(u.role)})`, 'StandardOutput=journal', 'StandardError=journal');
  L.push('', '# ---- hardening ----');
  c('no setuid program it runs gains privileges', 'NoNewPrivileges=yes');
  c('/usr, /boot, /etc read-only; only the paths listed writable', 'ProtectSystem=strict');
  c('/home, /root and /run/user are invisible', 'ProtectHome=yes');
  c('a /tmp of its own', 'PrivateTmp=yes');
  c('no kernel modules loaded, no kernel log, control groups read-only', 'ProtectKernelModules=yes', 'ProtectKernelLogs=yes', 'ProtectControlGroups=yes');
  c('/proc/sys read-only: meshctl reads the forwarding sysctls and never writes them (an admin sets them)', 'ProtectKernelTunables=yes');
  c(
    'no setuid/setgid files made, no personality changes, real-time scheduling or clock changes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'ProtectClock=yes',
  );
  c(
    'sockets: unix (local API, admin socket, systemd), IPv4/IPv6, netlink (routes, addresses: node only needs it, harmless elsewhere)',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
  );
  c('no MemoryDenyWriteExecute: V8 compiles JavaScript to machine code at run time');
  if (u.role === 'node') {
    c(
      'CAP_NET_ADMIN: the TUN interface, addresses, routes, rules, SO_MARK and nftables SNAT; CAP_NET_RAW: raw and packet sockets of `ip` and nft;\nCAP_NET_BIND_SERVICE: the MagicDNS resolver on port 53 of 100.100.100.100',
      'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE',
      'AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE',
    );
    c('devices: only the TUN device (no PrivateDevices=, which would hide it)', 'DevicePolicy=closed', 'DeviceAllow=/dev/net/tun rw');
    c(
      "MagicDNS points the host's resolver at the mesh: /etc/resolv.conf is rewritten in place, or through its symlink's target\nunder /run/systemd/resolve (the '-' skips a path that does not exist)",
      'ReadWritePaths=/etc/resolv.conf -/run/systemd/resolve',
    );
  } else if (u.privilegedPorts.length) {
    c(
      `CAP_NET_BIND_SERVICE only: it listens on port ${u.privilegedPorts.join(', ')} (below 1024)`,
      'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    );
  } else {
    c('no capabilities: every port it listens on is 1024 or above', 'CapabilityBoundingSet=', 'AmbientCapabilities=');
  }
  if (u.role !== 'node') c('no devices but the pseudo ones (/dev/null, /dev/urandom…)', 'PrivateDevices=yes');
  L.push('', '[Install]', 'WantedBy=multi-user.target', '');
  return L.join('\n');
}
