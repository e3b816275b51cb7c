// The status JSON text from its parts, in pieces: the fields before "peers", each peer's own text (kept with its map
// view, so thousands of idle peers cost no serialising), the fields after. The pieces joined are the bytes
// JSON.stringify(status) writes (pretty: with an indent of 2); each piece is about `pieceChars` long.

/**
 * `head` and `tail`: the status fields before and after "peers", in order; `items`: each peer's JSON text (pretty:
 * as JSON.stringify(peer, null, 2) nested one level, which is how the caller keeps it).
 */
export function statusPieces(head: object, items: readonly string[], tail: object, pretty: boolean, pieceChars: number): string[] {
  const h = JSON.stringify(head, null, pretty ? 2 : undefined);
  const t = JSON.stringify(tail, null, pretty ? 2 : undefined);
  // the head without its closing brace (and, pretty, its line break), then a comma unless it had no field
  const before = Object.keys(head).length ? `${h.slice(0, pretty ? -2 : -1)},` : '{';
  const after = Object.keys(tail).length ? `,${t.slice(1)}` : pretty ? '\n}' : '}';
  const [open, sep, close] = pretty ? [`${before}\n  "peers": [`, ',\n    ', '\n  ]'] : [`${before}"peers":[`, ',', ']'];
  const pieces = [open];
  let group: string[] = [];
  let chars = 0;
  for (let i = 0; i < items.length; i++) {
    // the first item follows the bracket as the others follow a comma: pretty puts it on a new, indented line
    group.push(i === 0 ? (pretty ? '\n    ' : '') : sep, items[i]!);
    chars += items[i]!.length + sep.length;
    if (chars >= pieceChars) {
      pieces.push(group.join(''));
      group = [];
      chars = 0;
    }
  }
  if (group.length) pieces.push(group.join(''));
  pieces.push(items.length ? close : ']', after);
  return pieces;
}
