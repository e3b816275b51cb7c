// A minimal ustar writer: regular files only, each a name and its bytes, in
// the POSIX format every tar reads. Enough for an archive this program builds
// itself (the bug report); gzip it with node:zlib.

const BLOCK_BYTES = 512;
/** ustar's name field; longer names would need the prefix field or a pax header, which nothing here needs. */
export const MAX_TAR_NAME_BYTES = 100;
/** The size field holds 11 octal digits. */
const MAX_TAR_MEMBER_BYTES = 8 ** 11 - 1;

export interface TarMember {
  name: string;
  data: Uint8Array;
  /** permission bits, default 0o600 */
  mode?: number;
  /** modification time in ms since the epoch */
  mtimeMs: number;
}

function field(h: Buffer, offset: number, length: number, value: string): void {
  h.write(value, offset, length, 'ascii');
}

function octal(n: number, digits: number): string {
  return n.toString(8).padStart(digits, '0');
}

function header(m: TarMember): Buffer {
  const name = Buffer.from(m.name, 'utf8');
  if (name.length === 0 || name.length > MAX_TAR_NAME_BYTES) throw new Error(`tar: member name "${m.name}" must be 1 to ${MAX_TAR_NAME_BYTES} bytes`);
  if (m.data.length > MAX_TAR_MEMBER_BYTES) throw new Error(`tar: member ${m.name} is larger than ustar can hold`);
  const h = Buffer.alloc(BLOCK_BYTES);
  name.copy(h, 0);
  field(h, 100, 8, `${octal(m.mode ?? 0o600, 7)}\0`);
  field(h, 108, 8, `${octal(0, 7)}\0`);
  field(h, 116, 8, `${octal(0, 7)}\0`);
  field(h, 124, 12, `${octal(m.data.length, 11)}\0`);
  field(h, 136, 12, `${octal(Math.max(0, Math.floor(m.mtimeMs / 1000)), 11)}\0`);
  field(h, 148, 8, '        ');
  field(h, 156, 1, '0');
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, `${octal(sum, 6)}\0 `);
  return h;
}

/** The tar archive of `members`, in order, ending with the two zero blocks. */
export function tarArchive(members: readonly TarMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    parts.push(header(m), Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    const pad = (BLOCK_BYTES - (m.data.length % BLOCK_BYTES)) % BLOCK_BYTES;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK_BYTES));
  return Buffer.concat(parts);
}

/** Reads back what tarArchive writes (names and bytes of regular files): for checking an archive, not for untrusted input. */
export function tarMembers(tar: Uint8Array): { name: string; data: Buffer }[] {
  const b = Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength);
  const out: { name: string; data: Buffer }[] = [];
  let off = 0;
  while (off + BLOCK_BYTES <= b.length) {
    const h = b.subarray(off, off + BLOCK_BYTES);
    if (h.every((x) => x === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = Number.parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
    if (!Number.isSafeInteger(size) || off + BLOCK_BYTES + size > b.length) throw new Error(`tar: member ${name} is truncated`);
    out.push({ name, data: b.subarray(off + BLOCK_BYTES, off + BLOCK_BYTES + size) });
    off += BLOCK_BYTES + Math.ceil(size / BLOCK_BYTES) * BLOCK_BYTES;
  }
  return out;
}
