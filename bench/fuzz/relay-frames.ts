// The relay frame codec (src/relay/frames.ts): the byte stream after the
// HTTP upgrade, from any client. Inputs: sequences of frames of random types
// and sizes up to MAX_FRAME, encoded with frame() and cut into random chunks;
// their byte mutations; random bytes. Checked against a reference decoder
// written here: FrameReader yields the same frames, and throws FrameError
// (nothing else) exactly when the reference finds a length over MAX_FRAME;
// valid streams round-trip to the frames they were built from.
import { FrameError, FrameReader, frame, MAX_FRAME, type Frame } from '../../src/relay/frames.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { mutateBytes, randomBytes } from './mutate.js';
import type { Rng } from './rng.js';

function reference(stream: Buffer): { frames: Frame[]; tooLarge: boolean } {
  const frames: Frame[] = [];
  let off = 0;
  while (off + 5 <= stream.length) {
    const len = stream.readUInt32BE(off + 1);
    if (len > MAX_FRAME) return { frames, tooLarge: true };
    if (off + 5 + len > stream.length) break;
    frames.push({ type: stream[off]!, payload: stream.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return { frames, tooLarge: false };
}

function chunks(r: Rng, b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < b.length; ) {
    const n = r.chance(0.3) ? r.range(1, 8) : r.range(1, Math.max(1, b.length));
    out.push(b.subarray(off, off + n));
    off += n;
  }
  if (r.chance(0.1)) out.splice(r.int(out.length + 1), 0, Buffer.alloc(0));
  return out;
}

const target: FuzzTarget = {
  name: 'relay-frames',
  kind: 'pure',
  description: 'FrameReader: same frames as a reference decoder, FrameError only for oversized frames, round trip of frame()',
  run: (rng, iterations, onProgress) =>
    fuzzLoop(rng, iterations, onProgress, (r, ctx) => {
      const sent: Frame[] = Array.from({ length: r.range(0, 6) }, () => ({
        type: r.int(256),
        payload: r.bytes(r.chance(0.02) ? r.range(0, MAX_FRAME) : r.length(2000)),
      }));
      const valid = Buffer.concat(sent.map((f) => frame(f.type, f.payload)));
      const kind = r.int(4);
      const stream = kind <= 1 ? valid : kind === 2 ? mutateBytes(r, valid) : randomBytes(r, 300);
      const parts = chunks(r, stream);
      ctx.input = parts.length > 20 ? stream : parts;
      const reader = new FrameReader();
      const got: Frame[] = [];
      let error: unknown = null;
      try {
        for (const c of parts) got.push(...reader.push(c));
      } catch (e) {
        error = e;
      }
      const ref = reference(stream);
      check(error === null || error instanceof FrameError, () => `threw ${String(error)}`);
      check((error !== null) === ref.tooLarge, `FrameError ${error !== null}, reference says too large ${ref.tooLarge}`);
      if (!ref.tooLarge) {
        check(got.length === ref.frames.length, `${got.length} frames, the reference decodes ${ref.frames.length}`);
        got.forEach((f, i) => check(f.type === ref.frames[i]!.type && f.payload.equals(ref.frames[i]!.payload), `frame ${i} differs from the reference`));
      }
      if (kind <= 1) {
        check(got.length === sent.length, 'round trip: frame count');
        got.forEach((f, i) => check(f.type === sent[i]!.type && f.payload.equals(sent[i]!.payload), `round trip: frame ${i}`));
      }
      return error ? 'rejected' : 'accepted';
    }),
};
export default target;
