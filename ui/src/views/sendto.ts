// "Send N files": files and folders handed to the app by a launch ("Open with Skiff" in
// a file manager, the app's command line, or a second launch the running app received),
// sent to the contact picked here. A searchable list of contacts, online first; offline
// ones only while HTTP upload is allowed (as for a drop on an offline contact), else
// shown but not selectable. The search box keeps the focus: ↑/↓ move the selection
// (a combobox over a listbox, aria-activedescendant), Enter or a click sends, Esc or
// Cancel closes without sending. Files that arrive while it is open join the list.

import { h, keyed, setAttr, setClass, setText } from '../dom';
import { baseName } from '../format';
import { icon } from '../icons';
import { t, tn } from '../i18n';
import { contactPresence, displayName, visibleContacts, type AppState } from '../store';
import type { ContactView } from '../types';
import { contactIdentity, showIdentity, type ContactIdentity } from './contacts';
import { Modal } from './modal';

export interface SendToActions {
  /** Sends `paths` to `jid` (the dialog has closed by then). */
  send(jid: string, paths: string[]): void;
}


let dialogs = 0;

/** A path that names a folder by its trailing separator (the shell's canonical paths have none). */
export function looksLikeFolder(path: string): boolean {
  return /[\\/]$/.test(path) && path.replace(/[\\/]+$/, '') !== '';
}

/** `paths` followed by those of `more` not in it yet, in order. */
export function mergePaths(paths: readonly string[], more: readonly string[]): string[] {
  const seen = new Set(paths);
  const out = [...paths];
  for (const p of more) {
    if (!p || seen.has(p)) continue;
    seen.add(p);
    out.push(p);
  }
  return out;
}

export class SendToDialog {
  private readonly modal: Modal;
  private readonly title: HTMLElement;
  private readonly fileList: HTMLUListElement;
  readonly search: HTMLInputElement;
  readonly list: HTMLUListElement;
  private readonly empty: HTMLElement;
  private readonly cancelButton: HTMLButtonElement;
  private readonly rows = new Map<string, HTMLElement>();
  private readonly parts = new WeakMap<HTMLElement, ContactIdentity>();
  private readonly prefix = `send-to-${++dialogs}`;
  private nextRow = 0;
  private paths: string[] = [];
  private state: AppState | null = null;
  private query = '';
  /** The selected contact (Enter sends to it), always a selectable one, or null. */
  private active: string | null = null;
  private uploadWhenOffline = false;

  constructor(
    host: HTMLElement,
    background: () => HTMLElement[],
    private readonly actions: SendToActions,
  ) {
    const titleId = `${this.prefix}-title`;
    const descId = `${this.prefix}-desc`;
    const listId = `${this.prefix}-list`;
    this.modal = new Modal(host, background, {
      labelledBy: titleId,
      describedBy: descId,
      testid: 'send-to-dialog',
      className: 'send-to-modal',
      onEscape: () => this.close(),
      onEnter: () => this.sendToActive(),
    });
    this.title = h('h2', { id: titleId, class: 'modal-title' });
    this.fileList = h('ul', { class: 'send-to-files', 'i18n-aria-label': 'sendTo.files', testid: 'send-to-files' });
    this.search = h('input', {
      type: 'search',
      class: 'search-input',
      role: 'combobox',
      'aria-autocomplete': 'list',
      'aria-expanded': 'true',
      'aria-controls': listId,
      'i18n-placeholder': 'contacts.searchPlaceholder',
      'i18n-aria-label': 'contacts.search',
      testid: 'send-to-search',
      autocomplete: 'off',
      spellcheck: 'false',
    });
    this.search.addEventListener('input', () => {
      this.query = this.search.value;
      this.active = null; // the first match is selected
      this.renderContacts();
    });
    this.list = h('ul', { id: listId, class: 'send-to-list', role: 'listbox', 'i18n-aria-label': 'sendTo.list', testid: 'send-to-list' });
    // The search box keeps the focus when a row is clicked (the scrollbar still drags).
    this.list.addEventListener('mousedown', (e) => {
      if ((e.target as Element).closest('[data-jid]')) e.preventDefault();
    });
    this.list.addEventListener('click', (e) => {
      const row = (e.target as Element).closest<HTMLElement>('[data-jid]');
      if (row && row.getAttribute('aria-disabled') !== 'true') this.send(row.dataset.jid!);
    });
    this.empty = h('p', { class: 'pane-empty send-to-empty', hidden: true, testid: 'send-to-empty' });
    this.cancelButton = h('button', { type: 'button', class: 'btn btn-secondary', i18n: 'common.cancel', testid: 'send-to-cancel' });
    this.cancelButton.addEventListener('click', () => this.close());
    this.modal.box.addEventListener('keydown', (e) => this.onKey(e));

    this.modal.box.append(
      h('div', { class: 'modal-head' }, h('span', { class: 'modal-icon send-to-icon' }, icon('send')), this.title),
      this.fileList,
      h('p', { id: descId, class: 'modal-sub send-to-desc', i18n: 'sendTo.choose' }),
      h('div', { class: 'search send-to-search' }, icon('search', 'icon search-icon'), this.search),
      this.list,
      this.empty,
      h(
        'div',
        { class: 'modal-foot' },
        h('span', { class: 'modal-hint', i18n: 'sendTo.hint' }),
        h('span', { class: 'spacer' }),
        this.cancelButton,
      ),
    );
  }

