// Short messages in a corner: command errors, "Sending 3 files to bob", subscription
// requests, a password the keyring could not keep. Announced politely to screen readers
// (errors assertively). A notice with `timeoutMs: 0` stays until dismissed.

import { h } from '../dom';
import { icon } from '../icons';
import { t } from '../i18n';

export type ToastKind = 'info' | 'warn' | 'error';

export interface ToastOptions {
  /** A headline in bold before the message. */
  title?: string;
  /** data-testid; `toast-<kind>` by default. */
  testid?: string;
  /** How long it shows; 0 = until dismissed. The kind's default when absent. */
  timeoutMs?: number;
}

export class Toasts {
  readonly el: HTMLElement;
  private readonly polite: HTMLElement;
  private readonly urgent: HTMLElement;

  constructor(private readonly timeoutMs = 4500) {
    this.polite = h('div', { class: 'toast-stack', role: 'status', 'aria-live': 'polite' });
    this.urgent = h('div', { class: 'toast-stack', role: 'alert', 'aria-live': 'assertive' });
    this.el = h('div', { class: 'toasts', testid: 'toasts' }, this.urgent, this.polite);
  }

  show(message: string, kind: ToastKind = 'info', opts: ToastOptions = {}): HTMLElement {
    const close = h('button', { type: 'button', class: 'btn btn-icon btn-ghost toast-close', title: t('toast.dismiss'), 'aria-label': t('toast.dismiss') }, icon('x'));
    const text = h('span', { class: 'toast-text' }, opts.title ? h('strong', { class: 'toast-title' }, opts.title) : null, opts.title && message ? ' ' : null, message);
    const toast = h('div', { class: `toast toast-${kind}`, testid: opts.testid ?? `toast-${kind}` }, icon(kind === 'info' ? 'info' : 'alert'), text, close);
    close.addEventListener('click', () => toast.remove());
    const stack = kind === 'error' ? this.urgent : this.polite;
    // The same message again replaces the one still shown (no stack of repeats).
    for (const old of stack.querySelectorAll<HTMLElement>('.toast-text')) if (old.textContent === text.textContent) old.parentElement!.remove();
    const ms = opts.timeoutMs ?? (kind === 'error' ? this.timeoutMs * 1.5 : this.timeoutMs);
    if (ms > 0) setTimeout(() => toast.remove(), ms);
    else toast.dataset.sticky = '1';
    stack.append(toast);
    // At most four: the oldest goes first, a notice waiting to be dismissed last.
    while (stack.children.length > 4) {
      const toasts = [...stack.children] as HTMLElement[];
      (toasts.find((x) => !x.dataset.sticky) ?? toasts[0]!).remove();
    }
    return toast;
  }
}
