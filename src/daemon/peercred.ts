// Who is on the other end of a local API connection: SO_PEERCRED, which Node
// does not expose, read through koffi. The kernel fills it in at connect time,
// so a client cannot lie about its uid.
import type { Socket } from 'node:net';
import { koffi } from '../util/koffi.js';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17; // asm-generic/socket.h
const UCRED_SIZE = 12; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }

type GetSockOpt = (fd: number, level: number, name: number, val: Buffer, len: Buffer) => number;
let getsockopt: GetSockOpt | null = null;

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/** null when the credentials cannot be read (then the caller must refuse writes). */
export function peerCred(sock: Socket): PeerCred | null {
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
  if (fd < 0) return null;
  getsockopt ??= koffi.load('libc.so.6').func('int getsockopt(int, int, int, void *, void *)') as GetSockOpt;
  const buf = Buffer.alloc(UCRED_SIZE);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(UCRED_SIZE);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, buf, len) !== 0) return null;
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}
