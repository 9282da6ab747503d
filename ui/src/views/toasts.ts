// Short messages in a corner: command errors, "Sending 3 files to bob", subscription
// requests. Announced politely to screen readers (errors assertively).

import { h } from '../dom';
import { icon } from '../icons';
import { t } from '../i18n';

export type ToastKind = 'info' | 'error';

export class Toasts {
  readonly el: HTMLElement;
  private readonly polite: HTMLElement;
  private readonly urgent: HTMLElement;

  constructor(private readonly timeoutMs = 4500) {
    this.polite = h('div', { class: 'toast-stack', role: 'status', 'aria-live': 'polite' });
    this.urgent = h('div', { class: 'toast-stack', role: 'alert', 'aria-live': 'assertive' });
    this.el = h('div', { class: 'toasts', testid: 'toasts' }, this.urgent, this.polite);
  }

  show(message: string, kind: ToastKind = 'info'): HTMLElement {
    const close = h('button', { type: 'button', class: 'btn btn-icon btn-ghost toast-close', title: t('toast.dismiss'), 'aria-label': t('toast.dismiss') }, icon('x'));
    const toast = h('div', { class: `toast toast-${kind}`, testid: `toast-${kind}` }, icon(kind === 'error' ? 'alert' : 'info'), h('span', { class: 'toast-text' }, message), close);
    close.addEventListener('click', () => toast.remove());
    const stack = kind === 'error' ? this.urgent : this.polite;
    // The same message again replaces the one still shown (no stack of repeats).
    for (const old of stack.querySelectorAll<HTMLElement>('.toast-text')) if (old.textContent === message) old.parentElement!.remove();
    stack.append(toast);
    while (stack.children.length > 4) stack.firstElementChild!.remove();
    setTimeout(() => toast.remove(), kind === 'error' ? this.timeoutMs * 1.5 : this.timeoutMs);
    return toast;
  }
}
