// Reading and replacing /etc/resolv.conf. The usual way is a temporary file
// beside it, fsync, rename: readers see the old or the new file, never half.
// When resolv.conf is a bind mount (containers; `ip netns exec` mounts
// /etc/netns/NAME/resolv.conf over it) rename() fails with EBUSY or EXDEV;
// then the file is rewritten in place: truncate, write, fsync.
import type * as Fs from 'node:fs';
import { dirname } from 'node:path';
import { cjsRequire } from '../util/cjs.js';

const fs = cjsRequire('node:fs') as typeof Fs;

/** resolv.conf is a few hundred bytes; a larger file is not one we should copy into the state dir and rewrite. */
export const MAX_RESOLV_CONF_BYTES = 64 * 1024;
/** What direct mode gives the file it writes: glibc in every process, whatever its user, must read it. */
export const RESOLV_CONF_MODE = 0o644;

export interface FileState {
  kind: 'file' | 'symlink';
  /** the link's own text (symlinks only) */
  target?: string;
  /** permission bits, owner and content of the file (of the link's target for a symlink) */
  mode: number;
  uid: number;
  gid: number;
  bytes: Buffer;
}

/** The file (following a symlink for the content), refusing anything but a regular file of at most MAX_RESOLV_CONF_BYTES. */
export function readHostFile(path: string, maxBytes = MAX_RESOLV_CONF_BYTES): FileState {
  let link: Fs.Stats;
  try {
    link = fs.lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw Object.assign(new Error(`${path} does not exist: meshctl only manages an existing file (create one, even empty, or leave DNS off)`), {
      code: 'ENOENT',
    });
  }
  const target = link.isSymbolicLink() ? fs.readlinkSync(path) : undefined;
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is not a regular file: leave it to its owner or replace it with one`);
    if (st.size > maxBytes) throw new Error(`${path} is ${st.size} bytes, over ${maxBytes}: not a resolv.conf meshctl will manage`);
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (let r: number; n < buf.length && (r = fs.readSync(fd, buf, n, buf.length - n, n)) > 0; ) n += r;
    if (n > maxBytes) throw new Error(`${path} grew over ${maxBytes} bytes while read: not a resolv.conf meshctl will manage`);
    return { kind: target === undefined ? 'file' : 'symlink', target, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, bytes: buf.subarray(0, n) };
  } finally {
    fs.closeSync(fd);
  }
}

function isReplaceRefused(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'EBUSY' || code === 'EXDEV';
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
}

function setOwner(fd: number, uid: number | undefined, gid: number | undefined): void {
  if (uid === undefined || gid === undefined) return;
  try {
    fs.fchownSync(fd, uid, gid);
  } catch {
    /* not root: the file keeps our owner, which is the one who could write it anyway */
  }
}

function fsyncDir(dir: string): void {
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

export interface WriteOptions {
  mode: number;
  uid?: number;
  gid?: number;
}

/**
 * Puts `bytes` at `path` (replacing a symlink there by a regular file):
 * tmp + fsync + rename, or in place when rename is refused because `path` is
 * a mount point. Returns how it was written.
 */
export function replaceFile(path: string, bytes: Buffer, o: WriteOptions): 'rename' | 'in-place' {
  const tmp = `${path}.meshctl-tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true }); // left by an earlier process that had our pid and crashed mid-write
  let fd: number;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, o.mode);
  } catch (err) {
    // a read-only directory with only the file itself writable (systemd's ProtectSystem=strict and
    // ReadWritePaths=/etc/resolv.conf): the file's content is all that can change
    if ((err as NodeJS.ErrnoException).code !== 'EROFS') throw err;
    writeInPlace(path, bytes, o);
    return 'in-place';
  }
  try {
    fillAndClose(fd, bytes, o);
    fs.renameSync(tmp, path);
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* already gone (renamed, or never made) */
    }
    if (!isReplaceRefused(err)) throw err;
    writeInPlace(path, bytes, o);
    return 'in-place';
  }
  fsyncDir(dirname(path));
  return 'rename';
}

/** Truncate, write, fsync the file `path` resolves to: the only way to change a bind-mounted file's content. */
export function writeInPlace(path: string, bytes: Buffer, o: WriteOptions): void {
  fillAndClose(fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_TRUNC), bytes, o);
}

/** Writes all of `bytes`, sets mode and owner, fsyncs and closes `fd` (closed even when a step throws). */
function fillAndClose(fd: number, bytes: Buffer, o: WriteOptions): void {
  try {
    writeAll(fd, bytes);
    fs.fchmodSync(fd, o.mode);
    setOwner(fd, o.uid, o.gid);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Puts a symlink with exactly this text at `path`, atomically (symlink at a temporary name, rename over). */
export function replaceWithSymlink(path: string, target: string): void {
  const tmp = `${path}.meshctl-tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(target, tmp);
  try {
    fs.renameSync(tmp, path);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
}

/** Whether `path` (already resolved, no symlinks) is a mount point in this mount namespace: a bind-mounted resolv.conf is. */
export function isMountPoint(path: string, mountinfo = '/proc/self/mountinfo'): boolean {
  let text: string;
  try {
    text = fs.readFileSync(mountinfo, 'utf8');
  } catch {
    return false;
  }
  // field 5 is the mount point, with space, tab, newline and backslash escaped as \ooo
  const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return text.split('\n').some((line) => decode(line.split(' ')[4] ?? '') === path);
}

export function realPath(path: string): string {
  return fs.realpathSync(path);
}

export function lstatKind(path: string): 'file' | 'symlink' | 'other' | 'absent' {
  try {
    const st = fs.lstatSync(path);
    return st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
}
