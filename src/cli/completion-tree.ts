// The command tree as shell completion needs it, read from the commander
// program at run time (so a new command or option completes without anyone
// touching the completion code): every visible command with its aliases, its
// options (which take a value, and what kind of value), and its positional
// arguments with a hint each.
import type { Argument, Command, Option } from 'commander';

/** What a value completes to: nothing in particular, paths, directories, fixed words, a lab's nodes, or a program name. */
export type Hint = { kind: 'none' } | { kind: 'file' } | { kind: 'dir' } | { kind: 'choices'; words: string[] } | { kind: 'lab-node' } | { kind: 'command' };

export interface OptSpec {
  /** e.g. ['-h', '--help'] */
  names: string[];
  takesValue: boolean;
  hint: Hint;
  description: string;
}

export interface ArgSpec {
  name: string;
  variadic: boolean;
  hint: Hint;
}

export interface CmdSpec {
  /** the canonical path from the program, e.g. ['meshctl', 'lab', 'exec'] */
  path: string[];
  name: string;
  aliases: string[];
  description: string;
  options: OptSpec[];
  args: ArgSpec[];
  subcommands: CmdSpec[];
}

/**
 * Words that go into generated shell code unquoted (as case patterns and
 * completion word lists): command and option names, choices. Anything else is
 * left out of the completion rather than quoted into a script.
 */
export const SAFE_WORD_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:,+@%-]*$|^--?[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A value placeholder such as `<pemfile>` or `[dir]` in an option's flags. */
function placeholder(flags: string): string {
  return /[<[]([^>\]]+)[>\]]/.exec(flags)?.[1]?.replace(/\.\.\.$/, '') ?? '';
}

/** Paths for options whose name or placeholder says file/path/socket, directories for `-dir` / `<dir>`. */
function valueHint(longName: string, ph: string, choices: readonly string[] | undefined): Hint {
  if (choices?.length) return { kind: 'choices', words: choices.filter((w) => SAFE_WORD_RE.test(w)) };
  if (/^bool(ean)?$/i.test(ph)) return { kind: 'choices', words: ['true', 'false'] };
  if (/-dir$/.test(longName) || /^dir(ectory)?$/i.test(ph)) return { kind: 'dir' };
  if (/-file$/.test(longName) || /file|path|pem|socket/i.test(ph)) return { kind: 'file' };
  return { kind: 'none' };
}

function optSpec(o: Option): OptSpec {
  const names = [o.short, o.long].filter((n): n is string => typeof n === 'string' && SAFE_WORD_RE.test(n));
  const takesValue = o.required || o.optional;
  return {
    names,
    takesValue,
    hint: takesValue ? valueHint(o.long ?? '', placeholder(o.flags), o.argChoices) : { kind: 'none' },
    description: o.description,
  };
}

function argSpec(a: Argument, path: readonly string[]): ArgSpec {
  const name = a.name();
  let hint: Hint = valueHint('', name, a.argChoices);
  // a lab command's NODE completes to the nodes of the lab named by --name (read from its state at completion time)
  if (path[1] === 'lab' && name === 'node') hint = { kind: 'lab-node' };
  if (a.variadic && /^(cmd|command)$/.test(name)) hint = { kind: 'command' };
  return { name, variadic: a.variadic, hint };
}

/** The visible command tree under `cmd` (hidden commands and options are left out, as in --help). */
export function commandTree(cmd: Command, parent: readonly string[] = []): CmdSpec {
  const path = [...parent, cmd.name()];
  const help = cmd.createHelp();
  return {
    path,
    name: cmd.name(),
    aliases: cmd.aliases().filter((a) => SAFE_WORD_RE.test(a)),
    description: cmd.description(),
    options: help
      .visibleOptions(cmd)
      .map(optSpec)
      .filter((o) => o.names.length > 0),
    args: cmd.registeredArguments.map((a) => argSpec(a, path)),
    subcommands: help
      .visibleCommands(cmd)
      .filter((c) => cmd.commands.includes(c) && SAFE_WORD_RE.test(c.name()))
      .map((c) => commandTree(c, path)),
  };
}

/** Every command under (and including) `root`, parents before children. */
export function allCommands(root: CmdSpec): CmdSpec[] {
  return [root, ...root.subcommands.flatMap(allCommands)];
}

/** Each command once per name it answers to: the path through aliases too, so a completion typed with an alias keeps working. */
export function pathVariants(c: CmdSpec, byPath: Map<string, CmdSpec>): string[][] {
  if (c.path.length === 1) return [c.path];
  const parent = byPath.get(c.path.slice(0, -1).join(' '))!;
  return pathVariants(parent, byPath).flatMap((p) => [c.name, ...c.aliases].map((n) => [...p, n]));
}