  get isOpen(): boolean {
    return this.modal.isOpen;
  }

  /** The files and folders waiting for a contact. */
  get files(): readonly string[] {
    return this.paths;
  }

  /**
   * Adds `paths` (those not listed yet) and shows the dialog, or updates it when open
   * (the focus and the selection stay where they are).
   */
  add(paths: readonly string[], state: AppState): void {
    const merged = mergePaths(this.paths, paths);
    if (merged.length === 0) return;
    this.paths = merged;
    this.state = state;
    this.renderFiles();
    this.renderContacts();
    if (!this.modal.isOpen) this.modal.show(this.search);
  }

  /** New contacts or presence: the list follows while open. */
  render(state: AppState): void {
    this.state = state;
    if (this.modal.isOpen) this.renderContacts();
  }

  /** Offline contacts are selectable only while HTTP upload is allowed (the `allowUpload` setting). */
  setUploadWhenOffline(on: boolean): void {
    if (on === this.uploadWhenOffline) return;
    this.uploadWhenOffline = on;
    if (this.modal.isOpen) this.renderContacts();
  }

  /** Closes without sending; returns the files it held. */
  close(): string[] {
    const paths = this.paths;
    this.paths = [];
    this.query = '';
    this.search.value = '';
    this.active = null;
    this.modal.hide();
    return paths;
  }

  /** The texts again, in the current language. */
  relabel(): void {
    if (!this.modal.isOpen) return;
    this.renderFiles();
    this.renderContacts();
  }

  /** True when files can go to `c` now: online, or offline while uploads are allowed. */
  private selectable(c: ContactView): boolean {
    return this.uploadWhenOffline || contactPresence(c) !== 'offline';
  }

  private send(jid: string): void {
    const paths = this.close();
    if (paths.length) this.actions.send(jid, paths);
  }

  private sendToActive(): void {
    if (this.active) this.send(this.active);
  }

  private renderFiles(): void {
    setText(this.title, tn('sendTo.title', this.paths.length));
    const items = this.paths.map((p) => {
      const folder = looksLikeFolder(p);
      return h(
        'li',
        { class: 'send-to-file', title: p, 'data-kind': folder ? 'folder' : 'file' },
        icon(folder ? 'folder' : 'file'),
        h('span', { class: 'send-to-file-name' }, baseName(p)),
      );
    });
    this.fileList.replaceChildren(...items);
  }

  private renderContacts(): void {
    const state = this.state;
    const contacts = state ? visibleContacts(state.contacts.values(), this.query) : [];
    keyed(
      this.list,
      this.rows,
      contacts.map((c) => c.jid),
      (jid) => this.createRow(jid),
    );
    const selectable = contacts.filter((c) => this.selectable(c)).map((c) => c.jid);
    if (!this.active || !selectable.includes(this.active)) this.active = selectable[0] ?? null;
    for (const c of contacts) this.updateRow(this.rows.get(c.jid)!, c);
    const activeRow = this.active ? this.rows.get(this.active) : undefined;
    setAttr(this.search, 'aria-activedescendant', activeRow ? activeRow.id : null);
    const total = state?.contacts.size ?? 0;
    const emptyText = total === 0 ? t('contacts.empty') : contacts.length === 0 ? t('contacts.noMatch', { q: this.query.trim() }) : '';
    setText(this.empty, emptyText);
    this.empty.hidden = !emptyText;
    this.list.hidden = contacts.length === 0;
  }

  private createRow(jid: string): HTMLElement {
    const who = contactIdentity();
    const row = h(
      'li',
      { id: `${this.prefix}-opt-${++this.nextRow}`, class: 'send-to-row', role: 'option', testid: `send-to-${jid}` },
      who.avatarWrap,
      who.who,
      h('span', { class: 'send-to-go', 'aria-hidden': 'true' }, icon('send')),
    );
    row.dataset.jid = jid;
    this.parts.set(row, who);
    return row;
  }

  private updateRow(row: HTMLElement, c: ContactView): void {
    const p = this.parts.get(row)!;
    const name = displayName(c);
    const pres = contactPresence(c);
    const ok = this.selectable(c);
    const note = pres !== 'offline' ? t(`presence.${pres}`) : t(ok ? 'sendTo.upload' : 'sendTo.unavailable');
    showIdentity(p, c, name, note);
    row.dataset.presence = pres;
    setAttr(row, 'aria-disabled', ok ? null : 'true');
    setClass(row, 'is-disabled', !ok);
    setClass(row, 'by-upload', ok && pres === 'offline');
    const active = c.jid === this.active;
    setAttr(row, 'aria-selected', active ? 'true' : 'false');
    setClass(row, 'is-active', active);
  }

  /** ↑/↓ anywhere in the dialog move the selection over selectable rows; the search box gets the focus. */
  private onKey(e: KeyboardEvent): void {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    e.preventDefault();
    const jids = [...this.list.querySelectorAll<HTMLElement>('[data-jid]:not([aria-disabled="true"])')].map((r) => r.dataset.jid!);
    if (jids.length === 0) return;
    const at = this.active ? jids.indexOf(this.active) : -1;
    const next = e.key === 'ArrowDown' ? Math.min(jids.length - 1, at + 1) : Math.max(0, at - 1);
    this.active = jids[next]!;
    this.renderContacts();
    this.rows.get(this.active)?.scrollIntoView?.({ block: 'nearest' });
    if (document.activeElement !== this.search) this.search.focus();
  }
}
