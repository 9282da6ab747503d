// History: every transfer ever, from the `history` command, with filters (contact,
// direction, state, dates), name search, and per-row actions: those the engine allows
// on each record (its `actions`), none that would restart or drop a running transfer.
// A batch (a folder, or several files sent as one offer) is one row: a folder, its name,
// how many files, their size together; it opens (its chevron, a click on the folder or
// its name) to a row under it listing its files with their states, from
// `history({parent})`, which a batch_progress or the history's reload refreshes.

import { h, setText } from '../dom';
import { bareJid, formatBytes, formatDateTime, formatRelative, fromDateInput } from '../format';
import { icon, type IconName } from '../icons';
import { language, t, tn, type Key } from '../i18n';
import { asVerification, displayName, type AppState } from '../store';
import { TRANSFER_STATES, type Direction, type HistoryEntry, type HistoryQuery, type RecordActions, type TransferRecord, type TransferState } from '../types';
import { BatchFileList } from './batchfiles';
import { routeLabel, routeTip, setProtocolBadge, verificationText } from './transfers';

export const HISTORY_LIMIT = 500;

export interface HistoryActions {
  load(query: HistoryQuery): Promise<HistoryEntry[]>;
  open(r: HistoryEntry): void;
  showInFolder(r: HistoryEntry): void;
  resend(r: HistoryEntry): void;
  resume(r: HistoryEntry): void;
  /** Send the failed transfer by HTTP upload instead (`upload_instead`). */
  uploadInstead(r: HistoryEntry): void;
  remove(r: HistoryEntry): Promise<boolean>;
  /** A transfer with this id runs now (its record must not be removed or resumed). */
  isLive(id: number): boolean;
}

export interface HistoryFilters {
  peer: string;
  direction: '' | Direction;
  state: '' | TransferState;
  name: string;
  since: string;
  until: string;
}

export const NO_FILTERS: HistoryFilters = { peer: '', direction: '', state: '', name: '', since: '', until: '' };

/** The `history` command arguments for the filters (the until-date counts whole). */
export function queryOf(f: HistoryFilters, limit = HISTORY_LIMIT): HistoryQuery {
  const q: HistoryQuery = { limit };
  if (f.peer) q.peer = f.peer;
  if (f.direction) q.direction = f.direction;
  if (f.state) q.state = f.state;
  if (f.name.trim()) q.nameContains = f.name.trim();
  const since = fromDateInput(f.since);
  if (since != null) q.sinceMs = since;
  const until = fromDateInput(f.until);
  if (until != null) {
    const next = new Date(until);
    next.setDate(next.getDate() + 1);
    q.untilMs = next.getTime();
  }
  return q;
}

/**
 * The buttons a row shows: the actions the engine allowed when the history was loaded
 * (`actions`), less those that would start the transfer again or drop it while it runs
 * now (`live`: it may have started since).
 */
export function rowActions(e: HistoryEntry, live: boolean): RecordActions {
  const a = e.actions;
  return {
    open: a.open,
    show: a.show,
    resend: a.resend && !live,
    resume: a.resume && !live,
    upload: a.upload && !live,
    remove: a.remove && !live,
  };
}

/** The reason shown under the file name; none where the state badge says it all. */
export function errorNote(r: TransferRecord): string {
  if (!r.error || r.state === 'completed' || r.state === 'cancelled') return '';
  if (r.state === 'rejected' && r.error === 'declined') return '';
  return r.error;
}

export class HistoryView {
  readonly el: HTMLElement;
  private filters: HistoryFilters = { ...NO_FILTERS };
  private records: HistoryEntry[] = [];
  private loading = false;
  private seq = 0;
  private readonly peer: HTMLSelectElement;
  private readonly direction: HTMLSelectElement;
  private readonly stateSel: HTMLSelectElement;
  private readonly since: HTMLInputElement;
  private readonly until: HTMLInputElement;
  private readonly name: HTMLInputElement;
  private readonly reset: HTMLButtonElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly table: HTMLTableElement;
  private readonly status: HTMLElement;
  private readonly note: HTMLElement;
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  private state: AppState | null = null;
  private readonly byId = new Map<number, HistoryEntry>();
  /** Batch rows opened to their files. */
  private readonly expanded = new Set<number>();
  /** The file lists of the batches opened, kept while their rows are listed. */
  private readonly lists = new Map<number, BatchFileList>();

