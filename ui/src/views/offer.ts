// The incoming-offer dialog: the first offer of the queue, with sender, file, size,
// message and save folder; Accept (Enter) / Decline (Esc). Several offers wait in line.
//
// When other offers from the same sender (bare JID) wait too, as when someone sends a
// folder or several files at once, it asks about them together: "Bob wants to send 3
// files", the total size, one save folder for all, and the files with a checkbox each,
// all checked. "Accept all" / "Accept N" (Enter) accepts the checked ones and declines
// the others; "Decline all" (Esc) declines them all. Offers from that sender arriving
// while it is open join the list, checked; offers that end meanwhile (withdrawn,
// answered from a notification or a card) leave it, and it closes when none is left.
//
// A batch (a folder, or several files offered together as one offer) is never merged
// into that list: it gets its own prompt, "Bob wants to send the folder photos — 312
// files, 1.4 GiB", with its files one click away (loaded from `history({parent})` when
// first shown), the save folder (the batch lands as a new folder in it), Accept / Decline.

import { h, keyed, setAttr, setHidden, setText } from '../dom';
import { bareJid, formatBytes } from '../format';
import { icon, type IconName } from '../icons';
import { t, tn, type Key } from '../i18n';
import { displayName, type AppState, type TransferView } from '../store';
import type { HistoryEntry } from '../types';
import { BatchFileList } from './batchfiles';
import { Modal } from './modal';

export interface OfferActions {
  accept(id: number, dir: string | undefined): Promise<void>;
  decline(id: number): Promise<void>;
  pickFolder(): Promise<string | null>;
  defaultDir(): string;
  /** The files of batch `id` (`history({parent: id})`). */
  listFiles(id: number): Promise<HistoryEntry[]>;
}

/**
 * Which prompt an offer is asked about in: its sender's bare JID, case folded (the
 * single files of one sender are asked about together), or for a batch its own.
 */
export function promptOf(v: TransferView): string {
  return v.files != null ? `batch:${v.id}` : bareJid(v.peer).toLowerCase();
}

/** The offers waiting for prompt `key` (see `promptOf`), in queue order. */
export function offersFrom(state: AppState, key: string): number[] {
  return state.offers.filter((id) => {
    const v = state.transfers.get(id);
    return !!v && promptOf(v) === key;
  });
}

/** The prompts the waiting offers make: a sender's single files, each batch. */
export function waitingPrompts(state: AppState): Set<string> {
  const prompts = new Set<string>();
  for (const id of state.offers) {
    const v = state.transfers.get(id);
    if (v) prompts.add(promptOf(v));
  }
  return prompts;
}

/**
 * The path inside a sent folder that an offer's description gives (`photos/2024/a.jpg`
 * for file `a.jpg`: the engine describes each file of a folder so), or null when the
 * description is a message.
 */
export function folderPath(name: string, description: string | null): string | null {
  const d = description ?? '';
  if (!name || d.length > 4096 || /[\r\n]/.test(d) || d.startsWith('/') || d.includes('://')) return null;
  return d.endsWith(`/${name}`) && d.length > name.length + 1 ? d : null;
}

/** Shows `key`'s text and keeps it translated when it needs no values (`data-i18n`). */
function label(el: HTMLElement, key: Key, text = t(key)): void {
  setText(el, text);
  if (text === t(key)) el.dataset.i18n = key;
  else delete el.dataset.i18n;
}

