// `meshctl completion bash|zsh|fish`: a completion script generated from the
// command tree commander holds at run time (src/cli/completion-tree.ts), so it
// cannot drift from the commands. Every script walks the words typed so far
// the same way: options that take a value skip it, a subcommand's name goes
// one level down, anything else is a positional argument; after `--` only
// positionals. Lab NODE arguments complete to the nodes of the lab named by
// --name (default mlab), through the hidden `meshctl __complete lab-nodes`.
import { type Command, Argument } from 'commander';
import { allCommands, type CmdSpec, commandTree, type Hint, pathVariants } from './completion-tree.js';
import { CliError } from './errors.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** The lab name lab commands use without --name (src/cli/lab.ts). */
const DEFAULT_LAB_NAME = 'mlab';
/** A description in a zsh or fish completion menu: one line, cut to fit a terminal. */
const MAX_DESCRIPTION_CHARS = 100;

/** Single-quoted for bash and zsh: a quote inside becomes '\'' (close, escaped quote, reopen). */
const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
/** Single-quoted for fish, which escapes \\ and ' inside single quotes with a backslash. */
const fishQuote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const oneLine = (s: string): string => {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > MAX_DESCRIPTION_CHARS ? `${l.slice(0, MAX_DESCRIPTION_CHARS - 1)}…` : l;
};

/** A hint as the word the shell functions switch on: `file`, `dir`, `choices W1 W2…`, `lab-node`, `command`, `none`. */
function hintWord(h: Hint): string {
  return h.kind === 'choices' ? `choices ${h.words.join(' ')}` : h.kind;
}

interface Row {
  key: string;
  c: CmdSpec;
}

/** Every command under every name it answers to, as the space-joined path the shell code keys on. */
function rows(root: CmdSpec): Row[] {
  const cmds = allCommands(root);
  const byPath = new Map(cmds.map((c) => [c.path.join(' '), c]));
  return cmds.flatMap((c) => pathVariants(c, byPath).map((p) => ({ key: p.join(' '), c })));
}

/** The positional hints of a command as [pattern suffix, hint]: fixed indexes first, then the variadic tail. */
function argHints(c: CmdSpec): [string, string][] {
  const out: [string, string][] = [];
  c.args.forEach((a, i) => {
    if (!a.variadic) return void out.push([String(i), hintWord(a.hint)]);
    // a variadic command line: its first word is a program, the rest its arguments (paths, most often)
    if (a.hint.kind === 'command') out.push([String(i), 'command'], ['*', 'file']);
    else out.push(['*', hintWord(a.hint)]);
  });
  return out;
}

/** The lookup functions bash and zsh share: the same `case` syntax in both. */
function caseTables(root: CmdSpec): string {
  const rs = rows(root);
  const cmd = rs.map(({ key, c }) => {
    const subs = c.subcommands.flatMap((s) => [s.name, ...s.aliases]).join(' ');
    const opts = c.options.flatMap((o) => o.names).join(' ');
    const valopts = c.options.flatMap((o) => (o.takesValue ? o.names : [])).join(' ');
    return `    ${shQuote(key)}) _m_subs=${shQuote(subs)}; _m_opts=${shQuote(opts)}; _m_valopts=${shQuote(valopts)} ;;`;
  });
  const opt = rs.flatMap(({ key, c }) =>
    c.options.filter((o) => o.takesValue).flatMap((o) => o.names.map((n) => `    ${shQuote(`${key}|${n}`)}) _m_hint=${shQuote(hintWord(o.hint))} ;;`)),
  );
  const arg = rs.flatMap(({ key, c }) =>
    argHints(c).map(([i, h]) => `    ${i === '*' ? `${shQuote(`${key}|`)}*` : shQuote(`${key}|${i}`)}) _m_hint=${shQuote(h)} ;;`),
  );
  return [
    '# the command tree: subcommands, options, and the options that take a value, per command path',
    '_meshctl_cmd() {',
    '  _m_subs=; _m_opts=; _m_valopts=',
    '  case "$1" in',
    ...cmd,
    '  esac',
    '}',
    '# what an option value completes to',
    '_meshctl_opthint() {',
    '  _m_hint=',
    '  case "$1|$2" in',
    ...opt,
    '  esac',
    '}',
    '# what the positional argument at index $2 completes to',
    '_meshctl_arghint() {',
    '  _m_hint=none',
    '  case "$1|$2" in',
    ...arg,
    '  esac',
    '}',
    '# an option value: the option may belong to the command or to one above it',
    '_meshctl_hint_for_opt() {',
    '  local p="$1"',
    '  while :; do',
    '    _meshctl_opthint "$p" "$2"',
    '    [[ -n "$_m_hint" ]] && return',
    `    [[ "$p" == *' '* ]] || { _m_hint=none; return; }`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion in generated code, not a template
    '    p="${p% *}"',
    '  done',
    '}',
  ].join('\n');
}

