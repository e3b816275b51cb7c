// `meshctl lab exec NODE -- CMD…` and `meshctl lab shell NODE`: a program run
// inside a lab node's namespace with that node's environment, so `meshctl
// status` there talks to the node's own daemon. The command is an argv array
// handed to `ip netns exec` (which execs it directly, no shell in between);
// the environment goes through the process environment, not through
// `env VAR=…` words, so a command that itself looks like an assignment or an
// option is run as given.
import { dirname, join } from 'node:path';
import { Lab, type LabState } from './lab.js';
import type { LabNode } from './topology.js';

/** Lab names as `lab up --name` makes namespaces and a directory of them: a path component, never `..` or a slash. */
export const LAB_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

export class LabNodeError extends Error {
  override readonly name = 'LabNodeError';
}

/** The node called `name`; an unknown name fails with one line listing the lab's nodes. */
export function findLabNode(s: LabState, name: string): LabNode {
  const n = s.nodes.find((x) => x.name === name);
  if (n) return n;
  const known = s.nodes.map((x) => x.name).join(', ');
  throw new LabNodeError(`lab ${s.name} has no node "${name.slice(0, 64)}": its nodes are ${known}`);
}

export interface LabExec {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * What runs `cmd` in `node`'s namespace: `ip netns exec NS CMD…`, with the
 * node's daemon socket, the CLI config dir the lab's own `meshctl` calls use,
 * the lab's extra environment, and the lab's meshctl first on PATH.
 */
export function labExecArgv(s: LabState, node: LabNode, cmd: readonly string[], env: NodeJS.ProcessEnv = process.env): LabExec {
  if (cmd.length === 0) throw new LabNodeError('nothing to run: give a command after --');
  const path = [dirname(s.bin), env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'].join(':');
  return {
    file: 'ip',
    args: ['netns', 'exec', node.ns, ...cmd],
    env: {
      ...env,
      ...s.env,
      PATH: path,
      MESHCTL_SOCKET: new Lab(s).socket(node),
      MESHCTL_CONFIG_DIR: join(s.dir, `${node.name}-cli`),
    },
  };
}

/** `lab shell`: the user's $SHELL, else bash, interactive. */
export function labShellCommand(env: NodeJS.ProcessEnv = process.env): string[] {
  return [env.SHELL || '/bin/bash', '-i'];
}