interface GroupRow {
  box: HTMLInputElement;
  dir: HTMLElement;
  name: HTMLElement;
  desc: HTMLElement;
  size: HTMLElement;
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
  private readonly fileRow: HTMLElement;
  private readonly sizeRow: HTMLElement;
  private readonly descRow: HTMLElement;
  private readonly desc: HTMLElement;
  private readonly folder: HTMLElement;
  private readonly change: HTMLButtonElement;
  private readonly accept: HTMLButtonElement;
  private readonly decline: HTMLButtonElement;
  private readonly hint: HTMLElement;
  // The grouped prompt's parts.
  private readonly totalRow: HTMLElement;
  private readonly total: HTMLElement;
  private readonly groupSection: HTMLElement;
  private readonly all: HTMLInputElement;
  private readonly chosen: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly rows = new Map<number, HTMLElement>();
  private readonly rowParts = new WeakMap<HTMLElement, GroupRow>();
  private current: number | null = null;
  private busy = false;
  /** Folder chosen per offer with "Change…". */
  private readonly dirs = new Map<number, string>();
  /** The sender whose offers the open prompt lists together, or null (one offer). */
  private group: string | null = null;
  /** The offers the open group lists, in queue order. */
  private members: number[] = [];
  /** Folder chosen per sender with "Change…" in a grouped prompt. */
  private readonly groupDirs = new Map<string, string>();
  /** Offers whose box was unchecked (new ones come checked). */
  private readonly unchecked = new Set<number>();
  private state: AppState | null = null;
  // The batch prompt's parts.
  private readonly headIcon: HTMLElement;
  private readonly folderRow: HTMLElement;
  private readonly folderName: HTMLElement;
  private readonly countRow: HTMLElement;
  private readonly count: HTMLElement;
  private readonly lands: HTMLElement;
  private readonly batchSection: HTMLElement;
  private readonly batchToggle: HTMLButtonElement;
  private readonly batchToggleText: HTMLElement;
  private readonly batchRegion: HTMLElement;
  /** The open batch's file list, made when first shown. */
  private batchList: BatchFileList | null = null;
  private batchListFor: number | null = null;

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
    this.hint = h('span', { class: 'modal-hint', i18n: 'offer.hint' });
    this.fileRow = h('div', { class: 'dl-row' }, h('dt', { i18n: 'offer.file' }), h('dd', null, icon('file'), this.file));
    this.sizeRow = h('div', { class: 'dl-row' }, h('dt', { i18n: 'offer.size' }), h('dd', null, this.size));
    this.descRow = h('div', { class: 'dl-row' }, h('dt', { i18n: 'offer.description' }), h('dd', null, this.desc));
    this.folderName = h('span', { class: 'offer-file', testid: 'offer-batch-name' });
    this.folderRow = h('div', { class: 'dl-row', hidden: true }, h('dt', { i18n: 'offer.folderName' }), h('dd', null, icon('folder'), this.folderName));
    this.count = h('span', { class: 'offer-size', testid: 'offer-batch-count' });
    this.countRow = h('div', { class: 'dl-row', hidden: true }, h('dt', { i18n: 'offer.fileCount' }), h('dd', null, this.count));
    this.lands = h('p', { class: 'offer-batch-lands', testid: 'offer-batch-lands', hidden: true });
    this.batchToggleText = h('span', { class: 'btn-label' });
    this.batchToggle = h(
      'button',
      { type: 'button', class: 'btn btn-small btn-ghost batch-toggle', testid: 'offer-batch-toggle', 'aria-expanded': 'false', 'aria-controls': 'offer-batch-files' },
      icon('chevronDown', 'icon batch-chevron'),
      this.batchToggleText,
    );
    this.batchToggle.addEventListener('click', () => this.toggleBatchFiles());
    this.batchRegion = h('div', { class: 'batch-region', id: 'offer-batch-files', hidden: true });
    this.batchSection = h('div', { class: 'offer-batch', testid: 'offer-batch', hidden: true }, this.batchToggle, this.batchRegion);
    this.total = h('span', { class: 'offer-size', testid: 'offer-group-total' });
    this.totalRow = h('div', { class: 'dl-row', hidden: true }, h('dt', { i18n: 'offer.total' }), h('dd', null, this.total));