  constructor(private readonly actions: HistoryActions) {
    this.peer = h('select', { class: 'input', testid: 'history-peer', 'i18n-aria-label': 'history.contact' });
    this.direction = h('select', { class: 'input', testid: 'history-direction', 'i18n-aria-label': 'history.direction' });
    this.stateSel = h('select', { class: 'input', testid: 'history-state', 'i18n-aria-label': 'history.state' });
    this.since = h('input', { type: 'date', class: 'input', testid: 'history-since', 'i18n-aria-label': 'history.since' });
    this.until = h('input', { type: 'date', class: 'input', testid: 'history-until', 'i18n-aria-label': 'history.until' });
    this.name = h('input', {
      type: 'search',
      class: 'input',
      testid: 'history-search',
      'i18n-placeholder': 'history.search',
      'i18n-aria-label': 'history.search',
      autocomplete: 'off',
      spellcheck: 'false',
    });
    this.reset = h('button', { type: 'button', class: 'btn btn-small btn-ghost', i18n: 'history.reset', testid: 'history-reset' });
    for (const sel of [this.peer, this.direction, this.stateSel, this.since, this.until]) {
      sel.addEventListener('change', () => this.readFilters());
    }
    this.name.addEventListener('input', () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.readFilters(), 200);
    });
    this.reset.addEventListener('click', () => {
      this.filters = { ...NO_FILTERS };
      this.writeFilters();
      void this.refresh();
    });
    const label = (key: Key, control: HTMLElement) =>
      h('label', { class: 'filter' }, h('span', { class: 'filter-label', i18n: key }), control);

    this.tbody = h('tbody');
    this.tbody.addEventListener('click', (e) => this.onClick(e));
    this.table = h(
      'table',
      { class: 'history-table', testid: 'history-table' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { class: 'col-file', scope: 'col', i18n: 'history.col.file' }),
          h('th', { class: 'col-peer', scope: 'col', i18n: 'history.col.peer' }),
          h('th', { class: 'col-size', scope: 'col', i18n: 'history.col.size' }),
          h('th', { class: 'col-route', scope: 'col', i18n: 'history.col.route' }),
          h('th', { class: 'col-state', scope: 'col', i18n: 'history.col.state' }),
          h('th', { class: 'col-date', scope: 'col', i18n: 'history.col.date' }),
          h('th', { class: 'col-actions', scope: 'col' }, h('span', { class: 'sr-only', i18n: 'history.col.actions' })),
        ),
      ),
      this.tbody,
    );
    this.status = h('p', { class: 'history-status', role: 'status' });
    this.note = h('p', { class: 'history-note', hidden: true });
    this.el = h(
      'section',
      { class: 'history-view', 'i18n-aria-label': 'history.title', testid: 'history-view' },
      h(
        'div',
        { class: 'history-filters' },
        h('label', { class: 'filter filter-search' }, icon('search', 'icon search-icon'), this.name),
        label('history.contact', this.peer),
        label('history.direction', this.direction),
        label('history.state', this.stateSel),
        label('history.since', this.since),
        label('history.until', this.until),
        this.reset,
      ),
      h('div', { class: 'history-scroll' }, this.table, this.status),
      this.note,
    );
    this.fillSelects();
  }

  /** Fills the option lists (contacts and translated labels). */
  fillSelects(): void {
    const opt = (value: string, text: string) => h('option', { value }, text);
    const peers = this.state ? [...this.state.contacts.values()].sort((a, b) => displayName(a).localeCompare(displayName(b))) : [];
    const known = new Set(peers.map((c) => c.jid));
    const extra = this.filters.peer && !known.has(this.filters.peer) ? [opt(this.filters.peer, this.filters.peer)] : [];
    this.peer.replaceChildren(
      opt('', t('history.anyContact')),
      ...peers.map((c) => opt(c.jid, c.name ? `${c.name} (${c.jid})` : c.jid)),
      ...extra,
    );
    this.direction.replaceChildren(
      opt('', t('history.anyDirection')),
      opt('outgoing', t('history.sent')),
      opt('incoming', t('history.received')),
    );
    this.stateSel.replaceChildren(opt('', t('history.anyState')), ...TRANSFER_STATES.map((s) => opt(s, t(`state.${s}`))));
    this.writeFilters();
  }

  setContext(state: AppState): void {
    const before = this.state?.contacts;
    this.state = state;
    if (before !== state.contacts || this.peer.options.length !== state.contacts.size + 1) this.fillSelects();
  }

  /** Shows this contact's transfers only. */
  filterByPeer(jid: string): void {
    this.filters = { ...NO_FILTERS, peer: jid };
    this.fillSelects();
    void this.refresh();
  }

  private writeFilters(): void {
    this.peer.value = this.filters.peer;
    this.direction.value = this.filters.direction;
    this.stateSel.value = this.filters.state;
    this.since.value = this.filters.since;
    this.until.value = this.filters.until;
    if (this.name.value !== this.filters.name) this.name.value = this.filters.name;
  }

  private readFilters(): void {
    this.filters = {
      peer: this.peer.value,
      direction: this.direction.value as HistoryFilters['direction'],
      state: this.stateSel.value as HistoryFilters['state'],
      name: this.name.value,
      since: this.since.value,
      until: this.until.value,
    };
    void this.refresh();
  }

  get currentFilters(): HistoryFilters {
    return { ...this.filters };
  }

  /** Loads the records for the current filters (on open, on filter change, after events). */
  async refresh(): Promise<void> {
    const seq = ++this.seq;
    this.loading = true;
    if (!this.records.length) this.renderStatus();
    try {
      const recs = await this.actions.load(queryOf(this.filters));
      if (seq !== this.seq) return;
      this.records = recs;
    } catch {
      if (seq !== this.seq) return;
      this.records = [];
    } finally {
      if (seq === this.seq) this.loading = false;
    }
    this.renderRows();
    // What made the history reload (a transfer event) may have moved the files too.
    // (The history's own reloads are already spaced out: the lists follow at once.)
    for (const id of this.expanded) this.lists.get(id)?.refreshSoon(true);
  }

  /** A file of batch `id` is done (`batch_progress`): its open list loads again, throttled. */
  batchChanged(id: number): void {
    if (this.expanded.has(id)) this.lists.get(id)?.refreshSoon();
  }

  /** Opens or folds batch row `id` (its files load when first opened). */
  toggleBatch(id: number, open = !this.expanded.has(id)): void {
    const r = this.byId.get(id);
    if (!r || r.files == null) return;
    if (open) this.expanded.add(id);
    else this.expanded.delete(id);
    const focused = document.activeElement;
    this.renderRows();
    // The expander was made again: the focus stays on it.
    if (focused instanceof HTMLElement && focused.dataset.testid === `history-${id}-expand`) {
      this.tbody.querySelector<HTMLElement>(`[data-testid="history-${id}-expand"]`)?.focus();
    }
  }

  /** The list of batch `id`'s files, made when first opened. */
  private listOf(id: number): BatchFileList {
    let list = this.lists.get(id);
    if (!list) {
      list = new BatchFileList({
        id: `history-${id}-files-box`,
        testid: `history-${id}-files`,
        rowTestid: (f) => `history-${id}-file-${f}`,
        states: true,
        load: () => this.actions.load({ parent: id }),
      });
      this.lists.set(id, list);
      void list.load();
    }
    return list;
  }

  /** Re-renders the texts (language change). */
  relabel(): void {
    this.fillSelects();
    this.renderRows();
    for (const list of this.lists.values()) list.relabel();
  }

  private renderStatus(): void {
    const none = Object.values(this.filters).every((v) => !v);
    this.reset.hidden = none;
    const text = this.loading && !this.records.length ? t('history.loading') : this.records.length === 0 ? t(none ? 'history.emptyAll' : 'history.empty') : tn('history.count', this.records.length);
    setText(this.status, text);
    this.status.classList.toggle('is-empty', this.records.length === 0);
    this.note.hidden = this.records.length < HISTORY_LIMIT;
    setText(this.note, t('history.limited', { n: HISTORY_LIMIT }));
  }

  private renderRows(): void {
    const lang = language();
    const now = Date.now();
    this.byId.clear();
    for (const r of this.records) this.byId.set(r.id, r);
    // Opened batches no longer listed (filtered out, removed) fold up and drop their list.
    for (const id of [...this.expanded]) if (!this.byId.has(id)) this.expanded.delete(id);
    for (const [id, list] of this.lists) {
      if (this.byId.get(id)?.files != null) continue;
      list.dispose();
      this.lists.delete(id);
    }
    const rows = this.records.flatMap((r) => {
      const can = rowActions(r, this.actions.isLive(r.id));
      const peerBare = bareJid(r.peer_jid);
      const contact = this.state?.contacts.get(peerBare);
      const btn = (action: keyof typeof can, iconName: IconName, label: Key) =>
        can[action]
          ? h(
              'button',
              {
                type: 'button',
                class: 'btn btn-icon btn-ghost',
                title: t(label),
                'aria-label': `${t(label)}: ${r.file_name}`,
                testid: `history-${r.id}-${action}`,
              },
              icon(iconName),
            )
          : h('span', { class: 'btn-icon-placeholder', 'aria-hidden': 'true' });
      const buttons = [
        btn('open', 'open', 'history.open'),
        btn('show', 'folder', 'history.showInFolder'),
        btn('resend', 'resend', 'history.resend'),
        btn('resume', 'resume', 'history.resume'),
        btn('upload', 'upload', 'history.uploadInstead'),
        btn('remove', 'trash', 'history.remove'),
      ];
      for (const b of buttons) if (b instanceof HTMLButtonElement) b.dataset.action = b.dataset.testid!.split('-').pop()!;
      const batch = r.files != null;
      const open = batch && this.expanded.has(r.id);
      const dirLabel = batch
        ? t(r.direction === 'incoming' ? 'batch.incoming' : 'batch.outgoing')
        : t(r.direction === 'incoming' ? 'history.received' : 'history.sent');
      const toggleLabel = t(open ? 'batch.hideFilesOf' : 'batch.showFilesOf', { name: r.file_name });
      const expander = batch
        ? h(
            'button',
            {
              type: 'button',
              class: 'batch-expander',
              testid: `history-${r.id}-expand`,
              'aria-expanded': String(open),
              'aria-controls': `history-${r.id}-files-box`,
              'aria-label': toggleLabel,
              title: toggleLabel,
              'data-toggle': 'files',
            },
            icon('chevronDown', 'icon batch-chevron'),
          )
        : null;
      // A completed record says how it was checked ("Verified", "Not verified", …).
      const verified = r.state === 'completed' ? asVerification(r.verified) : null;
      const check = verified ? verificationText(r.direction, verified) : null;
      const tr = h(
        'tr',
        {
          testid: `history-${r.id}`,
          class: open ? 'is-expanded' : null,
          'data-state': r.state,
          'data-direction': r.direction,
          'data-verified': verified,
          'data-kind': batch ? 'batch' : null,
        },
        h(
          'td',
          { class: 'col-file' },
          h(
            'div',
            { class: 'file-cell' },
            expander,
            h(
              'span',
              { class: 'dir-icon', 'data-dir': r.direction, 'data-kind': batch ? 'batch' : null, 'data-toggle': batch ? 'files' : null, role: 'img', 'aria-label': dirLabel, title: dirLabel },
              icon(batch ? 'folder' : r.direction === 'incoming' ? 'down' : 'up'),
            ),
            h(
              'div',
              { class: 'file-lines' },
              h('span', { class: 'cell-main', title: r.local_path ?? r.file_name, 'data-toggle': batch ? 'files' : null }, r.file_name),
              batch ? h('span', { class: 'cell-sub batch-count', testid: `history-${r.id}-count` }, tn('batch.files', r.files!)) : null,
              errorNote(r) ? h('span', { class: 'cell-sub cell-error', title: r.error! }, errorNote(r)) : null,
            ),
          ),
        ),
        h(
          'td',
          { class: 'col-peer' },
          h('span', { class: 'cell-main', title: r.peer_jid }, contact ? displayName(contact) : peerBare),
          h('span', { class: 'cell-sub', title: r.peer_jid }, peerBare),
        ),
        h('td', { class: 'col-size', title: `${r.size.toLocaleString()} B` }, formatBytes(r.size)),
        h(
          'td',
          { class: 'col-route' },
          r.route ? this.routePair(r) : '—',
        ),
        h(
          'td',
          { class: 'col-state' },
          h(
            'span',
            { class: 'badge state-badge', 'data-state': r.state, 'data-verified': verified, title: check?.tip },
            check ? h('span', { class: 'badge-icon' }, icon(check.icon)) : null,
            h('span', { class: 'badge-text' }, check ? check.badge : t(`state.${r.state}`)),
          ),
        ),
        h('td', { class: 'col-date', title: formatDateTime(r.created_at, lang) }, formatRelative(r.created_at, now, lang)),
        h('td', { class: 'col-actions' }, h('div', { class: 'row-actions' }, ...buttons)),
      );
      tr.dataset.id = String(r.id);
      if (!open) return [tr];
      const list = this.listOf(r.id);
      const files = h('tr', { class: 'batch-files-row' }, h('td', { colspan: '7' }, list.el));
      files.dataset.batch = String(r.id);
      return [tr, files];
    });
    // The open lists move into the rows made anew: where they were scrolled to, and a
    // focus inside them, stay.
    const scrolled = [...this.lists].map(([id, list]) => [id, list.scrollTop] as const);
    const active = document.activeElement as HTMLElement | null;
    this.tbody.replaceChildren(...rows);
    for (const [id, top] of scrolled) {
      const list = this.lists.get(id);
      if (list && top) list.scrollTop = top;
    }
    if (active && active !== document.activeElement && active.isConnected && this.tbody.contains(active)) active.focus({ preventScroll: true });
    this.table.hidden = rows.length === 0;
    this.renderStatus();
  }

  /** The route badge of record `r`, after the protocol that set it up (SI, Jingle) when known. */
  private routePair(r: HistoryEntry): HTMLElement {
    const protocol = h('span', { class: 'badge protocol-badge', role: 'img', testid: `history-${r.id}-protocol` });
    setProtocolBadge(protocol, r.protocol ?? null);
    return h(
      'span',
      { class: 'route-pair' },
      protocol,
      h('span', { class: 'badge route-badge', 'data-route': r.route, title: routeTip(r.route, r.streamhost), testid: `history-${r.id}-route` }, routeLabel(r.route)),
    );
  }

  private onClick(e: MouseEvent): void {
    const toggle = (e.target as HTMLElement).closest<HTMLElement>('[data-toggle]');
    const row = toggle?.closest<HTMLElement>('tr[data-id]');
    if (toggle && row) {
      this.toggleBatch(Number(row.dataset.id));
      return;
    }
    const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-action]');
    const tr = b?.closest<HTMLElement>('tr[data-id]');
    if (!b || !tr) return;
    const r = this.byId.get(Number(tr.dataset.id));
    if (!r) return;
    switch (b.dataset.action) {
      case 'open':
        return this.actions.open(r);
      case 'show':
        return this.actions.showInFolder(r);
      case 'resend':
        return this.actions.resend(r);
      case 'resume':
        return this.actions.resume(r);
      case 'upload':
        return this.actions.uploadInstead(r);
      case 'remove':
        void this.actions.remove(r).then((ok) => {
          if (!ok) return;
          this.records = this.records.filter((x) => x.id !== r.id);
          this.renderRows();
        });
        return;
    }
  }
}
