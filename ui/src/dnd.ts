// Drag and drop from the file manager: the shell reports positions in physical pixels
// relative to the webview; rows are hit-tested in CSS pixels.

export interface Point {
  x: number;
  y: number;
}

export interface Rect {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** Physical (device) pixels to CSS pixels. */
export function toCssPoint(p: Point, devicePixelRatio: number): Point {
  const r = devicePixelRatio > 0 && Number.isFinite(devicePixelRatio) ? devicePixelRatio : 1;
  return { x: p.x / r, y: p.y / r };
}

/** Left and top edges inside, right and bottom edges outside (rows never overlap). */
export function contains(r: Rect, p: Point): boolean {
  return p.x >= r.left && p.x < r.right && p.y >= r.top && p.y < r.bottom;
}

/**
 * The key of the row under `p`, or null. With `clip` (the scrolling list's own box),
 * a row scrolled out of sight does not count even where its box would be.
 */
export function hitTest<K>(rows: Iterable<{ key: K; rect: Rect }>, p: Point, clip?: Rect): K | null {
  if (clip && !contains(clip, p)) return null;
  for (const row of rows) if (contains(row.rect, p)) return row.key;
  return null;
}

/** The JID of the contact row (`[data-jid]`) under the CSS point `p` in `list`. */
export function contactAt(list: HTMLElement, p: Point): string | null {
  if (!list.isConnected || list.getClientRects().length === 0) return null; // not shown
  const rows = [...list.querySelectorAll<HTMLElement>('[data-jid]')].map((el) => ({
    key: el.dataset.jid!,
    rect: el.getBoundingClientRect(),
  }));
  return hitTest(rows, p, list.getBoundingClientRect());
}