    this.all = h('input', { type: 'checkbox', id: 'offer-group-all', class: 'offer-group-all', testid: 'offer-group-all' });
    this.all.addEventListener('change', () => this.checkAll(this.all.checked));
    this.chosen = h('span', { class: 'offer-group-chosen', testid: 'offer-group-chosen', 'aria-live': 'polite' });
    this.list = h('ul', { class: 'offer-group-list', 'i18n-aria-label': 'offer.files', testid: 'offer-group-list' });
    this.list.addEventListener('change', (e) => {
      const box = e.target as HTMLInputElement;
      const id = Number(box.dataset.offerId);
      if (!box.matches('input[type=checkbox]') || !Number.isFinite(id)) return;
      if (box.checked) this.unchecked.delete(id);
      else this.unchecked.add(id);
      this.renderChoice();
    });
    this.list.addEventListener('keydown', (e) => this.onListKey(e));
    this.groupSection = h(
      'div',
      { class: 'offer-group', hidden: true },
      h('div', { class: 'offer-group-head' }, h('label', { class: 'offer-group-all-label' }, this.all, h('span', { i18n: 'offer.selectAll' })), this.chosen),
      this.list,
    );

    this.headIcon = h('span', { class: 'modal-icon' }, icon('down'));
    this.headIcon.dataset.icon = 'down';
    this.modal.box.append(
      h('div', { class: 'modal-head' }, this.headIcon, this.title, this.queue),
      this.wants,
      this.stranger,
      h(
        'dl',
        { class: 'offer-details' },
        h('div', { class: 'dl-row' }, h('dt', { i18n: 'offer.from' }), h('dd', { class: 'offer-from' }, this.from, this.fromJid)),
        this.folderRow,
        this.fileRow,
        this.countRow,
        this.sizeRow,
        this.descRow,
        this.totalRow,
        h(
          'div',
          { class: 'dl-row' },
          h('dt', { i18n: 'offer.saveTo' }),
          h('dd', { class: 'offer-folder-row' }, icon('folder'), this.folder, this.change),
        ),
      ),
      this.lands,
      this.batchSection,
      this.groupSection,
      h('div', { class: 'modal-foot' }, this.hint, h('span', { class: 'spacer' }), this.decline, this.accept),
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
      this.close();
      return;
    }
    const sender = promptOf(v);
    const members = offersFrom(state, sender);
    const batch = v.files != null;
    // Choices are kept only for what still waits.
    const waiting = new Set(state.offers);
    const senders = waitingPrompts(state);
    for (const x of this.unchecked) if (!waiting.has(x)) this.unchecked.delete(x);
    for (const x of this.dirs.keys()) if (!waiting.has(x)) this.dirs.delete(x);
    for (const x of this.groupDirs.keys()) if (!senders.has(x)) this.groupDirs.delete(x);

    // The open prompt goes on: a group while its sender has offers waiting (down to its
    // last file), a single offer while it is first in line. A single offer becomes a
    // group when more from its sender arrive, the focus staying where it is.
    const continuing = this.modal.isOpen && (this.group != null ? this.group === sender : this.current === id);
    const grouped = (continuing && this.group === sender) || members.length > 1;
    if (grouped && this.group !== sender && continuing) {
      // A folder chosen for the single offer applies to the group.
      const dir = this.dirs.get(id);
      if (dir && !this.groupDirs.has(sender)) this.groupDirs.set(sender, dir);
    }
    this.group = grouped ? sender : null;
    this.members = grouped ? members : [];
    this.current = id;

