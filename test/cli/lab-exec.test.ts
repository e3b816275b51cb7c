// `meshctl lab exec NODE -- CMD…` and `lab shell NODE`: the argv handed to
// `ip netns exec` is the user's, word for word (no shell, no `env` words that
// could take an argument for an assignment); the node's daemon socket is in
// the environment; an unknown node names the lab's nodes; and, as root, a
// real namespace runs the command with its exit status passed through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findLabNode, labExecArgv, labShellCommand, LabNodeError } from '../../src/lab/exec.js';
import type { LabState } from '../../src/lab/lab.js';
import { planNodes } from '../../src/lab/topology.js';
import { packageRoot } from '../../src/cli/version.js';
import { rootSkipReason } from '../helpers/root.js';
import { must, uniqueSuffix } from '../helpers/netns.js';

const bin = join(packageRoot(), 'bin', 'meshctl');

function state(name: string, dir: string): LabState {
  const prefix = `${name.slice(0, 6)}-`;
  return {
    name,
    prefix,
    dir,
    bin,
    namespaces: [],
    pids: {},
    nodes: planNodes(prefix, ['public', 'easy']),
    controlNs: `${prefix}ctl`,
    relayNs: {},
    authKey: 'mskey-000000000000-000000000000000000000000000000000000000000000000',
    env: { MESHCTL_PATH_HEARTBEAT_MS: '500' },
  };
}

test('lab exec: the command goes to ip netns exec as the same argv, the environment names the node', () => {
  const s = state('mlab', '/run/meshctl-lab/mlab');
  const node = findLabNode(s, 'node2-easy');
  const cmd = ['A=b', '-x', 'two words', '$(touch /tmp/pwned)', ';', "it's"];
  const r = labExecArgv(s, node, cmd, { PATH: '/usr/bin', HOME: '/root' });
  assert.equal(r.file, 'ip');
  assert.deepEqual(r.args, ['netns', 'exec', 'mlab-n2', ...cmd]);
  assert.equal(r.env.MESHCTL_SOCKET, '/run/meshctl-lab/mlab/node2-easy.sock');
  assert.equal(r.env.MESHCTL_CONFIG_DIR, '/run/meshctl-lab/mlab/node2-easy-cli');
  assert.equal(r.env.MESHCTL_PATH_HEARTBEAT_MS, '500', "the lab's extra environment");
  assert.equal(r.env.HOME, '/root');
  assert.equal(r.env.PATH, `${join(packageRoot(), 'bin')}:/usr/bin`, "the lab's meshctl first on PATH");
  assert.throws(() => labExecArgv(s, node, []), LabNodeError);
});

test('lab exec: an unknown node is one line that lists the lab nodes', () => {
  const s = state('mlab', '/run/meshctl-lab/mlab');
  assert.throws(
    () => findLabNode(s, 'node9'),
    (e: Error) => e instanceof LabNodeError && e.message === 'lab mlab has no node "node9": its nodes are node1-public, node2-easy',
  );
});

test('lab shell: $SHELL, else /bin/bash, interactive', () => {
  assert.deepEqual(labShellCommand({ SHELL: '/usr/bin/zsh' }), ['/usr/bin/zsh', '-i']);
  assert.deepEqual(labShellCommand({}), ['/bin/bash', '-i']);
});

test('lab exec: a lab name that is not a name is a usage error', () => {
  const r = spawnSync(process.execPath, [bin, 'lab', 'exec', '--name', '../../etc', 'node1-public', '--', 'true'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^--name: "..\/..\/etc" is not a lab name/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('lab exec and lab shell in a real namespace: argv, environment and exit status', { skip: rootSkipReason() }, async () => {
  const name = `tx${uniqueSuffix()}`;
  const dir = join('/run/meshctl-lab', name);
  const s = state(name, dir);
  const ns = s.nodes[0]!.ns;
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  try {
    await must('ip', ['netns', 'add', ns]);
    s.namespaces.push(ns);
    writeFileSync(join(dir, 'lab.json'), JSON.stringify(s), { mode: 0o600 });
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, 'lab', ...args], { encoding: 'utf8', input: '' });

    const r = run(
      'exec',
      '--name',
      name,
      'node1-public',
      '--',
      'sh',
      '-c',
      'ip netns identify; printf "%s\\n" "$MESHCTL_SOCKET" "$@"; exit 7',
      'sh',
      'two words',
      'A=b',
      '$(x)',
    );
    assert.equal(r.status, 7, r.stderr);
    assert.equal(r.stdout, `${ns}\n${join(dir, 'node1-public.sock')}\ntwo words\nA=b\n$(x)\n`);

    // the meshctl inside talks to the node's own socket (no daemon there yet)
    const st = run('exec', '--name', name, 'node1-public', '--', 'meshctl', 'netcheck');
    assert.equal(st.status, 1);
    assert.equal(st.stderr, `meshctl is stopped (no daemon at ${join(dir, 'node1-public.sock')}): start it with \`meshctl up\`\n`);

    const bad = run('exec', '--name', name, 'node7', '--', 'true');
    assert.equal(bad.status, 4);
    assert.equal(bad.stderr, `lab ${name} has no node "node7": its nodes are node1-public, node2-easy\n`);

    // the completion helper lists the lab's nodes (what `lab exec <TAB>` offers)
    const nodes = spawnSync(process.execPath, [bin, '__complete', 'lab-nodes', name], { encoding: 'utf8' });
    assert.equal(nodes.stdout, 'node1-public\nnode2-easy\n');
    // and bash, completing `meshctl lab exec --name NAME node<TAB>`, asks it with the lab name typed
    const script = spawnSync(process.execPath, [bin, 'completion', 'bash'], { encoding: 'utf8' }).stdout;
    writeFileSync(join(dir, 'c.bash'), script);
    const words = [bin, 'lab', 'exec', '--name', name, 'node'].map((w) => `'${w}'`).join(' ');
    const b = spawnSync('bash', ['--norc', '-c', `source ${dir}/c.bash; COMP_WORDS=(${words}); COMP_CWORD=5; _meshctl; echo "\${COMPREPLY[*]}"`], {
      encoding: 'utf8',
    });
    assert.equal(b.stdout, 'node1-public node2-easy\n', b.stderr);

    const sh = spawnSync(process.execPath, [bin, 'lab', 'shell', '--name', name, 'node1-public'], {
      encoding: 'utf8',
      input: 'echo "in $(ip netns identify)"; exit 3\n',
      env: { ...process.env, SHELL: '/bin/sh' },
    });
    assert.equal(sh.status, 3, sh.stderr);
    assert.match(sh.stdout, new RegExp(`in ${ns}\\n`));
  } finally {
    await must('ip', ['netns', 'del', ns]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});