/** The walk over the words before the cursor (bash and zsh: the word array and index differ, the logic does not). */
function walk(word: (i: string) => string, first: number, current: string): string {
  return [
    `  local mpath=meshctl i=${first} w npos=0 dd=0 labname=${DEFAULT_LAB_NAME} valopts_all`,
    '  local _m_subs _m_opts _m_valopts _m_hint',
    '  _meshctl_cmd "$mpath"; valopts_all="$_m_valopts"',
    `  while (( i < ${current} )); do`,
    `    w="${word('i')}"`,
    '    if (( dd )); then (( npos++ ))',
    `    elif [[ "$w" == -- ]]; then dd=1`,
    `    elif [[ "$w" == -* ]]; then`,
    `      if [[ "$w" != *=* && " $valopts_all " == *" $w "* ]]; then`,
    `        [[ "$w" == --name ]] && labname="${word('i+1')}"`,
    '        (( i++ ))',
    '      fi',
    `    elif (( npos == 0 )) && [[ " $_m_subs " == *" $w "* ]]; then`,
    '      mpath="$mpath $w"; _meshctl_cmd "$mpath"; valopts_all="$valopts_all $_m_valopts"',
    '    else (( npos++ ))',
    '    fi',
    '    (( i++ ))',
    '  done',
  ].join('\n');
}

function bashScript(root: CmdSpec, version: string): string {
  return `# bash completion for meshctl ${version}, generated by \`meshctl completion bash\` from its command tree.
# Load it in this shell with: source <(meshctl completion bash)
# or install it: meshctl completion bash > /etc/bash_completion.d/meshctl
${caseTables(root)}

_meshctl_apply() {
  case "$1" in
    file) compopt -o filenames 2>/dev/null; COMPREPLY+=($(compgen -f -- "$cur")) ;;
    dir) compopt -o filenames 2>/dev/null; COMPREPLY+=($(compgen -d -- "$cur")) ;;
    choices\\ *) COMPREPLY+=($(compgen -W "\${1#choices }" -- "$cur")) ;;
    lab-node) COMPREPLY+=($(compgen -W "$("\${COMP_WORDS[0]}" __complete lab-nodes "$labname" 2>/dev/null)" -- "$cur")) ;;
    command) COMPREPLY+=($(compgen -c -- "$cur")) ;;
  esac
}

_meshctl() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  COMPREPLY=()
${walk((i) => `\${COMP_WORDS[${i}]}`, 1, 'COMP_CWORD')}
  if (( ! dd )) && [[ "$prev" == -* && " $valopts_all " == *" $prev "* ]]; then
    _meshctl_hint_for_opt "$mpath" "$prev"; _meshctl_apply "$_m_hint"; return 0
  fi
  if (( ! dd )) && [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$_m_opts" -- "$cur")); return 0
  fi
  if (( ! dd && npos == 0 )) && [[ -n "$_m_subs" ]]; then COMPREPLY=($(compgen -W "$_m_subs" -- "$cur")); fi
  _meshctl_arghint "$mpath" "$npos"; _meshctl_apply "$_m_hint"
  return 0
}
complete -F _meshctl meshctl
`;
}

function zshDescriptions(root: CmdSpec): string {
  const rs = rows(root);
  const item = (name: string, d: string): string => shQuote(`${name.replace(/:/g, '\\:')}:${oneLine(d)}`);
  const subs = rs
    .filter(({ c }) => c.subcommands.length > 0)
    .map(({ key, c }) => `    ${shQuote(key)}) m_d=(${c.subcommands.flatMap((s) => [s.name, ...s.aliases].map((n) => item(n, s.description))).join(' ')}) ;;`);
  const opts = rs.map(({ key, c }) => `    ${shQuote(key)}) m_d=(${c.options.flatMap((o) => o.names.map((n) => item(n, o.description))).join(' ')}) ;;`);
  return [
    '_meshctl_subdescs() {',
    '  m_d=()',
    '  case "$1" in',
    ...subs,
    '  esac',
    '}',
    '_meshctl_optdescs() {',
    '  m_d=()',
    '  case "$1" in',
    ...opts,
    '  esac',
    '}',
  ].join('\n');
}