    const contact = state.contacts.get(bareJid(v.peer));
    const name = contact ? displayName(contact) : bareJid(v.peer);
    setHidden(this.stranger, !!contact);
    setText(this.from, name);
    setText(this.fromJid, v.peer);
    this.fromJid.title = v.peer;
    setText(this.queue, t('offer.queue', { i: 1, n: senders.size }));
    setHidden(this.queue, senders.size < 2);
    this.modal.box.dataset.offerId = String(id);
    this.modal.box.classList.toggle('is-group', grouped);
    this.modal.box.classList.toggle('is-batch', batch);
    setAttr(this.modal.box, 'data-offer-batch', batch ? String(id) : null);
    this.setHeadIcon(batch ? 'folder' : 'down');
    setHidden(this.fileRow, grouped || batch);
    setHidden(this.sizeRow, grouped);
    setHidden(this.totalRow, !grouped);
    setHidden(this.groupSection, !grouped);
    setHidden(this.folderRow, !batch);
    setHidden(this.countRow, !batch);
    setHidden(this.lands, !batch);
    setHidden(this.batchSection, !batch);
    if (!batch || this.batchListFor !== id) this.resetBatchList();
    if (grouped) this.renderGroup(state, name, sender);
    else if (batch) this.renderBatch(v, id, name);
    else this.renderSingle(v, id, name);

