// Left pane: the roster with presence, a search box, "Send file…" per contact, and the
// drop highlight while files are dragged over a row. With HTTP upload allowed, offline
// contacts take files too (uploaded to the server, sent as a link): their rows say so.

import { h, keyed, setAttr, setClass, setText } from '../dom';
import { icon } from '../icons';
import { t } from '../i18n';
import { bestResource, contactPresence, displayName, visibleContacts, type AppState } from '../store';
import type { ContactView } from '../types';

export interface ContactsActions {
  sendFile(jid: string): void;
}

interface RowParts {
  who: ContactIdentity;
  send: HTMLButtonElement;
  dropNote: HTMLElement;
}

/** A contact as a row shows it: avatar with its presence dot, name, address and a note. */
export interface ContactIdentity {
  /** The avatar with its presence dot. */
  avatarWrap: HTMLElement;
  /** Name, address and note, one under the other. */
  who: HTMLElement;
  avatar: HTMLElement;
  name: HTMLElement;
  jid: HTMLElement;
  note: HTMLElement;
}

/** The elements of a `ContactIdentity`, empty until `showIdentity` fills them. */
export function contactIdentity(): ContactIdentity {
  const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' });
  const name = h('span', { class: 'contact-name' });
  const jid = h('span', { class: 'contact-jid' });
  const note = h('span', { class: 'presence-text' });
  return {
    avatarWrap: h('span', { class: 'avatar-wrap' }, avatar, h('span', { class: 'presence-dot', 'aria-hidden': 'true' })),
    who: h('span', { class: 'contact-who' }, name, jid, note),
    avatar,
    name,
    jid,
    note,
  };
}

/** Shows `c` (named `name`) in `id`, with `note` on its last line. */
export function showIdentity(id: ContactIdentity, c: ContactView, name: string, note: string): void {
  setText(id.avatar, initialOf(name));
  setAttr(id.avatar, 'style', `--hue:${hueOf(c.jid)}`);
  setText(id.name, name);
  setAttr(id.name, 'title', name);
  setText(id.jid, c.jid);
  setAttr(id.jid, 'title', c.jid);
  setText(id.note, note);
  setAttr(id.note, 'title', note);
}

/** A stable hue per JID for the avatar. */
export function hueOf(jid: string): number {
  let x = 0;
  for (let i = 0; i < jid.length; i++) x = (x * 31 + jid.charCodeAt(i)) >>> 0;
  return x % 360;
}

/** First letter (or CJK character) of the display name, for the avatar. */
export function initialOf(name: string): string {
  const ch = Array.from(name.trim())[0] ?? '?';
  return ch.toUpperCase();
}

export class ContactsPane {
  readonly el: HTMLElement;
  readonly list: HTMLUListElement;
  readonly search: HTMLInputElement;
  private readonly count: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly rows = new Map<string, HTMLElement>();
  private readonly parts = new WeakMap<HTMLElement, RowParts>();
  private query = '';
  private dropJid: string | null = null;
  private state: AppState | null = null;
  private uploadWhenOffline = false;

