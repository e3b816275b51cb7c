// Who holds the SQLite file's lock. node-sqlite3-wasm locks a database by
// making the directory FILE.lock and unlocks it by removing it. SQLite's
// normal locking takes and drops that lock around every statement (a mkdir,
// a hot-journal check and an rmdir each time, which wait on the file
// system's journal): at thousands of nodes that was most of a join's time on
// the event loop. The store therefore runs in EXCLUSIVE locking mode: the
// lock is taken at open and kept until close. A process that dies holding it
// leaves the directory behind, so the holder writes its pid and start time
// into it; a later open removes a lock whose holder is gone, and names the
// process when it is still running.
import { readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from '../util/cjs.js';

/**
 * A lock directory with no owner file is one taken for a single statement
 * (a process that does not keep the lock: milliseconds) or one whose holder
 * is between taking it and writing its owner (microseconds). One older than
 * this was left by a process that died.
 */
export const UNOWNED_LOCK_STALE_MS = 5000;

/** The database is locked by a process that is still running. */
export class DatabaseInUseError extends Error {
  override readonly name = 'DatabaseInUseError';
}

const lockDir = (db: string): string => `${db}.lock`;
const ownerFile = (db: string): string => `${lockDir(db)}/owner`;

/**
 * The start time of process `pid` (clock ticks after boot, field 22 of /proc/PID/stat), or null when there is
 * no such process or it has exited and waits to be reaped (a zombie holds no lock).
 */
function startTime(pid: number): string | null {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' ? null : (f[19] ?? null);
  } catch {
    return null;
  }
}

/**
 * Before opening `db`: removes its lock when the process that held it is
 * gone; throws DatabaseInUseError, naming the holder, when it still runs.
 */
export function clearStaleLock(db: string, nowMs = Date.now()): void {
  let made: number;
  try {
    made = statSync(lockDir(db)).mtimeMs;
  } catch {
    return;
  }
  let owner: string | null = null;
  try {
    owner = readFileSync(ownerFile(db), 'utf8');
  } catch {
    // no owner written
  }
  const m = owner === null ? null : /^(\d{1,10}) (\d{1,20})\n?$/.exec(owner);
  if (m) {
    const pid = Number(m[1]);
    if (startTime(pid) === m[2]) {
      throw new DatabaseInUseError(`control database ${db} is in use by process ${pid} (another control server on this state dir?): stop it first`);
    }
  } else if (nowMs - made < UNOWNED_LOCK_STALE_MS) {
    throw new DatabaseInUseError(`control database ${db} is locked by another process (${lockDir(db)} exists): stop it first`);
  }
  rmSync(lockDir(db), { recursive: true, force: true });
}

/** Once the lock is taken: records this process as its holder. */
export function claimLock(db: string): void {
  writeFileSync(ownerFile(db), `${process.pid} ${startTime(process.pid) ?? 0}\n`, { mode: 0o600 });
}

/** Before closing: forgets the holder, so that closing can remove the (then empty) lock directory. */
export function releaseLock(db: string): void {
  try {
    unlinkSync(ownerFile(db));
  } catch {
    // not claimed (the open failed before)
  }
}
