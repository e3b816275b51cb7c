// Hole punching's per-peer decisions (engine/paths/punch.ts), on plain numbers:
// who sends first after a failure, the quiet spell that outlasts conntrack's
// unreplied-UDP timeout, and a call-me-maybe that arrives during it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attemptStarted,
  CONNTRACK_UDP_UNREPLIED_MS,
  initiatesNext,
  newPunchState,
  onCallMeMaybe,
  OPENER_TTL,
  PUNCH_ATTEMPT_MS,
  PUNCH_BACKOFF_MS,
  punchBeat,
  punchSucceeded,
  quiet,
} from '../../src/engine/paths/punch.js';

const T = { attemptMs: PUNCH_ATTEMPT_MS, backoffMs: PUNCH_BACKOFF_MS, retryMs: 10_000 };

test('the limits: the quiet outlasts the unreplied-UDP timeout, openers stay within two hops', () => {
  assert.ok(PUNCH_BACKOFF_MS > CONNTRACK_UDP_UNREPLIED_MS);
  assert.ok(OPENER_TTL >= 2 && OPENER_TTL <= 3, 'one hop would expire inside our own NAT before it maps the flow');
  assert.ok(PUNCH_ATTEMPT_MS < T.retryMs);
});

test('both sides open the first attempt; after each failure exactly one of the two does, in turns', () => {
  const lower = newPunchState();
  const higher = newPunchState();
  assert.deepEqual([initiatesNext(lower, true), initiatesNext(higher, false)], [true, true]);
  const turns: string[] = [];
  for (let f = 1; f <= 4; f++) {
    lower.failures = higher.failures = f;
    const l = initiatesNext(lower, true);
    const h = initiatesNext(higher, false);
    assert.notEqual(l, h, `after ${f} failures exactly one initiates`);
    turns.push(l ? 'lower' : 'higher');
  }
  assert.deepEqual(turns, ['lower', 'higher', 'lower', 'higher']);
});

test('a failed attempt is followed by a quiet spell unless it was uncoordinated or the peer is older; a success ends it', () => {
  const s = newPunchState();
  assert.equal(punchBeat(s, 0, true, T), 'start');
  attemptStarted(s, 0, true, false);
  assert.equal(punchBeat(s, PUNCH_ATTEMPT_MS - 1, true, T), 'none', 'the attempt runs');
  assert.equal(punchBeat(s, PUNCH_ATTEMPT_MS, true, T), 'none');
  assert.equal(s.failures, 1);
  assert.equal(quiet(s, PUNCH_ATTEMPT_MS + 1), false, 'uncoordinated (full pings at once, as before): no quiet');
  assert.equal(punchBeat(s, 10_000, true, T), 'start', 'the next attempt retryMs after the last began');
  const old = newPunchState();
  onCallMeMaybe(old, 0, false);
  attemptStarted(old, 0, true);
  punchBeat(old, PUNCH_ATTEMPT_MS, true, T);
  assert.equal(quiet(old, PUNCH_ATTEMPT_MS + 1), false, 'an older peer (no flag) keeps probing anyway: no quiet');
  const unheard = newPunchState();
  attemptStarted(unheard, 0, true);
  punchBeat(unheard, PUNCH_ATTEMPT_MS, true, T);
  assert.equal(quiet(unheard, PUNCH_ATTEMPT_MS + 1), true, 'a peer not heard from yet is taken to back off: its call-me-maybe may have been dropped');

  // the peer said it opened (flag): it backs off as we do
  const q = newPunchState();
  assert.equal(onCallMeMaybe(q, 0, true), 'answer');
  attemptStarted(q, 0, false);
  q.fullSent = true;
  punchBeat(q, PUNCH_ATTEMPT_MS, true, T);
  const quietEnd = PUNCH_ATTEMPT_MS + PUNCH_BACKOFF_MS;
  assert.equal(quiet(q, quietEnd - 1), true);
  assert.equal(punchBeat(q, quietEnd - 1, true, T), 'none', 'no attempt while entries expire');
  assert.equal(punchBeat(q, quietEnd, true, T), 'start');
  punchSucceeded(q);
  assert.deepEqual([q.failures, quiet(q, quietEnd), q.attemptStartMs], [0, false, null]);
});

test('an attempt where we sent nothing (we waited for a call-me-maybe that never came) is no reason to be quiet', () => {
  const s = newPunchState();
  attemptStarted(s, 0, false);
  punchBeat(s, PUNCH_ATTEMPT_MS, true, T);
  assert.equal(s.failures, 1);
  assert.equal(quiet(s, PUNCH_ATTEMPT_MS + 1), false);
});

test('a flagged call-me-maybe during the quiet is kept for its end; an unflagged one (an older peer) ends the quiet', () => {
  const s = newPunchState();
  attemptStarted(s, 0, true);
  punchBeat(s, PUNCH_ATTEMPT_MS, false, T);
  const quietEnd = PUNCH_ATTEMPT_MS + PUNCH_BACKOFF_MS;
  assert.equal(onCallMeMaybe(s, 20_000, true), 'defer');
  assert.equal(s.peerAsked, true);
  // not wanted (idle, a path before): without the peer's ask no attempt would start, with it one does at the quiet's end
  assert.equal(punchBeat(s, quietEnd - 1, false, T), 'none');
  assert.equal(punchBeat(s, quietEnd, false, T), 'start');
  attemptStarted(s, quietEnd, true);
  assert.equal(s.peerAsked, false);

  const old = newPunchState();
  attemptStarted(old, 0, true);
  punchBeat(old, PUNCH_ATTEMPT_MS, true, T);
  assert.equal(onCallMeMaybe(old, 6000, false), 'answer');
  assert.equal(quiet(old, 6001), false);
});