  constructor(private readonly actions: ContactsActions) {
    this.search = h('input', {
      type: 'search',
      class: 'search-input',
      'i18n-placeholder': 'contacts.searchPlaceholder',
      'i18n-aria-label': 'contacts.search',
      testid: 'contact-search',
      autocomplete: 'off',
      spellcheck: 'false',
    });
    this.search.addEventListener('input', () => {
      this.query = this.search.value;
      if (this.state) this.render(this.state);
    });
    this.search.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.search.value) {
        e.preventDefault();
        e.stopPropagation();
        this.search.value = '';
        this.query = '';
        if (this.state) this.render(this.state);
      } else if (e.key === 'ArrowDown') {
        e.preventDefault();
        (this.list.querySelector('[data-jid]') as HTMLElement | null)?.focus();
      }
    });
    this.count = h('span', { class: 'pane-meta' });
    this.list = h('ul', { class: 'contact-list', 'i18n-aria-label': 'contacts.title', testid: 'contact-list' });
    this.list.addEventListener('keydown', (e) => this.onListKey(e));
    this.empty = h('p', { class: 'pane-empty', hidden: true });
    this.el = h(
      'aside',
      { class: 'contacts-pane', 'i18n-aria-label': 'contacts.title' },
      h(
        'div',
        { class: 'pane-head' },
        h('h2', { class: 'pane-title', i18n: 'contacts.title' }),
        this.count,
      ),
      h(
        'div',
        { class: 'search' },
        icon('search', 'icon search-icon'),
        this.search,
        h('kbd', { class: 'search-kbd', 'aria-hidden': 'true' }, '/'),
      ),
      this.list,
      this.empty,
    );
  }

  focusSearch(): void {
    this.search.focus();
    this.search.select();
  }

  /**
   * Whether files for an offline contact go by HTTP upload (the `allowUpload` setting):
   * the send button and the drop note of offline rows say so.
   */
  setUploadWhenOffline(on: boolean): void {
    if (on === this.uploadWhenOffline) return;
    this.uploadWhenOffline = on;
    if (this.state) this.render(this.state);
  }

  /** True when files dropped on `jid` go by HTTP upload because the contact is offline. */
  uploadsTo(jid: string): boolean {
    const c = this.state?.contacts.get(jid);
    return this.uploadWhenOffline && !!c && contactPresence(c) === 'offline';
  }

  /** Highlights the row of `jid` (null: none) while files are dragged over it. */
  setDropTarget(jid: string | null): void {
    if (jid === this.dropJid) return;
    const old = this.dropJid ? this.rows.get(this.dropJid) : undefined;
    if (old) setClass(old, 'drop-target', false);
    this.dropJid = jid;
    const row = jid ? this.rows.get(jid) : undefined;
    if (row) setClass(row, 'drop-target', true);
  }

  render(state: AppState): void {
    this.state = state;
    const contacts = visibleContacts(state.contacts.values(), this.query);
    keyed(
      this.list,
      this.rows,
      contacts.map((c) => c.jid),
      (jid) => this.createRow(jid),
    );
    for (const c of contacts) this.updateRow(this.rows.get(c.jid)!, c);
    let online = 0;
    for (const c of state.contacts.values()) if (contactPresence(c) !== 'offline') online++;
    setText(this.count, state.contacts.size ? t('contacts.online', { n: online }) : '');
    const emptyText =
      state.contacts.size === 0 ? t('contacts.empty') : contacts.length === 0 ? t('contacts.noMatch', { q: this.query.trim() }) : '';
    setText(this.empty, emptyText);
    this.empty.hidden = !emptyText;
  }

  private createRow(jid: string): HTMLElement {
    const who = contactIdentity();
    const dropText = h('span');
    const dropNote = h('span', { class: 'drop-note', 'aria-hidden': 'true' }, icon('send'), dropText);
    const send = h(
      'button',
      { type: 'button', class: 'btn btn-small btn-ghost send-btn', testid: `send-${jid}` },
      icon('send'),
      h('span', { class: 'send-label' }),
    );
    send.addEventListener('click', (e) => {
      e.stopPropagation();
      this.actions.sendFile(jid);
    });
    const row = h(
      'li',
      { class: 'contact-row', tabindex: '0', testid: `contact-${jid}` },
      who.avatarWrap,
      who.who,
      send,
      dropNote,
    );
    row.dataset.jid = jid;
    row.addEventListener('dblclick', () => this.actions.sendFile(jid));
    this.parts.set(row, { who, send, dropNote: dropText });
    return row;
  }

  private updateRow(row: HTMLElement, c: ContactView): void {
    const p = this.parts.get(row)!;
    const name = displayName(c);
    const pres = contactPresence(c);
    const best = bestResource(c.resources);
    const presLabel = t(`presence.${pres}`);
    const status = best?.status?.trim();
    const detail = c.pending_out && pres === 'offline' ? t('contacts.pending') : status ? `${presLabel} · ${status}` : presLabel;
    showIdentity(p.who, c, name, detail);
    row.dataset.presence = pres;
    setAttr(row, 'aria-label', `${name}, ${c.jid}, ${detail}`);
    const upload = this.uploadWhenOffline && pres === 'offline';
    row.classList.toggle('by-upload', upload);
    const sendTip = t(upload ? 'contacts.sendFileToUpload' : 'contacts.sendFileTo', { name });
    setText(p.send.querySelector('.send-label')!, t('contacts.sendFile'));
    setAttr(p.send, 'aria-label', sendTip);
    setAttr(p.send, 'title', sendTip);
    setText(p.dropNote, t(upload ? 'contacts.dropToUpload' : 'contacts.dropTo', { name }));
    setClass(row, 'drop-target', this.dropJid === c.jid);
  }

  private onListKey(e: KeyboardEvent): void {
    const row = (e.target as HTMLElement).closest<HTMLElement>('[data-jid]');
    if (!row || e.target !== row) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const next = (e.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling) as HTMLElement | null;
      if (next) next.focus();
      else if (e.key === 'ArrowUp') this.search.focus();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      this.actions.sendFile(row.dataset.jid!);
    }
  }
}
