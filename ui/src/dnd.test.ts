import { describe, expect, it } from 'vitest';
import { contains, hitTest, toCssPoint, type Rect } from './dnd';

const rect = (left: number, top: number, width: number, height: number): Rect => ({ left, top, right: left + width, bottom: top + height });

// Three contact rows of 58 px in a list whose visible box is y 100..250.
const rows = [
  { key: 'bob@localhost', rect: rect(0, 100, 320, 58) },
  { key: 'carol@localhost', rect: rect(0, 158, 320, 58) },
  { key: 'dave@localhost', rect: rect(0, 216, 320, 58) }, // partly scrolled out (ends at 274)
];
const list = rect(0, 100, 320, 150);

describe('drop hit-testing', () => {
  it('converts physical pixels to CSS pixels', () => {
    expect(toCssPoint({ x: 300, y: 200 }, 2)).toEqual({ x: 150, y: 100 });
    expect(toCssPoint({ x: 150, y: 75 }, 1.5)).toEqual({ x: 100, y: 50 });
    expect(toCssPoint({ x: 10, y: 20 }, 1)).toEqual({ x: 10, y: 20 });
    expect(toCssPoint({ x: 10, y: 20 }, 0)).toEqual({ x: 10, y: 20 });
    expect(toCssPoint({ x: 10, y: 20 }, Number.NaN)).toEqual({ x: 10, y: 20 });
  });

  it('finds the row under the point', () => {
    expect(hitTest(rows, { x: 10, y: 120 }, list)).toBe('bob@localhost');
    expect(hitTest(rows, { x: 300, y: 200 }, list)).toBe('carol@localhost');
    expect(hitTest(rows, { x: 5, y: 230 }, list)).toBe('dave@localhost');
  });

  it('treats left/top edges as inside and right/bottom as outside', () => {
    expect(contains(rect(0, 0, 10, 10), { x: 0, y: 0 })).toBe(true);
    expect(contains(rect(0, 0, 10, 10), { x: 10, y: 5 })).toBe(false);
    expect(hitTest(rows, { x: 10, y: 158 }, list)).toBe('carol@localhost'); // boundary between rows
    expect(hitTest(rows, { x: 10, y: 157.9 }, list)).toBe('bob@localhost');
  });

  it('misses outside every row', () => {
    expect(hitTest(rows, { x: 500, y: 120 }, list)).toBeNull();
    expect(hitTest(rows, { x: 10, y: 50 })).toBeNull();
    expect(hitTest([], { x: 10, y: 120 })).toBeNull();
  });

  it('ignores the part of a row scrolled out of the list', () => {
    expect(hitTest(rows, { x: 10, y: 260 })).toBe('dave@localhost');
    expect(hitTest(rows, { x: 10, y: 260 }, list)).toBeNull();
  });

  it('works end to end from a HiDPI drop position', () => {
    const p = toCssPoint({ x: 40, y: 2 * 170 }, 2);
    expect(hitTest(rows, p, list)).toBe('carol@localhost');
  });
});
