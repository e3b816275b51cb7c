// The programs meshctl runs (ip, nft, resolvectl, miniupnpd, …) and the Debian
// packages that provide them. Every caller checks a program here before it
// runs it, so a missing one is a one-line error naming the program and its
// package ("nft not found: install the Debian package nftables (sudo apt-get
// install nftables)") instead of a spawn error deep inside.
//
// The packages come from deps/debian.json, the one list that the lab's check,
// `npm run test:full` and CI all read. It is read only when needed (a missing
// program's message, the lab's check), and parsed as untrusted input: only
// well-formed package and program names get out of it, since they end up in
// an apt-get argv.
//
// Looking a program up searches PATH with stat/access calls, never by spawning
// anything; a program found once is remembered for the life of the process, so
// a caller that runs nft on every change pays for the search once. A missing
// one is not remembered: once it is installed, the next check finds it.
import { fileURLToPath } from 'node:url';
import { basename, isAbsolute, join } from 'node:path';
import { accessSync, constants, readFileSync, statSync } from './cjs.js';

/** Who needs a package: every lab, a lab with a node of one NAT kind ("lab:upnp"), or the tests. */
export type DebianUse = 'lab' | 'tests' | `lab:${string}`;

export interface DebianPackage {
  name: string;
  /** programs looked up on PATH to tell whether it is installed */
  tools: string[];
  /** for a package without programs: files it installs, any of which says it is installed */
  files: string[];
  for: DebianUse[];
  why: string;
}

export interface DebianDeps {
  packages: DebianPackage[];
  /** packages the tests use from an unpacked copy, never installed (systemd-resolved) */
  unpacked: DebianPackage[];
  /** program → package, for programs every Debian system has (sh, env): the message only */
  elsewhere: Record<string, string>;
}

/** deps/debian.json at the package root: dist/src/util/ and the bundles in dist/src/cli/ are both three levels below it. */
export const DEBIAN_DEPS_FILE = fileURLToPath(new URL('../../../deps/debian.json', import.meta.url));

/** The list is a few KiB; anything larger is not the file we wrote. */
const MAX_DEPS_FILE_BYTES = 64 * 1024;
/** Bounds on what the list holds, so a damaged file cannot make an unbounded argv or message. */
const MAX_PACKAGES = 64;
const MAX_TOOLS_PER_PACKAGE = 16;
const MAX_WHY_CHARS = 400;

/** Debian policy 5.6.1: lowercase letters, digits, + - . ; at least two characters, starting alphanumeric (so never an option). */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]{1,62}$/;
/** A program name looked up on PATH: no slash, never starting with "-". */
const TOOL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$/;
const USE = /^(lab|tests|lab:[a-z]{1,16})$/;

export class DebianDepsError extends Error {
  override readonly name = 'DebianDepsError';
  readonly code = 'BAD_DEPS_FILE';
}

export class ToolMissingError extends Error {
  override readonly name = 'ToolMissingError';
  readonly code = 'TOOL_MISSING';
  constructor(
    readonly tool: string,
    /** the Debian package that provides it, when the list knows it */
    readonly pkg: string | undefined,
  ) {
    super(
      pkg
        ? `${tool} not found: install the Debian package ${pkg} (sudo apt-get install ${pkg})`
        : `${tool} not found on PATH: install the package that provides it`,
    );
  }
}

function fail(file: string, what: string): never {
  throw new DebianDepsError(`${file}: ${what}; restore it from the meshctl sources`);
}

function strings(file: string, where: string, v: unknown, re: RegExp | null, max: number): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > max) fail(file, `${where} is not a list of at most ${max} strings`);
  return v.map((x) => {
    if (typeof x !== 'string' || (re && !re.test(x))) fail(file, `${where} holds ${JSON.stringify(x).slice(0, 80)}, not a valid name`);
    return x;
  });
}

function parsePackage(file: string, where: string, v: unknown, needUse: boolean): DebianPackage {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(file, `${where} is not an object`);
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || !PACKAGE_NAME.test(o.name)) fail(file, `${where}.name is not a Debian package name`);
  const why = typeof o.why === 'string' ? o.why : '';
  if (why.length > MAX_WHY_CHARS || /[\x00-\x1f\x7f]/.test(why)) fail(file, `${where}.why is longer than ${MAX_WHY_CHARS} characters or not printable`);
  const files = strings(file, `${where}.files`, o.files, null, MAX_TOOLS_PER_PACKAGE);
  if (files.some((f) => !isAbsolute(f))) fail(file, `${where}.files holds a relative path`);
  const uses = strings(file, `${where}.for`, o.for, USE, 8) as DebianUse[];
  if (needUse && uses.length === 0) fail(file, `${where}.for is empty`);
  return { name: o.name, tools: strings(file, `${where}.tools`, o.tools, TOOL_NAME, MAX_TOOLS_PER_PACKAGE), files, for: uses, why };
}

