// An accessible modal: role=dialog + aria-modal, labelled by its title, focus moved in on
// open and back on close, Tab kept inside, the rest of the page `inert` meanwhile.

import { focusables, h } from '../dom';

export interface ModalOptions {
  labelledBy: string;
  describedBy?: string;
  testid: string;
  className?: string;
  /** Esc pressed (not handled by a control inside). */
  onEscape(): void;
  /** Enter pressed outside buttons, links, selects and text areas. */
  onEnter?(): void;
}

export class Modal {
  /** Open modals, topmost last. Everything but the topmost is inert. */
  private static stack: Modal[] = [];
  readonly backdrop: HTMLElement;
  readonly box: HTMLElement;
  private returnFocus: HTMLElement | null = null;
  private open = false;

  constructor(
    host: HTMLElement,
    private readonly background: () => HTMLElement[],
    private readonly opts: ModalOptions,
  ) {
    this.box = h('div', {
      class: `modal ${opts.className ?? ''}`,
      role: 'dialog',
      'aria-modal': 'true',
      'aria-labelledby': opts.labelledBy,
      'aria-describedby': opts.describedBy,
      testid: opts.testid,
      tabindex: '-1',
    });
    this.backdrop = h('div', { class: 'modal-backdrop', hidden: true }, this.box);
    this.box.addEventListener('keydown', (e) => this.onKey(e));
    host.append(this.backdrop);
  }

  get isOpen(): boolean {
    return this.open;
  }

  show(focus?: HTMLElement | null): void {
    if (!this.open) {
      this.open = true;
      const active = document.activeElement as HTMLElement | null;
      this.returnFocus = active && active !== document.body ? active : null;
      // Last in the host, so the topmost modal is also the one drawn on top.
      this.backdrop.parentElement?.append(this.backdrop);
      this.backdrop.hidden = false;
      Modal.stack.push(this);
      this.sync();
    }
    (focus ?? focusables(this.box)[0] ?? this.box).focus();
  }

  hide(): void {
    if (!this.open) return;
    this.open = false;
    this.backdrop.hidden = true;
    Modal.stack = Modal.stack.filter((m) => m !== this);
    this.sync();
    const back = this.returnFocus;
    this.returnFocus = null;
    if (back && back.isConnected) back.focus();
  }

  /** The page is inert while any modal is open; so is every modal under the top one. */
  private sync(): void {
    Modal.stack = Modal.stack.filter((m) => m.backdrop.isConnected);
    const top = Modal.stack[Modal.stack.length - 1];
    for (const el of this.background()) el.inert = !!top;
    for (const m of Modal.stack) m.backdrop.inert = m !== top;
    this.backdrop.inert = this.open && this !== top;
  }

  private onKey(e: KeyboardEvent): void {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      this.opts.onEscape();
      return;
    }
    if (e.key === 'Enter' && this.opts.onEnter && !e.shiftKey && !e.isComposing) {
      const tag = (e.target as HTMLElement).tagName?.toLowerCase();
      if (tag !== 'button' && tag !== 'a' && tag !== 'textarea' && tag !== 'select') {
        e.preventDefault();
        this.opts.onEnter();
      }
      return;
    }
    if (e.key === 'Tab') {
      const items = focusables(this.box);
      if (items.length === 0) {
        e.preventDefault();
        return;
      }
      const first = items[0]!;
      const last = items[items.length - 1]!;
      const active = document.activeElement;
      if (e.shiftKey && (active === first || active === this.box)) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && active === last) {
        e.preventDefault();
        first.focus();
      }
    }
  }
}