function zshScript(root: CmdSpec, version: string): string {
  return `#compdef meshctl
# zsh completion for meshctl ${version}, generated by \`meshctl completion zsh\` from its command tree.
# Load it in this shell with: source <(meshctl completion zsh)
# or install it as _meshctl in a directory of $fpath.
${caseTables(root)}
${zshDescriptions(root)}

_meshctl_apply() {
  case "$1" in
    file) _files ;;
    dir) _files -/ ;;
    choices\\ *) local -a w; w=(\${=1#choices }); compadd -a w ;;
    lab-node) local -a n; n=(\${(f)"$(\${words[1]} __complete lab-nodes "$labname" 2>/dev/null)"}); compadd -a n ;;
    command) _command_names -e ;;
  esac
}

_meshctl() {
  local cur="\${words[CURRENT]}" prev="\${words[CURRENT-1]}"
  local -a m_d
${walk((i) => `\${words[${i}]}`, 2, 'CURRENT')}
  if (( ! dd )) && [[ "$prev" == -* && " $valopts_all " == *" $prev "* ]]; then
    _meshctl_hint_for_opt "$mpath" "$prev"; _meshctl_apply "$_m_hint"; return
  fi
  if (( ! dd )) && [[ "$cur" == -* ]]; then
    _meshctl_optdescs "$mpath"; _describe -t options option m_d; return
  fi
  if (( ! dd && npos == 0 )) && [[ -n "$_m_subs" ]]; then _meshctl_subdescs "$mpath"; _describe -t commands command m_d; fi
  _meshctl_arghint "$mpath" "$npos"; _meshctl_apply "$_m_hint"
}

if [[ "$funcstack[1]" == _meshctl ]]; then _meshctl "$@"; else compdef _meshctl meshctl; fi
`;
}

