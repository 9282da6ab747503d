// The incoming-offer dialog: the first offer of the queue, with sender, file, size,
// message and save folder; Accept (Enter) / Decline (Esc). Several offers wait in line.

import { h, setHidden, setText } from '../dom';
import { bareJid, formatBytes } from '../format';
import { icon } from '../icons';
import { t } from '../i18n';
import { displayName, type AppState } from '../store';
import { Modal } from './modal';

export interface OfferActions {
  accept(id: number, dir: string | undefined): Promise<void>;
  decline(id: number): Promise<void>;
  pickFolder(): Promise<string | null>;
  defaultDir(): string;
}

export class OfferDialog {
  private readonly modal: Modal;
  private readonly title: HTMLElement;
  private readonly queue: HTMLElement;
  private readonly wants: HTMLElement;
  private readonly stranger: HTMLElement;
  private readonly from: HTMLElement;
  private readonly fromJid: HTMLElement;
  private readonly file: HTMLElement;
  private readonly size: HTMLElement;
  private readonly descRow: HTMLElement;
  private readonly desc: HTMLElement;
  private readonly folder: HTMLElement;
  private readonly change: HTMLButtonElement;
  private readonly accept: HTMLButtonElement;
  private readonly decline: HTMLButtonElement;
  private current: number | null = null;
  private busy = false;
  /** Folder chosen per offer with "Change…". */
  private readonly dirs = new Map<number, string>();
  private state: AppState | null = null;

  constructor(
    host: HTMLElement,
    background: () => HTMLElement[],
    private readonly actions: OfferActions,
  ) {
    this.modal = new Modal(host, background, {
      labelledBy: 'offer-title',
      describedBy: 'offer-wants',
      testid: 'offer-dialog',
      className: 'offer-modal',
      onEscape: () => void this.answer(false),
      onEnter: () => void this.answer(true),
    });
    this.title = h('h2', { id: 'offer-title', class: 'modal-title', i18n: 'offer.title' });
    this.queue = h('span', { class: 'badge queue-badge', testid: 'offer-queue' });
    this.wants = h('p', { id: 'offer-wants', class: 'modal-sub' });
    this.stranger = h('p', { class: 'offer-stranger', role: 'note', testid: 'offer-stranger', i18n: 'offer.notContact', hidden: true });
    this.from = h('span', { class: 'offer-from-name' });
    this.fromJid = h('span', { class: 'offer-from-jid' });
    this.file = h('span', { class: 'offer-file', testid: 'offer-file' });
    this.size = h('span', { class: 'offer-size', testid: 'offer-size' });
    this.desc = h('span', { class: 'offer-desc' });
    this.folder = h('span', { class: 'offer-folder', testid: 'offer-folder' });
    this.change = h('button', { type: 'button', class: 'btn btn-small btn-secondary', i18n: 'offer.change', testid: 'offer-change-folder' });
    this.change.addEventListener('click', () => void this.pick());
    this.decline = h('button', { type: 'button', class: 'btn btn-secondary', i18n: 'offer.decline', testid: 'offer-decline' });
    this.decline.addEventListener('click', () => void this.answer(false));
    this.accept = h('button', { type: 'button', class: 'btn btn-primary', i18n: 'offer.accept', testid: 'offer-accept' });
    this.accept.addEventListener('click', () => void this.answer(true));
    this.descRow = h('div', { class: 'dl-row' }, h('dt', { i18n: 'offer.description' }), h('dd', null, this.desc));

    this.modal.box.append(
      h('div', { class: 'modal-head' }, h('span', { class: 'modal-icon' }, icon('down')), this.title, this.queue),
      this.wants,
      this.stranger,
      h(
        'dl',
        { class: 'offer-details' },
        h('div', { class: 'dl-row' }, h('dt', { i18n: 'offer.from' }), h('dd', { class: 'offer-from' }, this.from, this.fromJid)),
        h('div', { class: 'dl-row' }, h('dt', { i18n: 'offer.file' }), h('dd', null, icon('file'), this.file)),
        h('div', { class: 'dl-row' }, h('dt', { i18n: 'offer.size' }), h('dd', null, this.size)),
        this.descRow,
        h(
          'div',
          { class: 'dl-row' },
          h('dt', { i18n: 'offer.saveTo' }),
          h('dd', { class: 'offer-folder-row' }, icon('folder'), this.folder, this.change),
        ),
      ),
      h(
        'div',
        { class: 'modal-foot' },
        h('span', { class: 'modal-hint', i18n: 'offer.hint' }),
        h('span', { class: 'spacer' }),
        this.decline,
        this.accept,
      ),
    );
  }

  get isOpen(): boolean {
    return this.modal.isOpen;
  }

  get currentId(): number | null {
    return this.current;
  }

  render(state: AppState): void {
    this.state = state;
    const id = state.offers[0] ?? null;
    const v = id != null ? state.transfers.get(id) : undefined;
    if (id == null || !v) {
      this.current = null;
      this.modal.hide();
      return;
    }
    const changed = id !== this.current;
    this.current = id;
    const contact = state.contacts.get(bareJid(v.peer));
    const name = contact ? displayName(contact) : bareJid(v.peer);
    setText(this.wants, t('offer.wants', { name }));
    setHidden(this.stranger, !!contact);
    setText(this.from, name);
    setText(this.fromJid, v.peer);
    this.fromJid.title = v.peer;
    setText(this.file, v.name);
    this.file.title = v.name;
    // A link's size is not looked up before it is accepted: 0 stands for unknown.
    setText(this.size, v.size > 0 ? formatBytes(v.size) : t('offer.sizeUnknown'));
    this.size.title = v.size > 0 ? `${v.size.toLocaleString()} B` : '';
    setText(this.desc, v.description ?? '');
    setHidden(this.descRow, !v.description);
    const dir = this.dirs.get(id) ?? this.actions.defaultDir();
    setText(this.folder, dir || t('settings.downloadDirNone'));
    this.folder.title = dir;
    setText(this.queue, t('offer.queue', { i: 1, n: state.offers.length }));
    setHidden(this.queue, state.offers.length < 2);
    this.modal.box.dataset.offerId = String(id);
    if (changed || !this.modal.isOpen) {
      this.setBusy(false);
      this.modal.show(this.accept);
    }
  }

  private setBusy(b: boolean): void {
    this.busy = b;
    this.accept.disabled = b;
    this.decline.disabled = b;
    this.change.disabled = b;
  }

  private async pick(): Promise<void> {
    const id = this.current;
    if (id == null) return;
    const dir = await this.actions.pickFolder();
    if (dir && this.current === id) {
      this.dirs.set(id, dir);
      if (this.state) this.render(this.state);
    }
    this.change.focus();
  }

  private async answer(yes: boolean): Promise<void> {
    const id = this.current;
    if (id == null || this.busy) return;
    this.setBusy(true);
    try {
      if (yes) await this.actions.accept(id, this.dirs.get(id));
      else await this.actions.decline(id);
      this.dirs.delete(id);
    } finally {
      this.setBusy(false);
    }
  }
}
