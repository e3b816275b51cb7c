// Pointing the host's resolver at the mesh resolver, and putting it back.
// The mode comes from /etc/resolv.conf itself: a `nameserver 127.0.0.53`
// stub means systemd-resolved (configure the mesh link through resolvectl);
// anything else is "direct" (rewrite the file). Before touching anything, the
// original is saved in the node's state dir (never beside resolv.conf: every
// namespaced node shares the host's /etc) with a marker saying what was done,
// so restore() on exit and recover() on the next start after a crash put the
// host back byte for byte.
import type * as Crypto from 'node:crypto';
import type * as Fs from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import { cjsRequire } from '../util/cjs.js';
import type { IpEndpoint } from '../util/netaddr.js';
import { isPrintable } from '../util/text.js';
import {
  type FileState,
  isMountPoint,
  lstatKind,
  RESOLV_CONF_MODE,
  readHostFile,
  realPath,
  replaceFile,
  replaceWithSymlink,
  writeInPlace,
} from './host-file.js';
import { type Marker, MAX_MARKER_BYTES, parseMarker } from './marker.js';
import { checkPlan, type OsDnsPlan } from './plan.js';
import { detectMode, MANAGED_HEADER, type Mode, RESOLVED_STUB, renderResolvConf, upstreamsOf } from './resolv-conf.js';
import { RESOLVECTL_TIMEOUT_MS, resolvedApplyCalls, resolvedRevertCall, runResolvectl } from './resolvectl.js';

const fs = cjsRequire('node:fs') as typeof Fs;
const crypto = cjsRequire('node:crypto') as typeof Crypto;

export type { OsDnsPlan } from './plan.js';

/** The marker and backup file names inside the state dir. */
export const MARKER_FILE = 'osdns.json';
export const BACKUP_FILE = 'osdns-resolv.conf.backup';
/**
 * How long upstreams() trusts its last read of resolv.conf while nothing is applied: the resolver asks on every
 * forwarded query, and a DHCP client's rewrite should be seen within seconds.
 */
export const UPSTREAMS_CACHE_MS = 2_000;

export interface OsDnsOptions {
  stateDir: string;
  /** default /etc/resolv.conf */
  resolvConfPath?: string;
  /** default `resolvectl` on PATH */
  resolvectl?: string;
  resolvectlTimeoutMs?: number;
  /** where mount points are listed (default /proc/self/mountinfo) */
  mountinfoPath?: string;
}

export interface RecoverResult {
  /** none: nothing was left applied; restored: put back; kept-theirs: the file was rewritten by someone else and left alone; failed: see detail */
  action: 'none' | 'restored' | 'kept-theirs' | 'failed';
  mode?: Mode;
  detail: string;
}

export interface OsDnsStatus {
  mode: Mode | 'off';
  /** why this mode (what resolv.conf said), or why nothing is applied */
  why: string;
  /** what resolv.conf calls for right now (the mode the next apply would pick), or why it cannot be read */
  detected: string;
  resolvConfPath: string;
  /** direct: where the original is kept while applied */
  backupPath: string | null;
  /** direct: how the file was written (rename, in place on a bind mount, through a symlink to a mount point) */
  how: string | null;
  /** direct: the resolv.conf text meshctl wrote */
  written: string | null;
  /** resolved: the resolvectl argv lists that were run */
  calls: string[][];
  upstreams: string[];
  /** what the last restore or recover did */
  last: string | null;
}

type Active = { mode: 'direct'; marker: Marker; original: Buffer; text: string; how: string } | { mode: 'resolved'; marker: Marker; plan: OsDnsPlan };

const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');
const planKey = (p: OsDnsPlan) => JSON.stringify([p.ifname, p.servers, p.searchDomains, p.routingDomains]);