function fishScript(root: CmdSpec, version: string): string {
  const rs = rows(root);
  const lines: string[] = [
    `# fish completion for meshctl ${version}, generated by \`meshctl completion fish\` from its command tree.`,
    '# Load it in this shell with: meshctl completion fish | source',
    '# or install it: meshctl completion fish > ~/.config/fish/completions/meshctl.fish',
    'complete -c meshctl -e',
    '# the command tree: subcommands and the options that take a value, per command path',
    'function __meshctl_subs',
    '    switch $argv[1]',
    ...rs
      .filter(({ c }) => c.subcommands.length > 0)
      .flatMap(({ key, c }) => [`        case ${fishQuote(key)}`, `            echo ${c.subcommands.flatMap((s) => [s.name, ...s.aliases]).join(' ')}`]),
    '    end',
    'end',
    'function __meshctl_valopts',
    '    switch $argv[1]',
    ...rs.flatMap(({ key, c }) => {
      const v = c.options.flatMap((o) => (o.takesValue ? o.names : []));
      return v.length ? [`        case ${fishQuote(key)}`, `            echo ${v.join(' ')}`] : [];
    }),
    '    end',
    'end',
    '# the walk over the words before the cursor: prints the command path, the positional count, `--` seen, and the lab name',
    'function __meshctl_state',
    '    set -l toks (commandline -opc)',
    '    set -l p meshctl',
    '    set -l valopts (string split " " -- (__meshctl_valopts $p))',
    `    set -l npos 0; set -l dd 0; set -l skip 0; set -l lab ${DEFAULT_LAB_NAME}; set -l prevopt ''`,
    '    for w in $toks[2..-1]',
    '        if test $skip = 1',
    '            set skip 0',
    '            test "$prevopt" = --name; and set lab $w',
    '            continue',
    '        end',
    '        if test $dd = 1',
    '            set npos (math $npos + 1)',
    '        else if test "$w" = --',
    '            set dd 1',
    "        else if string match -q -- '-*' $w",
    "            if not string match -q -- '*=*' $w; and contains -- $w $valopts",
    '                set skip 1; set prevopt $w',
    '            end',
    '        else if test $npos = 0; and contains -- $w (string split " " -- (__meshctl_subs $p))',
    '            set p "$p $w"',
    '            set valopts $valopts (string split " " -- (__meshctl_valopts $p))',
    '        else',
    '            set npos (math $npos + 1)',
    '        end',
    '    end',
    '    printf "%s\\n" $p $npos $dd $lab',
    'end',
    '# at command path $argv[1], outside an option value; with $argv[2]: at that positional index (`+N`: N or later)',
    'function __meshctl_at',
    '    set -l s (__meshctl_state)',
    '    test "$s[1]" = "$argv[1]"; or return 1',
    '    set -l tok (commandline -ct)',
    '    if test (count $argv) -lt 2',
    "        test $s[3] = 0; or return 1; string match -q -- '-*' $tok; and return 0",
    '        test $s[2] = 0',
    '        return',
    '    end',
    "    if string match -q -- '+*' $argv[2]",
    '        test $s[2] -ge (string sub -s 2 -- $argv[2])',
    '    else',
    '        test $s[2] = $argv[2]',
    '    end',
    'end',
    'function __meshctl_lab_nodes',
    '    set -l s (__meshctl_state)',
    '    set -l bin (commandline -opc)[1]',
    '    $bin __complete lab-nodes $s[4] 2>/dev/null',
    'end',
  ];
  for (const { key, c } of rs) {
    const at = fishQuote(`__meshctl_at ${fishQuote(key)}`);
    for (const s of c.subcommands) {
      for (const n of [s.name, ...s.aliases]) lines.push(`complete -c meshctl -f -n ${at} -a ${n} -d ${fishQuote(oneLine(s.description))}`);
    }
    for (const o of c.options) {
      const flags = o.names.map((n) => (n.startsWith('--') ? `-l ${n.slice(2)}` : `-s ${n.slice(1)}`)).join(' ');
      let value = '';
      if (o.takesValue) {
        const h = o.hint;
        value =
          h.kind === 'file'
            ? ' -r -F'
            : h.kind === 'dir'
              ? " -x -a '(__fish_complete_directories)'"
              : h.kind === 'choices'
                ? ` -x -a ${fishQuote(h.words.join(' '))}`
                : ' -x';
      }
      // -f (no file names) everywhere but for an option that takes a path, where fish's own file completion is wanted
      const noFiles = o.takesValue && o.hint.kind === 'file' ? '' : ' -f';
      lines.push(`complete -c meshctl${noFiles} -n ${at} ${flags}${value} -d ${fishQuote(oneLine(o.description))}`);
    }
    for (const [i, h] of argHints(c)) {
      const cond = fishQuote(`__meshctl_at ${fishQuote(key)} ${i === '*' ? `+${c.args.length - 1}` : i}`);
      if (h === 'file') lines.push(`complete -c meshctl -F -n ${cond}`);
      else if (h === 'dir') lines.push(`complete -c meshctl -f -n ${cond} -a '(__fish_complete_directories)'`);
      else if (h === 'command') lines.push(`complete -c meshctl -f -n ${cond} -a '(__fish_complete_command)'`);
      else if (h === 'lab-node') lines.push(`complete -c meshctl -f -n ${cond} -a '(__meshctl_lab_nodes)'`);
      else if (h.startsWith('choices ')) lines.push(`complete -c meshctl -f -n ${cond} -a ${fishQuote(h.slice('choices '.length))}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The completion script for `shell`, from the program's command tree as it is now. */
export function completionScript(shell: Shell, program: Command, version: string): string {
  const root = commandTree(program);
  if (shell === 'bash') return bashScript(root, version);
  if (shell === 'zsh') return zshScript(root, version);
  return fishScript(root, version);
}

export function registerCompletion(program: Command, version: () => string): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish), generated from the commands of this meshctl')
    .addArgument(new Argument('<shell>', 'the shell to complete for').choices(SHELLS))
    .action((shell: Shell) => void process.stdout.write(completionScript(shell, program, version())));
  // what the scripts call while completing: words for values that live in state, not in the command tree
  program
    .command('__complete', { hidden: true })
    .argument('<what>')
    .argument('[name]')
    .action(async (what: string, name: string | undefined) => {
      if (what !== 'lab-nodes') throw new CliError('USAGE', `__complete: nothing to complete for "${what}"`);
      const { loadLab } = await import('../lab/lab.js');
      const { LAB_NAME_RE } = await import('../lab/exec.js');
      const lab = name ?? DEFAULT_LAB_NAME;
      // an unreadable or missing lab (not root, not up), or a word that is no lab name, completes to nothing
      let nodes: string[] = [];
      try {
        if (LAB_NAME_RE.test(lab)) nodes = (loadLab(lab)?.nodes ?? []).map((n) => n.name);
      } catch {
        nodes = [];
      }
      process.stdout.write(nodes.map((n) => `${n}\n`).join(''));
    });
}
