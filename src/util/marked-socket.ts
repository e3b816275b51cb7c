// Sockets that carry meshctl's firewall mark (SO_MARK), so policy routing sends
// meshctl's own traffic (control, relays, STUN, port mapping, the WireGuard and
// disco socket) out of the uplink and never into its own tunnel: rule 5210
// `fwmark 0x80000/0xff0000 lookup main` sits before rule 5270 `lookup 52`.
//
// Node's TCP and TLS sockets have no hook between socket() and connect(), and
// SO_MARK must be set before the first packet leaves. So the descriptor is made
// here through koffi (socket(2) non-blocking and close-on-exec, then
// setsockopt(SO_MARK)), handed to `new net.Socket({ fd })`, and that socket's
// own `connect()` connects it: libuv's uv_tcp_connect reuses a descriptor the
// handle already holds. TLS wraps the connecting socket (`tls.connect({ socket })`).
// UDP sockets (dgram) are marked on their descriptor after bind, before the first send.
import type dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import type { ClientRequestArgs } from 'node:http';
import { isIP, Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { koffi } from './koffi.js';

/** The mark on every socket meshctl opens (Tailscale's value, so the rules read the same). */
export const MESH_FWMARK = 0x80000;
/** The bits of the mark meshctl owns: other software's marks outside them are left alone. */
export const MESH_FWMARK_MASK = 0xff0000;

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_MARK = 36; // linux/asm-generic/socket.h

interface Libc {
  socket: (domain: number, type: number, proto: number) => number;
  setsockopt: (fd: number, level: number, name: number, val: Buffer, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, val: Buffer, len: number[]) => number;
  close: (fd: number) => number;
}
let libc: Libc | null = null;
function c(): Libc {
  if (libc) return libc;
  const l = koffi.load('libc.so.6');
  libc = {
    socket: l.func('int socket(int, int, int)') as Libc['socket'],
    setsockopt: l.func('int setsockopt(int, int, int, void *, uint32)') as Libc['setsockopt'],
    getsockopt: l.func('int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32 *)') as Libc['getsockopt'],
    close: l.func('int close(int)') as Libc['close'],
  };
  return libc;
}

/** How many sockets could not be marked (no CAP_NET_ADMIN): they still work, but follow the main routing rules. */
export const markStats = { unmarked: 0 };

/** Sets SO_MARK on a descriptor; false when the kernel refused (it needs CAP_NET_ADMIN). */
export function setFdMark(fd: number, mark = MESH_FWMARK): boolean {
  const v = Buffer.alloc(4);
  v.writeUInt32LE(mark >>> 0);
  const ok = fd >= 0 && c().setsockopt(fd, SOL_SOCKET, SO_MARK, v, 4) === 0;
  if (!ok) markStats.unmarked++;
  return ok;
}

/** The SO_MARK a descriptor carries (for tests and status). */
export function fdMark(fd: number): number | null {
  const v = Buffer.alloc(4);
  return c().getsockopt(fd, SOL_SOCKET, SO_MARK, v, [4]) === 0 ? v.readUInt32LE(0) : null;
}

/** A socket's descriptor: Node keeps it on the handle (TCP, TLS's underlying socket, UDP after bind). */
export function socketFd(s: Socket | dgram.Socket): number {
  const direct = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof direct === 'number') return direct;
  const sym = Object.getOwnPropertySymbols(s).find((x) => x.description === 'state symbol');
  const h = sym ? (s as unknown as Record<symbol, { handle?: { fd?: number } }>)[sym]?.handle : undefined;
  return h?.fd ?? -1;
}

/** Marks a bound UDP socket; call it in bind's callback, before the first send. */
export function markDgram(s: dgram.Socket, mark = MESH_FWMARK): boolean {
  return setFdMark(socketFd(s), mark);
}

/** A new non-blocking TCP socket of the family, marked (best effort: see markStats). */
function markedTcpFd(family: 4 | 6, mark: number): number {
  const fd = c().socket(family === 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Object.assign(new Error(`socket(): ${koffi.errno()}`), { code: 'EMFILE' });
  setFdMark(fd, mark);
  return fd;
}

export interface MarkedConnectOptions {
  host: string;
  port: number;
  mark?: number;
}

/**
 * A TCP socket to host:port whose every packet carries the mark; it resolves once the
 * connect has started (events as for `net.connect`). A name is looked up first, so the
 * socket is made in the family of the address it connects to; the first address is used.
 */
export async function connectMarked(o: MarkedConnectOptions): Promise<Socket> {
  const host = o.host.replace(/^\[|\]$/g, '');
  const family = isIP(host);
  const address = family ? host : (await lookup(host)).address;
  const fam = isIP(address) === 6 ? 6 : 4;
  const fd = markedTcpFd(fam, o.mark ?? MESH_FWMARK);
  let s: Socket;
  try {
    s = new Socket({ fd, readable: true, writable: true });
  } catch (err) {
    c().close(fd);
    throw err;
  }
  s.connect({ port: o.port, host: address });
  return s;
}

/** TLS over a marked TCP socket; `servername` defaults to the host when it is a name. */
export async function connectMarkedTls(o: MarkedConnectOptions & Omit<ConnectionOptions, 'host' | 'port' | 'socket'>): Promise<TLSSocket> {
  const { host, port, mark, ...tls } = o;
  const raw = await connectMarked({ host, port, mark });
  const bare = host.replace(/^\[|\]$/g, '');
  return tlsConnect({ host: bare, servername: isIP(bare) ? undefined : bare, ...tls, socket: raw });
}

type CreateConnection = NonNullable<ClientRequestArgs['createConnection']>;

/**
 * `createConnection` for http.request / https.request: every connection is marked. With
 * `tls` set the socket is wrapped in TLS with those options (the request's own TLS options
 * are not applied when createConnection is given).
 */
export function markedConnection(host: string, port: number, tls?: Omit<ConnectionOptions, 'host' | 'port' | 'socket'>): CreateConnection {
  return (_opts, cb) => {
    (tls ? connectMarkedTls({ host, port, ...tls }) : connectMarked({ host, port })).then(
      (s) => cb(null, s),
      (err: Error) => cb(err, undefined as never),
    );
    return undefined;
  };
}
