// The top bar: brand, Transfers / History tabs, connection state, account, Settings,
// Sign out.

import { h, setAttr, setText } from '../dom';
import { icon } from '../icons';
import { t } from '../i18n';
import type { Connection } from '../store';

export type ViewName = 'transfers' | 'history';

export interface HeaderActions {
  show(view: ViewName): void;
  settings(): void;
  signOut(): void;
}

/** The connection line and its kind (for the dot colour). */
export function connectionText(c: Connection, now: number): { text: string; kind: string; tip: string } {
  switch (c.kind) {
    case 'signed-out':
      return { text: t('conn.signedOut'), kind: 'offline', tip: '' };
    case 'connecting':
      return { text: t('conn.connecting'), kind: 'pending', tip: '' };
    case 'online':
      return {
        text: t('conn.online'),
        kind: 'online',
        tip: t(c.tls ? 'conn.secure' : 'conn.insecure', { mechanism: c.mechanism }),
      };
    case 'offline':
      return { text: c.reason ? t('conn.offlineReason', { reason: c.reason }) : t('conn.offline'), kind: 'offline', tip: c.reason };
    case 'resuming':
      return { text: t('conn.resuming'), kind: 'pending', tip: c.reason };
    case 'reconnecting': {
      const s = Math.ceil((c.at - now) / 1000);
      return { text: s > 0 ? t('conn.reconnectingIn', { n: s }) : t('conn.reconnectingNow'), kind: 'pending', tip: '' };
    }
  }
}

export class Header {
  readonly el: HTMLElement;
  private readonly tabs: Record<ViewName, HTMLButtonElement>;
  private readonly conn: HTMLElement;
  private readonly connText: HTMLElement;
  private readonly account: HTMLElement;
  private readonly demo: HTMLElement;

  constructor(private readonly actions: HeaderActions) {
    const tab = (view: ViewName, key: 'header.transfers' | 'header.history') => {
      const b = h('button', { type: 'button', id: `tab-${view}`, class: 'tab', role: 'tab', i18n: key, testid: `tab-${view}`, 'aria-controls': `view-${view}` });
      b.addEventListener('click', () => this.actions.show(view));
      return b;
    };
    this.tabs = { transfers: tab('transfers', 'header.transfers'), history: tab('history', 'header.history') };
    const tablist = h('div', { class: 'tabs', role: 'tablist', 'i18n-aria-label': 'header.views' }, this.tabs.transfers, this.tabs.history);
    tablist.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      const next = this.tabs.transfers.getAttribute('aria-selected') === 'true' ? 'history' : 'transfers';
      this.actions.show(next);
      this.tabs[next].focus();
    });
    this.connText = h('span', { class: 'conn-text' });
    this.conn = h('span', { class: 'conn', testid: 'connection-state' }, h('span', { class: 'conn-dot', 'aria-hidden': 'true' }), this.connText);
    this.account = h('span', { class: 'account-jid', testid: 'account-jid' });
    this.demo = h('span', { class: 'badge demo-badge', i18n: 'header.demo', 'i18n-title': 'header.demoTip', hidden: true });
    const settings = h('button', { type: 'button', class: 'btn btn-icon btn-ghost', 'i18n-title': 'header.settings', 'i18n-aria-label': 'header.settings', testid: 'open-settings' }, icon('gear'));
    settings.addEventListener('click', () => this.actions.settings());
    const signOut = h('button', { type: 'button', class: 'btn btn-icon btn-ghost', 'i18n-title': 'header.signOut', 'i18n-aria-label': 'header.signOut', testid: 'sign-out' }, icon('logout'));
    signOut.addEventListener('click', () => this.actions.signOut());
    this.el = h(
      'header',
      { class: 'topbar' },
      h('div', { class: 'brand' }, h('span', { class: 'brand-mark small', 'aria-hidden': 'true' }, 'S'), h('span', { class: 'brand-name', i18n: 'app.name' })),
      tablist,
      h('span', { class: 'spacer' }),
      h('div', { class: 'account' }, this.demo, h('div', { class: 'account-lines' }, this.account, this.conn)),
      settings,
      signOut,
    );
  }

  setView(view: ViewName): void {
    for (const [name, b] of Object.entries(this.tabs)) {
      const on = name === view;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      b.classList.toggle('is-active', on);
    }
  }

  render(conn: Connection, accountJid: string, demo: boolean, now: number): void {
    const c = connectionText(conn, now);
    setText(this.connText, c.text);
    setAttr(this.conn, 'title', c.tip || c.text);
    this.conn.dataset.kind = c.kind;
    this.conn.dataset.state = conn.kind;
    setText(this.account, accountJid);
    setAttr(this.account, 'title', accountJid);
    this.demo.hidden = !demo;
  }
}