/** Parses the list; throws DebianDepsError naming the file and what is wrong. */
export function parseDebianDeps(text: string, file = DEBIAN_DEPS_FILE): DebianDeps {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    fail(file, `not JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, 'not a JSON object');
  const o = raw as Record<string, unknown>;
  const list = (k: string, needUse: boolean): DebianPackage[] => {
    const v = o[k] ?? [];
    if (!Array.isArray(v) || v.length > MAX_PACKAGES) fail(file, `"${k}" is not a list of at most ${MAX_PACKAGES} packages`);
    return v.map((p, i) => parsePackage(file, `${k}[${i}]`, p, needUse));
  };
  const packages = list('packages', true);
  const unpacked = list('unpacked', false);
  const elsewhere: Record<string, string> = {};
  const e = o.elsewhere ?? {};
  if (typeof e !== 'object' || e === null || Array.isArray(e)) fail(file, '"elsewhere" is not an object');
  for (const [tool, pkg] of Object.entries(e)) {
    if (!TOOL_NAME.test(tool) || typeof pkg !== 'string' || !PACKAGE_NAME.test(pkg)) fail(file, `"elsewhere" maps ${JSON.stringify(tool).slice(0, 80)} badly`);
    elsewhere[tool] = pkg;
  }
  return { packages, unpacked, elsewhere };
}

/** Reads and parses the list (deps/debian.json unless told). */
export function loadDebianDeps(file = DEBIAN_DEPS_FILE): DebianDeps {
  let text: string;
  try {
    if (statSync(file).size > MAX_DEPS_FILE_BYTES) fail(file, `larger than ${MAX_DEPS_FILE_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof DebianDepsError) throw err;
    fail(file, `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseDebianDeps(text, file);
}

let cachedDeps: DebianDeps | undefined;
/** The list, read once per process. */
export function debianDeps(): DebianDeps {
  cachedDeps ??= loadDebianDeps();
  return cachedDeps;
}

/** The Debian package that provides `tool`, if the list names one. */
export function packageOfTool(tool: string, deps: DebianDeps = debianDeps()): string | undefined {
  for (const p of [...deps.packages, ...deps.unpacked]) if (p.tools.includes(tool)) return p.name;
  return Object.hasOwn(deps.elsewhere, tool) ? deps.elsewhere[tool] : undefined;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Where `tool` is on `pathEnv` (PATH unless told), or undefined. Only absolute
 * PATH entries count: an empty or relative one would make the answer depend on
 * the current directory. A name with a slash is checked as it is.
 */
export function findTool(tool: string, pathEnv: string = process.env.PATH ?? ''): string | undefined {
  if (tool.includes('/')) return isExecutableFile(tool) ? tool : undefined;
  for (const dir of pathEnv.split(':')) {
    if (!isAbsolute(dir)) continue;
    const p = join(dir, tool);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

/** Programs found, per name: each is looked up once per process (PATH does not change under a running meshctl). */
const found = new Map<string, string>();

/**
 * The absolute path of `tool`, or a ToolMissingError naming the Debian package
 * to install. Call it before running `tool`; it spawns nothing and remembers
 * what it found. `tool` may be a path (a configured binary): `program` then
 * says which program it is, for the package in the message.
 */
export function requireTool(tool: string, program: string = basename(tool)): string {
  const hit = found.get(tool);
  if (hit !== undefined) return hit;
  const p = findTool(tool);
  if (p === undefined) {
    let pkg: string | undefined;
    try {
      pkg = packageOfTool(program);
    } catch {
      // an unreadable list still gives the one-line message, without the package
    }
    throw new ToolMissingError(tool, pkg);
  }
  found.set(tool, p);
  return p;
}

/** Whether a package looks installed: all of its programs on PATH, or one of its files present; undecidable (neither) counts as installed. */
export function packageInstalled(p: DebianPackage, pathEnv: string = process.env.PATH ?? ''): boolean {
  if (p.tools.length > 0) return p.tools.every((t) => findTool(t, pathEnv) !== undefined);
  if (p.files.length > 0) {
    return p.files.some((f) => {
      try {
        statSync(f);
        return true;
      } catch {
        return false;
      }
    });
  }
  return true;
}

/** The packages of the list that a use needs: `lab` with its node kinds (a "lab:upnp" package only with an upnp node), or `tests`. */
export function packagesFor(use: 'lab' | 'tests', kinds: readonly string[] = [], deps: DebianDeps = debianDeps()): DebianPackage[] {
  return deps.packages.filter((p) => p.for.some((u) => u === use || (use === 'lab' && u.startsWith('lab:') && kinds.includes(u.slice(4)))));
}

/** The packages that provide these programs (each once, in the order first needed); unknown programs are left out. */
export function packagesOfTools(tools: readonly string[], deps: DebianDeps = debianDeps()): string[] {
  const out: string[] = [];
  for (const t of tools) {
    const p = packageOfTool(t, deps);
    if (p !== undefined && !out.includes(p)) out.push(p);
  }
  return out;
}

/** The argv that installs `pkgs` (no shell): without recommends, which for wireguard-tools would pull in a kernel image. */
export function aptInstallArgv(pkgs: readonly string[]): string[] {
  for (const p of pkgs) if (!PACKAGE_NAME.test(p)) throw new DebianDepsError(`"${p.slice(0, 80)}" is not a Debian package name`);
  return ['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs];
}

/** The command to show a user for `pkgs`, as they would type it. */
export function aptInstallCommand(pkgs: readonly string[]): string {
  return `sudo apt-get install --no-install-recommends ${pkgs.join(' ')}`;
}
