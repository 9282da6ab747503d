// A tiny DOM helper: `h()` builds elements, `setText`/`setAttr` write only on change
// (so re-rendering an unchanged card costs reads, not layout), `keyed()` reconciles a
// list of keyed rows in place.

import { t, type Key } from './i18n';

type Child = Node | string | number | null | undefined | false;
type Handler = (ev: never) => void;
export type Attrs = {
  [name: string]: string | number | boolean | null | undefined | Handler;
} & {
  /** Sets textContent to t(key) and keeps it translated (data-i18n). */
  i18n?: Key;
  /** data-testid */
  testid?: string;
};

const I18N_ATTRS: Record<string, string> = {
  'i18n-placeholder': 'placeholder',
  'i18n-title': 'title',
  'i18n-aria-label': 'aria-label',
};

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value == null || value === false) continue;
      if (typeof value === 'function') {
        el.addEventListener(name.slice(2).toLowerCase(), value as EventListener);
      } else if (name === 'class') {
        el.className = String(value);
      } else if (name === 'i18n') {
        el.dataset.i18n = String(value);
        el.textContent = t(value as Key);
      } else if (name === 'testid') {
        el.dataset.testid = String(value);
      } else if (name in I18N_ATTRS) {
        el.setAttribute(`data-${name}`, String(value));
        el.setAttribute(I18N_ATTRS[name]!, t(value as Key));
      } else if (value === true) {
        el.setAttribute(name, '');
      } else {
        el.setAttribute(name, String(value));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c == null || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

/** Counts DOM writes made through the helpers (tests bound the rendering work with it). */
export const domWrites = { count: 0 };

export function setText(el: Node, text: string): void {
  if (el.textContent !== text) {
    el.textContent = text;
    domWrites.count++;
  }
}

export function setAttr(el: Element, name: string, value: string | null): void {
  if (value === null) {
    if (el.hasAttribute(name)) {
      el.removeAttribute(name);
      domWrites.count++;
    }
  } else if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
    domWrites.count++;
  }
}

export function setHidden(el: HTMLElement, hidden: boolean): void {
  if (el.hidden !== hidden) {
    el.hidden = hidden;
    domWrites.count++;
  }
}

export function setClass(el: Element, name: string, on: boolean): void {
  if (el.classList.contains(name) !== on) {
    el.classList.toggle(name, on);
    domWrites.count++;
  }
}

/**
 * Makes `container`'s children the rows for `keys`, in that order, reusing the row
 * already made for a key (so focus and state survive) and moving nodes only when the
 * order changed. Returns the rows by key.
 */
export function keyed<K>(
  container: Element,
  rows: Map<K, HTMLElement>,
  keys: readonly K[],
  create: (key: K) => HTMLElement,
): Map<K, HTMLElement> {
  const active = document.activeElement as HTMLElement | null;
  const wanted = new Set(keys);
  for (const [k, el] of rows) {
    if (!wanted.has(k)) {
      el.remove();
      rows.delete(k);
    }
  }
  let cursor: ChildNode | null = container.firstChild;
  for (const k of keys) {
    let el = rows.get(k);
    if (!el) {
      el = create(k);
      rows.set(k, el);
    }
    if (el === cursor) {
      cursor = cursor.nextSibling;
    } else {
      container.insertBefore(el, cursor);
    }
  }
  // Moving a node blurs it: give focus back to a row (or a control in it) that moved.
  if (active && active !== document.activeElement && active.isConnected && container.contains(active)) {
    active.focus({ preventScroll: true });
  }
  return rows;
}

/** Focusable descendants, for focus traps. */
export function focusables(root: Element): HTMLElement[] {
  const sel =
    'a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
  return [...root.querySelectorAll<HTMLElement>(sel)].filter((el) => !el.closest('[hidden]'));
}

/** True when the key event comes from a place where typing text is expected. */
export function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || !el.tagName) return false;
  const tag = el.tagName.toLowerCase();
  if (tag === 'textarea' || tag === 'select' || el.isContentEditable) return true;
  if (tag === 'input') {
    const type = (el as HTMLInputElement).type;
    return !['checkbox', 'radio', 'button', 'submit', 'reset'].includes(type);
  }
  return false;
}
