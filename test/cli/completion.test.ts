// `meshctl completion bash|zsh|fish`: each script parses in its shell, the
// bash one completes what a user types when sourced into a real bash, and
// every command and option of the tree commander holds appears in every
// script (a new command cannot be left out).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { completionScript, SHELLS } from '../../src/cli/completion.js';
import { allCommands, commandTree } from '../../src/cli/completion-tree.js';
import { findTool } from '../../src/util/tools.js';
import { packageRoot } from '../../src/cli/version.js';
import { skipTest } from '../helpers/ci.js';

const bin = join(packageRoot(), 'bin', 'meshctl');

function script(shell: string): string {
  const r = spawnSync(process.execPath, [bin, 'completion', shell], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Sources the bash script and asks it to complete each line (the last word is the one being completed). */
function bashComplete(src: string, lines: string[][]): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-completion-'));
  try {
    const file = join(dir, 'meshctl.bash');
    writeFileSync(file, src);
    // each line as a bash array literal of single-quoted words; the words are the test's own
    const q = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`;
    const calls = lines.map((l) => `COMP_WORDS=(${l.map(q).join(' ')}); COMP_CWORD=${l.length - 1}; _meshctl; printf '%s\\n' "\${COMPREPLY[*]}"`);
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `set -u; source ${q(file)}; cd ${q(dir)}; touch ca.pem; mkdir state; ${calls.join('\n')}`], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    return r.stdout
      .split('\n')
      .slice(0, lines.length)
      .map((l) => l.split(' ').filter(Boolean));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('bash: the script parses (bash -n)', () => {
  const r = spawnSync('bash', ['-n'], { input: script('bash'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

/** zsh and fish are in deps/debian.json's test list: without them the checks skip loudly, and fail in CI. */
function optionalShell(t: TestContext, shell: string): boolean {
  if (findTool(shell)) return true;
  skipTest(t, `the ${shell} completion checks`, `${shell} is not installed (apt-get install ${shell})`);
  return false;
}

/** Runs `shell ARGS…` with the script at $file in a temp dir. */
function inShell(shell: string, src: string, args: (file: string) => string[]): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-completion-'));
  try {
    const file = join(dir, `meshctl.${shell}`);
    writeFileSync(file, src);
    return spawnSync(shell, args(file), { encoding: 'utf8', cwd: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const shell of ['zsh', 'fish'] as const) {
  test(`${shell}: the script parses (${shell} -n)`, (t) => {
    if (!optionalShell(t, shell)) return;
    const r = inShell(shell, script(shell), (f) => ['-n', f]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  });
}

test('zsh: with compinit, sourcing the script registers _meshctl for meshctl', (t) => {
  if (!optionalShell(t, 'zsh')) return;
  const r = inShell('zsh', script('zsh'), (f) => [
    '-f',
    '-c',
    `autoload -U compinit && compinit -u -d ./zcompdump && source ${f} && print -r -- $_comps[meshctl]`,
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, '_meshctl\n');
});

test('zsh: sourced, _meshctl offers the right words (compadd and _describe stubbed to print; zsh itself filters by prefix)', (t) => {
  if (!optionalShell(t, 'zsh')) return;
  const lines = [
    ['meshctl', 'st'],
    ['meshctl', 'completion', ''],
    ['meshctl', '--socket', '/x.sock', 'dns', ''],
    ['meshctl', 'up', '--accept-dns', ''],
    ['meshctl', 'up', '--state-dir', ''],
    ['meshctl', 'lab', 'exec', 'n1', '--', ''],
    ['meshctl', 'lab', 'up', '--'],
  ];
  // zsh parameter expansions, not templates
  const stubs = [
    'compdef() { :; }',
    'source "$1"',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: zsh code
    '_describe() { local n=${@[-1]}; print -r -- "${(@)${(@P)n}%%:*}"; }',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: zsh code
    'compadd() { if [[ $1 == -a ]]; then print -r -- "${(@P)2}"; else shift $(( ${@[(i)--]} )); print -r -- "$@"; fi; }',
    '_files() { print -r -- "FILES $*"; }',
    '_command_names() { print -r -- COMMANDS; }',
    't() { words=("$@"); CURRENT=$#; _meshctl; print -- ---; }',
    ...lines.map((l) => `t ${l.map((w) => `'${w}'`).join(' ')}`),
  ].join('\n');
  const r = inShell('zsh', script('zsh'), (f) => ['-f', '-c', stubs, 'zsh', f]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const got = r.stdout.split('---\n').map((b) => b.trim());
  assert.ok(got[0]!.split(' ').includes('status') && got[0]!.split(' ').includes('bugreport'), got[0]);
  assert.equal(got[1], 'bash zsh fish');
  assert.equal(got[2], 'status query');
  assert.equal(got[3], 'true false');
  assert.equal(got[4], 'FILES -/');
  assert.equal(got[5], 'COMMANDS');
  assert.ok(got[6]!.split(' ').includes('--nodes'), got[6]);
});

test('fish: sourced, complete -C completes commands, options and values', (t) => {
  if (!optionalShell(t, 'fish')) return;
  const lines = ['meshctl st', 'meshctl up --acc', 'meshctl completion ', 'meshctl --socket /x.sock st', 'meshctl up --accept-dns ', 'meshctl dns '];
  const r = inShell('fish', script('fish'), (f) => [
    '--no-config',
    '-c',
    `source ${f}; ${lines.map((l) => `complete -C ${JSON.stringify(l)} | string replace -r '\\t.*' ''; echo ---`).join('; ')}`,
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const got = r.stdout.split('---\n').map((b) => b.split('\n').filter(Boolean));
  assert.deepEqual(got[0], ['status']);
  assert.deepEqual(got[1], ['--accept-dns', '--accept-routes']);
  assert.deepEqual(got[2], ['bash', 'fish', 'zsh']);
  assert.deepEqual(got[3], ['status']);
  assert.deepEqual(got[4], ['false', 'true']);
  assert.deepEqual(got[5], ['query', 'status']);
});

test('bash: sourced, it completes commands, options, option values and positional values', () => {
  const got = bashComplete(script('bash'), [
    ['meshctl', 'st'],
    ['meshctl', 'up', '--acc'],
    ['meshctl', 'dns', ''],
    ['meshctl', 'dns', 'st'],
    ['meshctl', '--socket', '/x.sock', 'st'],
    ['meshctl', 'completion', ''],
    ['meshctl', 'lab', 'up', '--na'],
    ['meshctl', 'up', '--control-ca', 'ca.'],
    ['meshctl', 'up', '--state-dir', 'sta'],
    ['meshctl', 'up', '--accept-dns', ''],
    ['meshctl', 'status', '--', '--j'],
    ['meshctl', 'lab', 'exec', 'n1', '--', 'bas'],
    ['meshctl', 'bugreport', '--output', 'ca'],
    ['meshctl', 'control', 'authkey', 'cr'],
  ]);
  assert.deepEqual(got[0], ['status']);
  assert.deepEqual(got[1], ['--accept-dns', '--accept-routes']);
  assert.deepEqual(got[2], ['status', 'query']);
  assert.deepEqual(got[3], ['status']);
  assert.deepEqual(got[4], ['status'], 'a global option and its value are skipped');
  assert.deepEqual(got[5], ['bash', 'zsh', 'fish']);
  assert.deepEqual(got[6], ['--name']);
  assert.deepEqual(got[7], ['ca.pem'], 'a PEM file option completes file names');
  assert.deepEqual(got[8], ['state'], 'a -dir option completes directories');
  assert.deepEqual(got[9], ['true', 'false']);
  assert.deepEqual(got[10], []);
  assert.ok(got[11]!.includes('bash'), `a command after -- completes program names: ${got[11]}`);
  assert.deepEqual(got[12], ['ca.pem']);
  assert.deepEqual(got[13], ['create']);
});

test('every command and option in the tree appears in every script, and new ones are picked up', () => {
  const program = buildProgram();
  // a command registered after the fact (as other files add theirs) completes without any change to the generator
  program.addCommand(new Command('frobnicate').description('a command the generator never heard of').option('--widget-file <path>', 'w'));
  const cmds = allCommands(commandTree(program));
  assert.ok(cmds.length > 30, `only ${cmds.length} commands in the tree`);
  for (const shell of SHELLS) {
    const src = completionScript(shell, program, '0.0.0-test');
    for (const c of cmds) {
      assert.ok(src.includes(c.path.join(' ')), `${shell}: command "${c.path.join(' ')}" missing`);
      for (const o of c.options)
        for (const n of o.names) assert.ok(src.includes(n.replace(/^--?/, '')), `${shell}: option ${n} of "${c.path.join(' ')}" missing`);
    }
    assert.ok(!src.includes("'meshctl __complete"), `${shell}: the hidden helper is not offered`);
    // not among any command's subcommands: bash/zsh tables, zsh descriptions, fish -a words
    assert.ok(!/_m_subs='[^']*__complete|'__complete:|-a __complete/.test(src), `${shell}: the hidden helper is not offered`);
  }
  const bash = completionScript('bash', program, '0.0.0-test');
  assert.match(bash, /'meshctl frobnicate\|--widget-file'\) _m_hint='file'/);
  // the commands this change adds are in the tree the binary builds
  for (const p of ['meshctl completion', 'meshctl bugreport', 'meshctl lab exec', 'meshctl lab shell']) {
    assert.ok(
      cmds.some((c) => c.path.join(' ') === p),
      p,
    );
  }
});

test('lab NODE arguments complete to the nodes of the lab named by --name', () => {
  const bash = script('bash');
  assert.match(bash, /'meshctl lab exec\|0'\) _m_hint='lab-node'/);
  assert.match(bash, /'meshctl lab shell\|0'\) _m_hint='lab-node'/);
  // no lab of that name: the helper completes to nothing, quietly
  const r = spawnSync(process.execPath, [bin, '__complete', 'lab-nodes', 'nolab-x9'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, '');
});