    if (!continuing) {
      this.setBusy(false);
      this.modal.show(this.accept);
    }
  }

  private renderSingle(v: TransferView, id: number, name: string): void {
    delete this.modal.box.dataset.offerGroup;
    keyed(this.list, this.rows, [], (x) => this.makeRow(x));
    label(this.title, 'offer.title');
    label(this.wants, 'offer.wants', t('offer.wants', { name }));
    setText(this.file, v.name);
    this.file.title = v.name;
    // A link's size is not looked up before it is accepted: 0 stands for unknown.
    setText(this.size, v.size > 0 ? formatBytes(v.size) : t('offer.sizeUnknown'));
    this.size.title = v.size > 0 ? `${v.size.toLocaleString()} B` : '';
    setText(this.desc, v.description ?? '');
    setHidden(this.descRow, !v.description);
    this.showFolder(this.dirs.get(id));
    label(this.decline, 'offer.decline');
    label(this.accept, 'offer.accept');
    label(this.hint, 'offer.hint');
    this.accept.disabled = this.busy;
  }

  private setHeadIcon(name: IconName): void {
    if (this.headIcon.dataset.icon === name) return;
    this.headIcon.dataset.icon = name;
    this.headIcon.replaceChildren(icon(name));
  }

  /** A batch: its folder's name, how many files, their size, the list one click away. */
  private renderBatch(v: TransferView, id: number, name: string): void {
    delete this.modal.box.dataset.offerGroup;
    keyed(this.list, this.rows, [], (x) => this.makeRow(x));
    const n = v.files ?? 0;
    const size = v.size > 0 ? formatBytes(v.size) : t('offer.sizeUnknown');
    label(this.title, 'offer.batchTitle');
    label(this.wants, 'offer.wants', tn('offer.batchWants', n, { name, folder: v.name, size }));
    setText(this.folderName, v.name);
    this.folderName.title = v.name;
    setText(this.count, tn('batch.files', n));
    setText(this.size, size);
    this.size.title = v.size > 0 ? `${v.size.toLocaleString()} B` : '';
    setText(this.desc, v.description ?? '');
    setHidden(this.descRow, !v.description);
    this.showFolder(this.dirs.get(id));
    setText(this.lands, t('offer.batchLands', { name: v.name }));
    const open = this.batchToggle.getAttribute('aria-expanded') === 'true';
    setText(this.batchToggleText, open ? t('offer.batchHide') : tn('offer.batchShow', n));
    this.batchList?.relabel();
    label(this.decline, 'offer.decline');
    label(this.accept, 'offer.accept');
    label(this.hint, 'offer.hint');
    this.accept.disabled = this.busy;
  }

  /** Shows or hides the open batch's files, loading them the first time. */
  private toggleBatchFiles(): void {
    const id = this.current;
    const v = id != null ? this.state?.transfers.get(id) : undefined;
    if (id == null || v?.files == null) return;
    const open = this.batchToggle.getAttribute('aria-expanded') !== 'true';
    this.batchToggle.setAttribute('aria-expanded', String(open));
    this.batchRegion.hidden = !open;
    this.modal.box.classList.toggle('is-expanded', open);
    setText(this.batchToggleText, open ? t('offer.batchHide') : tn('offer.batchShow', v.files));
    if (open && !this.batchList) {
      this.batchList = new BatchFileList({
        id: 'offer-batch-box',
        testid: 'offer-batch-list',
        rowTestid: (f) => `offer-batch-file-${f}`,
        states: false,
        load: () => this.actions.listFiles(id),
      });
      this.batchListFor = id;
      this.batchRegion.replaceChildren(this.batchList.el);
      void this.batchList.load();
    }
  }

  /** Another prompt: the list of the batch asked about before goes (folded up). */
  private resetBatchList(): void {
    this.batchList?.dispose();
    this.batchList = null;
    this.batchListFor = null;
    this.batchRegion.replaceChildren();
    this.batchRegion.hidden = true;
    this.batchToggle.setAttribute('aria-expanded', 'false');
    this.modal.box.classList.remove('is-expanded');
  }

  private renderGroup(state: AppState, name: string, sender: string): void {
    this.modal.box.dataset.offerGroup = sender;
    const n = this.members.length;
    label(this.title, 'offer.title', tn('offer.groupTitle', n, { name }));
    label(this.wants, 'offer.groupWants');
    setHidden(this.descRow, true);
    let bytes = 0;
    let unknown = 0;
    for (const id of this.members) {
      const size = state.transfers.get(id)!.size;
      if (size > 0) bytes += size;
      else unknown++;
    }
    setText(
      this.total,
      unknown === n ? t('offer.sizeUnknown') : unknown ? t('offer.totalAtLeast', { size: formatBytes(bytes) }) : formatBytes(bytes),
    );
    this.total.title = bytes > 0 ? `${bytes.toLocaleString()} B` : '';
    this.showFolder(this.groupDirs.get(sender));
    label(this.hint, 'offer.groupHint');
    keyed(this.list, this.rows, this.members, (id) => this.makeRow(id));
    for (const id of this.members) this.fillRow(id, state.transfers.get(id)!);
    this.renderChoice();
  }

  private makeRow(id: number): HTMLElement {
    const boxId = `offer-check-${id}`;
    const box = h('input', { type: 'checkbox', id: boxId, class: 'offer-group-check', testid: `offer-group-check-${id}` });
    box.dataset.offerId = String(id);
    const dir = h('span', { class: 'offer-group-dir' });
    const name = h('span', { class: 'offer-group-name' });
    const desc = h('span', { class: 'offer-group-desc' });
    const size = h('span', { class: 'offer-group-size' });
    const row = h(
      'li',
      { class: 'offer-group-item', testid: `offer-group-item-${id}` },
      box,
      h('label', { for: boxId, class: 'offer-group-label' }, h('span', { class: 'offer-group-path' }, dir, name), desc),
      size,
    );
    row.dataset.offerId = String(id);
    this.rowParts.set(row, { box, dir, name, desc, size });
    return row;
  }

  private fillRow(id: number, v: TransferView): void {
    const p = this.rowParts.get(this.rows.get(id)!)!;
    // A folder's file shows its path inside the folder; any other description is a message.
    const path = folderPath(v.name, v.description);
    setText(p.dir, path ? path.slice(0, path.length - v.name.length) : '');
    setText(p.name, v.name);
    p.name.parentElement!.title = path ?? v.name;
    setText(p.desc, path ? '' : (v.description ?? ''));
    setHidden(p.desc, !!path || !v.description);
    setText(p.size, v.size > 0 ? formatBytes(v.size) : '—');
    p.size.title = v.size > 0 ? `${v.size.toLocaleString()} B` : t('offer.sizeUnknown');
    p.box.checked = !this.unchecked.has(id);
  }

  /** The boxes, "Select all", the count and the Accept button's label. */
  private renderChoice(): void {
    const n = this.members.length;
    const checked = this.checkedIds().length;
    this.all.checked = checked === n && n > 0;
    this.all.indeterminate = checked > 0 && checked < n;
    setText(this.chosen, t('offer.chosen', { i: checked, n }));
    label(this.decline, 'offer.declineAll');
    if (checked === n) label(this.accept, 'offer.acceptAll');
    else label(this.accept, 'offer.acceptSome', t('offer.acceptSome', { n: checked }));
    this.accept.disabled = this.busy || checked === 0;
  }

  private checkedIds(): number[] {
    return this.members.filter((id) => !this.unchecked.has(id));
  }

  private checkAll(on: boolean): void {
    for (const id of this.members) {
      if (on) this.unchecked.delete(id);
      else this.unchecked.add(id);
      const p = this.rowParts.get(this.rows.get(id)!);
      if (p) p.box.checked = on;
    }
    this.renderChoice();
  }

  /** ↑/↓ (Home/End) move between the boxes; Tab reaches each of them too. */
  private onListKey(e: KeyboardEvent): void {
    const keys = ['ArrowDown', 'ArrowUp', 'Home', 'End'];
    if (!keys.includes(e.key) || e.altKey || e.ctrlKey || e.metaKey) return;
    const boxes = [...this.list.querySelectorAll<HTMLInputElement>('input[type=checkbox]')];
    const at = boxes.indexOf(document.activeElement as HTMLInputElement);
    if (at < 0 || boxes.length === 0) return;
    const to = e.key === 'Home' ? 0 : e.key === 'End' ? boxes.length - 1 : at + (e.key === 'ArrowDown' ? 1 : -1);
    e.preventDefault();
    boxes[Math.max(0, Math.min(boxes.length - 1, to))]!.focus();
  }

  private showFolder(chosen: string | undefined): void {
    const dir = chosen ?? this.actions.defaultDir();
    setText(this.folder, dir || t('settings.downloadDirNone'));
    this.folder.title = dir;
  }

  private close(): void {
    this.current = null;
    this.group = null;
    this.members = [];
    this.resetBatchList();
    keyed(this.list, this.rows, [], (x) => this.makeRow(x));
    this.modal.hide();
  }

  private setBusy(b: boolean): void {
    this.busy = b;
    this.accept.disabled = b || (this.group != null && this.checkedIds().length === 0);
    this.decline.disabled = b;
    this.change.disabled = b;
  }

  private async pick(): Promise<void> {
    const id = this.current;
    const group = this.group;
    if (id == null) return;
    const dir = await this.actions.pickFolder();
    if (dir && this.current != null) {
      // Still the prompt it was asked for (a single offer may have become a group meanwhile).
      if (this.group != null && (this.group === group || (group == null && this.members.includes(id)))) {
        this.groupDirs.set(this.group, dir);
      } else if (this.group == null && group == null && this.current === id) {
        this.dirs.set(id, dir);
      }
      if (this.state) this.render(this.state);
    }
    this.change.focus();
  }

  private async answer(yes: boolean): Promise<void> {
    const id = this.current;
    if (id == null || this.busy) return;
    if (this.group != null) return this.answerGroup(yes, this.group);
    this.setBusy(true);
    try {
      if (yes) await this.actions.accept(id, this.dirs.get(id));
      else await this.actions.decline(id);
      this.dirs.delete(id);
    } finally {
      this.setBusy(false);
    }
  }

  /** Accept: the checked offers into the chosen folder, the others declined. Decline: all. */
  private async answerGroup(yes: boolean, sender: string): Promise<void> {
    const take = yes ? this.checkedIds() : [];
    if (yes && take.length === 0) return;
    const taken = new Set(take);
    const drop = this.members.filter((x) => !taken.has(x));
    const dir = this.groupDirs.get(sender);
    this.setBusy(true);
    try {
      // All at once; each reports its own failure (the app's actions toast it), and an
      // offer that could not be answered stays in the list.
      await Promise.allSettled([...take.map((x) => this.actions.accept(x, dir)), ...drop.map((x) => this.actions.decline(x))]);
    } finally {
      this.setBusy(false);
      if (this.group != null) this.renderChoice();
    }
  }
}
