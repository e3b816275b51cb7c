// Strings from the network on their way to a terminal or a log: a peer's
// hostname or OS string must not carry escape sequences (one that clears the
// screen, retitles the window or moves the cursor) into `meshctl status`.

// C0 and C1 controls, DEL, and the Unicode bidi/format characters that reorder text on screen
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** `s` with every control character replaced by U+FFFD and cut to `max` characters. */
export function terminalSafe(s: unknown, max = 256): string {
  const text = typeof s === 'string' ? s : String(s ?? '');
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(UNSAFE, '\ufffd');
}

/** True when `s` is a string of 1..max characters with no control characters. */
export function isPrintable(s: unknown, max: number): s is string {
  if (typeof s !== 'string' || s.length === 0 || s.length > max) return false;
  UNSAFE.lastIndex = 0;
  return !UNSAFE.test(s);
}