export class OsDns {
  private readonly path: string;
  private readonly markerPath: string;
  private readonly backupPath: string;
  private readonly resolvectl: string;
  private readonly resolvectlTimeoutMs: number;
  private readonly mountinfoPath: string | undefined;
  private active: Active | null = null;
  private lastPlanKey = '';
  private why = 'nothing applied yet';
  private last: string | null = null;
  private own: string[] = [];
  private upstreamCache: { at: number; list: IpEndpoint[] } | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: OsDnsOptions) {
    this.path = opts.resolvConfPath ?? '/etc/resolv.conf';
    this.markerPath = join(opts.stateDir, MARKER_FILE);
    this.backupPath = join(opts.stateDir, BACKUP_FILE);
    this.resolvectl = opts.resolvectl ?? 'resolvectl';
    this.resolvectlTimeoutMs = opts.resolvectlTimeoutMs ?? RESOLVECTL_TIMEOUT_MS;
    this.mountinfoPath = opts.mountinfoPath;
  }

  /** At daemon start: if a previous run left the resolver configured (crash, kill -9), put it back now. */
  recover(): Promise<RecoverResult> {
    return this.locked(() => this.undoFromDisk());
  }

  /** Points the host's resolver at plan.servers. Idempotent; the first call saves the original. */
  apply(plan: OsDnsPlan): Promise<void> {
    return this.locked(async () => {
      const p = checkPlan(plan);
      if (!this.active && fs.existsSync(this.markerPath)) await this.undoFromDisk();
      if (this.active?.mode === 'resolved') return this.applyResolved(p);
      if (this.active?.mode === 'direct') return this.applyDirect(p, readHostFile(this.path));
      const now = readHostFile(this.path);
      const d = detectMode(now.bytes.toString('utf8'), this.path);
      this.why = d.why;
      if (d.mode === 'resolved') return this.applyResolved(p);
      return this.applyDirect(p, now);
    });
  }

  /** Puts the host's resolver back as it was. No-op when nothing is applied. Throws (and keeps the backup) when it cannot. */
  restore(): Promise<void> {
    return this.locked(async () => {
      const r = await this.undoFromDisk();
      if (r.action === 'failed') throw new Error(r.detail);
    });
  }

  /** The resolvers the host used before meshctl (port 53), never our own: forwarding to ourselves would loop. */
  upstreams(): IpEndpoint[] {
    // asked on every forwarded query: while applied the answer only changes with apply/restore (which drop the cache)
    const a = this.active;
    const now = performance.now(); // a cache age: monotonic, so a clock stepped back does not keep a stale list
    if (this.upstreamCache && (a || now - this.upstreamCache.at < UPSTREAMS_CACHE_MS)) return this.upstreamCache.list;
    let list: IpEndpoint[] = [];
    if (a?.mode === 'resolved') list = upstreamsOf(`nameserver ${RESOLVED_STUB}\n`, []);
    else if (a?.mode === 'direct') list = upstreamsOf(a.original.toString('utf8'), this.own);
    else {
      try {
        const text = readHostFile(this.path).bytes.toString('utf8');
        // a file we wrote (a crash that recover() has not undone yet) names only our own resolvers: forwarding there loops
        if (!text.startsWith(MANAGED_HEADER)) list = upstreamsOf(text, this.own);
      } catch {
        /* no readable resolv.conf: nothing to forward to (the resolver answers SERVFAIL) */
      }
    }
    this.upstreamCache = { at: now, list };
    return list;
  }

  status(): OsDnsStatus {
    const a = this.active;
    return {
      mode: a ? a.mode : 'off',
      why: this.why,
      detected: this.detectNow(),
      resolvConfPath: this.path,
      backupPath: a?.mode === 'direct' ? this.backupPath : null,
      how: a?.mode === 'direct' ? a.how : null,
      written: a?.mode === 'direct' ? a.text : null,
      calls: a?.mode === 'resolved' ? resolvedApplyCalls(a.plan) : [],
      upstreams: this.upstreams().map((e) => e.text),
      last: this.last,
    };
  }

  private detectNow(): string {
    try {
      const d = detectMode(readHostFile(this.path).bytes.toString('utf8'), this.path);
      return `${d.mode}: ${d.why}`;
    } catch (err) {
      return `unknown: ${(err as Error).message}`;
    }
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const step = async () => {
      try {
        return await fn();
      } finally {
        this.upstreamCache = null;
      }
    };
    const run = this.chain.then(step, step);
    this.chain = run.catch(() => {});
    return run;
  }

  private writeMarker(m: Marker): void {
    writeFileAtomic(this.markerPath, `${JSON.stringify(m)}\n`, 0o600);
  }

  private dropState(): void {
    fs.rmSync(this.markerPath, { force: true });
    fs.rmSync(this.backupPath, { force: true });
  }

  private async applyResolved(p: OsDnsPlan): Promise<void> {
    if (this.active?.mode === 'resolved' && this.lastPlanKey === planKey(p)) return;
    if (this.active?.mode === 'resolved' && this.active.plan.ifname !== p.ifname) await this.undoResolved(this.active.marker.ifname!);
    // the marker goes first: a crash between two calls still leaves a record to revert
    const marker: Marker = { v: 1, mode: 'resolved', path: this.path, servers: p.servers, ifname: p.ifname };
    this.writeMarker(marker);
    this.own = p.servers;
    try {
      for (const args of resolvedApplyCalls(p)) await runResolvectl(this.resolvectl, args, this.resolvectlTimeoutMs);
    } catch (err) {
      await runResolvectl(this.resolvectl, resolvedRevertCall(p.ifname), this.resolvectlTimeoutMs).catch(() => {});
      this.dropState();
      this.active = null;
      this.lastPlanKey = '';
      throw err;
    }
    this.active = { mode: 'resolved', marker, plan: p };
    this.lastPlanKey = planKey(p);
  }

  private backupHint(): string {
    return isPrintable(this.backupPath, 1024) ? this.backupPath : "meshctl's state dir";
  }

  private applyDirect(p: OsDnsPlan, now: FileState): void {
    const a = this.active?.mode === 'direct' ? this.active : null;
    this.own = [...new Set([...this.own, ...p.servers])];
    if (a) {
      const ours = this.isOurs(a.marker);
      if (ours) {
        const text = renderResolvConf(a.original.toString('utf8'), p.servers, p.searchDomains, this.backupHint());
        if (text === a.text) return;
        const current = a.marker.written![a.marker.written!.length - 1]!;
        const marker: Marker = { ...a.marker, servers: this.own, written: [current, sha256(text)] };
        this.writeMarker(marker);
        this.writeOurs(marker, text);
        this.active = { ...a, marker, text };
        return;
      }
      // a DHCP client or an admin rewrote the file while we managed it: theirs is the new original
      this.last = `${this.path} was rewritten by something else while meshctl managed it; took that file as the new original`;
      this.active = null;
    }
    let strategy: 'replace' | 'through-link' = 'replace';
    let managed = this.path;
    if (now.kind === 'symlink') {
      const real = realPath(this.path);
      // a link in a shared /etc whose target is bind-mounted for us (ip netns exec): write the mount, never the shared link
      if (isMountPoint(real, this.mountinfoPath)) (strategy = 'through-link'), (managed = real);
    }
    const text = renderResolvConf(now.bytes.toString('utf8'), p.servers, p.searchDomains, this.backupHint());
    const original = {
      kind: now.kind,
      mode: now.mode,
      uid: now.uid,
      gid: now.gid,
      sha256: sha256(now.bytes),
      ...(now.target !== undefined ? { target: now.target } : {}),
    };
    const marker: Marker = { v: 1, mode: 'direct', path: this.path, servers: this.own, original, strategy, managed, written: [sha256(text)] };
    // backup, then marker, then the file: a crash at any point leaves enough to undo it
    writeFileAtomic(this.backupPath, now.bytes, 0o600);
    this.writeMarker(marker);
    let how: string;
    try {
      how = this.writeOurs(marker, text);
    } catch (err) {
      try {
        this.putBack(marker, now.bytes);
        this.dropState();
      } catch {
        /* the marker stays: recover() tries again at the next start */
      }
      throw err;
    }
    this.active = { mode: 'direct', marker, original: now.bytes, text, how };
    this.lastPlanKey = planKey(p);
  }

  private writeOurs(m: Marker, text: string): string {
    const bytes = Buffer.from(text);
    if (m.strategy === 'through-link') {
      writeInPlace(m.managed!, bytes, { mode: RESOLV_CONF_MODE });
      return `in place at ${m.managed}, the bind-mounted target of the symlink ${this.path}`;
    }
    const how = replaceFile(this.path, bytes, { mode: RESOLV_CONF_MODE });
    const link = m.original!.kind === 'symlink' ? ` (replacing the symlink to ${m.original!.target}, put back on restore)` : '';
    return how === 'rename' ? `replaced by rename${link}` : `written in place (rename refused: ${this.path} is a mount point)${link}`;
  }

  /** Whether the file at the managed place still holds what we wrote (absent counts as not ours). */
  private isOurs(m: Marker): boolean {
    try {
      const kind = lstatKind(this.path);
      if (m.strategy === 'through-link' ? kind !== 'symlink' || realPath(this.path) !== m.managed : kind !== 'file') return false;
      return m.written!.includes(sha256(readHostFile(m.managed!).bytes));
    } catch {
      return false;
    }
  }

  private putBack(m: Marker, bytes: Buffer): void {
    const o = m.original!;
    const meta = { mode: o.mode, uid: o.uid, gid: o.gid };
    if (m.strategy === 'through-link') {
      if (realPath(this.path) !== m.managed) throw new Error(`${this.path} no longer leads to ${m.managed}`);
      writeInPlace(m.managed!, bytes, meta);
    } else if (o.kind === 'symlink') replaceWithSymlink(this.path, o.target!);
    else replaceFile(this.path, bytes, meta);
    // read it back: "restored" means the bytes (or the link) are what they were
    const after = readHostFile(this.path);
    const same = o.kind === 'symlink' && m.strategy === 'replace' ? after.kind === 'symlink' && after.target === o.target : after.bytes.equals(bytes);
    if (!same) throw new Error(`${this.path} does not read back as the original after restoring it`);
  }

  private async undoResolved(ifname: string): Promise<void> {
    await runResolvectl(this.resolvectl, resolvedRevertCall(ifname), this.resolvectlTimeoutMs);
  }

  /** Reads the marker (if any) and undoes what it records; the in-memory state follows. */
  private async undoFromDisk(): Promise<RecoverResult> {
    const r = await this.undoMarker();
    if (r.action !== 'none' || this.last === null) this.last = r.detail;
    this.active = null;
    this.lastPlanKey = '';
    this.why = `nothing applied (${r.action === 'none' ? 'nothing to restore' : r.action})`;
    return r;
  }

  private async undoMarker(): Promise<RecoverResult> {
    let text: string;
    const mem = this.active;
    try {
      const st = fs.statSync(this.markerPath);
      if (st.size > MAX_MARKER_BYTES) throw Object.assign(new Error(`${st.size} bytes`), { code: 'EBIG' });
      text = fs.readFileSync(this.markerPath, 'utf8');
    } catch (err) {
      // the record was deleted under a running daemon: what it said is still in memory
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && mem) text = JSON.stringify(mem.marker);
      else if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // a backup without a marker: the crash came before resolv.conf was touched
        fs.rmSync(this.backupPath, { force: true });
        return { action: 'none', detail: 'nothing was left applied' };
      } else return this.setAside(`cannot read it (${(err as Error).message})`);
    }
    let m: Marker;
    try {
      m = parseMarker(text, this.path);
    } catch (err) {
      return this.setAside((err as Error).message);
    }
    this.own = [...new Set([...this.own, ...m.servers])];
    if (m.mode === 'resolved') {
      try {
        await this.undoResolved(m.ifname!);
        this.dropState();
        return { action: 'restored', mode: 'resolved', detail: `reverted the DNS settings of ${m.ifname} (resolvectl revert)` };
      } catch (err) {
        // after a crash the link is gone, and systemd-resolved forgets a link's settings with it
        this.dropState();
        return {
          action: 'restored',
          mode: 'resolved',
          detail: `resolvectl revert ${m.ifname} failed (${(err as Error).message}); a removed link's settings go with it`,
        };
      }
    }
    // the backup is only needed (and must match its record) when our file is to be replaced by it
    let backup: Buffer | null = null;
    let backupProblem = '';
    try {
      backup = readHostFile(this.backupPath).bytes;
    } catch (err) {
      if (mem?.mode === 'direct' && (err as NodeJS.ErrnoException).code === 'ENOENT') backup = mem.original;
      else backupProblem = `cannot read the backup ${this.backupPath} (${(err as Error).message})`;
    }
    if (backup && sha256(backup) !== m.original!.sha256) (backup = null), (backupProblem = `the backup ${this.backupPath} does not match its record`);
    if (!this.isOurs(m)) {
      let current: Buffer | null = null;
      try {
        current = readHostFile(this.path).bytes;
      } catch {
        current = null;
      }
      if (current !== null) {
        this.dropState();
        const sameAsOriginal = backup !== null && current.equals(backup) && (m.original!.kind === 'file' || lstatKind(this.path) === 'symlink');
        if (sameAsOriginal) return { action: 'restored', mode: 'direct', detail: `${this.path} already holds the original (it was never rewritten)` };
        return {
          action: 'kept-theirs',
          mode: 'direct',
          detail: `${this.path} was rewritten by something else while meshctl managed it; kept that file and dropped meshctl's backup`,
        };
      }
      // gone altogether: nothing of anyone's to keep, so the original goes back
    }
    if (backup === null) return { action: 'failed', mode: 'direct', detail: `${backupProblem}: ${this.path} left as it is; fix it by hand` };
    try {
      this.putBack(m, backup);
    } catch (err) {
      return { action: 'failed', mode: 'direct', detail: `restoring ${this.path} failed (${(err as Error).message}); the backup stays at ${this.backupPath}` };
    }
    this.dropState();
    return { action: 'restored', mode: 'direct', detail: `put back the original ${this.path} byte for byte` };
  }

  private setAside(why: string): RecoverResult {
    const bad = `${this.markerPath}.invalid`;
    try {
      fs.renameSync(this.markerPath, bad);
      if (fs.existsSync(this.backupPath)) fs.renameSync(this.backupPath, `${this.backupPath}.invalid`);
    } catch {
      /* best effort: the detail still names the file */
    }
    return { action: 'failed', detail: `the record ${this.markerPath} is unusable (${why}); moved it to ${bad}: check ${this.path} by hand` };
  }
}
