// The CLI's own remembered defaults, kept with conf in the user's config dir
// (MESHCTL_CONFIG_DIR overrides it): the login server and control CA file of
// the last successful `up`, and the state dir, interface and port each
// daemon socket was started with, so the next `up` needs no flags. Settings that
// decide who may change the daemon (the operator) live with the daemon, not here.

export interface DaemonParams {
  stateDir: string;
  ifname: string;
  port: number;
}

export interface ClientPrefs {
  loginServer?: string;
  controlCa?: string;
  /** per daemon socket: how `up` last started it, so a restart after a crash finds the same state dir */
  daemons?: Record<string, DaemonParams>;
}

async function store() {
  const { default: Conf } = await import('conf');
  return new Conf<ClientPrefs>({ projectName: 'meshctl', projectSuffix: '', cwd: process.env.MESHCTL_CONFIG_DIR || undefined, configName: 'cli' });
}

export async function loadClientPrefs(): Promise<ClientPrefs> {
  try {
    return (await store()).store;
  } catch {
    return {};
  }
}

export async function saveClientPrefs(p: ClientPrefs): Promise<void> {
  try {
    const s = await store();
    for (const [k, v] of Object.entries(p)) if (v !== undefined) s.set(k as keyof ClientPrefs, v);
  } catch {
    /* an unwritable home must not fail `up`; the flags still work */
  }
}
