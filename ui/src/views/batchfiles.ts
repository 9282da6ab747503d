// The files of one batch (a folder, or several files offered together as one offer),
// as `history({parent})` lists them: each file's path inside the batch and its size,
// and where asked its state. Shared by the batch card, the batch offer prompt and the
// history's batch rows.
//
// A batch may hold thousands of files: the list is loaded when first shown, rendered a
// page at a time ("Show 200 more"), and kept in a scrolling box. Reloads (a file done,
// the batch ended) are throttled and patch the rows in place, so the scroll position and
// the focus stay.

import { h, keyed, setAttr, setHidden, setText } from '../dom';
import { formatBytes } from '../format';
import { t, tn } from '../i18n';
import { asVerification } from '../store';
import type { HistoryEntry } from '../types';
import { verificationText } from './transfers';

/** Rows rendered at first, and added by each "Show more". */
export const BATCH_PAGE = 200;

/** At most one reload a second while files keep finishing. */
export const BATCH_REFRESH_MS = 1000;

export interface BatchFileListOptions {
  /** `data-testid` of the list (its "Show more" button: `${testid}-more`). */
  testid: string;
  /** `data-testid` of the row of file `id`. */
  rowTestid: (id: number) => string;
  /** `id` of the list's box (for `aria-controls` of the button that shows it). */
  id: string;
  /** The files (`history({parent})`), in any order. */
  load(): Promise<HistoryEntry[]>;
  /** Show each file's state (a running or past batch); an offer shows path and size only. */
  states: boolean;
  /** Rows per page (tests). */
  page?: number;
  /** Minimum time between two reloads (tests). */
  refreshMs?: number;
}

interface RowParts {
  dir: HTMLElement;
  name: HTMLElement;
  size: HTMLElement;
  state: HTMLElement | null;
}

/** `photos/2024/a.jpg` → [`photos/2024/`, `a.jpg`]. */
export function splitRelPath(rel: string): [string, string] {
  const i = rel.lastIndexOf('/');
  return i < 0 ? ['', rel] : [rel.slice(0, i + 1), rel.slice(i + 1)];
}

export class BatchFileList {
  readonly el: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly status: HTMLElement;
  private readonly more: HTMLButtonElement;
  private readonly rows = new Map<number, HTMLElement>();
  private readonly parts = new WeakMap<HTMLElement, RowParts>();
  private files: HistoryEntry[] = [];
  private shown = 0;
  private phase: 'idle' | 'loading' | 'loaded' | 'failed' = 'idle';
  private seq = 0;
  private lastLoad = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly page: number;
  private readonly refreshMs: number;
  /** Reloads done (tests). */
  loads = 0;

  constructor(private readonly opts: BatchFileListOptions) {
    this.page = opts.page ?? BATCH_PAGE;
    this.refreshMs = opts.refreshMs ?? BATCH_REFRESH_MS;
    // Focusable so that the box scrolls from the keyboard too.
    this.list = h('ul', { class: 'batch-file-list', testid: opts.testid, tabindex: '0', 'i18n-aria-label': 'batch.list' });
    this.status = h('p', { class: 'batch-files-status', role: 'status' });
    this.more = h('button', { type: 'button', class: 'btn btn-small btn-ghost batch-files-more', testid: `${opts.testid}-more`, hidden: true });
    this.more.addEventListener('click', () => {
      this.shown = Math.min(this.files.length, this.shown + this.page);
      this.render();
    });
    this.el = h('div', { class: 'batch-files', id: opts.id }, this.list, h('div', { class: 'batch-files-foot' }, this.status, this.more));
  }

  /** Loaded (or loading) at least once. */
  get started(): boolean {
    return this.phase !== 'idle';
  }

  /** How far the box is scrolled (kept when the list moves to a row made anew). */
  get scrollTop(): number {
    return this.list.scrollTop;
  }

  set scrollTop(v: number) {
    this.list.scrollTop = v;
  }

  /** The files listed now, in the batch's order. */
  get entries(): readonly HistoryEntry[] {
    return this.files;
  }

  /** Loads the list now (the first time it is shown). */
  async load(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const seq = ++this.seq;
    this.lastLoad = Date.now();
    this.loads++;
    if (this.phase !== 'loaded') this.phase = 'loading';
    this.render();
    try {
      const files = await this.opts.load();
      if (seq !== this.seq) return;
      // The order they were recorded in: the batch's (name) order.
      this.files = [...files].sort((a, b) => a.id - b.id);
      this.phase = 'loaded';
      this.shown = Math.min(this.files.length, Math.max(this.shown, this.page));
    } catch {
      if (seq !== this.seq) return;
      // A list already shown stays; only a first load that failed says so.
      if (this.phase !== 'loaded') this.phase = 'failed';
    }
    this.render();
  }

  /**
   * Loads the list again soon (a file finished, the batch ended): at once when the last
   * load is older than `refreshMs` (or `now`: the batch ended), else once that long
   * after it. Nothing before it was first shown.
   */
  refreshSoon(now = false): void {
    if (this.phase === 'idle') return;
    if (now) {
      void this.load();
      return;
    }
    if (this.timer !== undefined) return;
    const wait = this.lastLoad + this.refreshMs - Date.now();
    if (wait <= 0) {
      void this.load();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.load();
    }, wait);
  }

  /** Re-renders the texts (language change). */
  relabel(): void {
    this.render(true);
  }

  /** Stops a pending reload (the list is going away). */
  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.seq++;
  }

  private render(all = false): void {
    const visible = this.files.slice(0, this.shown);
    keyed(this.list, this.rows, visible.map((f) => f.id), (id) => this.makeRow(id));
    for (const f of visible) this.fillRow(f);
    const n = this.files.length;
    let text = '';
    if (this.phase === 'loading') text = t('batch.loading');
    else if (this.phase === 'failed') text = t('batch.loadFailed');
    else if (this.phase === 'loaded' && n === 0) text = t('batch.empty');
    else if (this.shown < n) text = t('batch.showing', { shown: this.shown, n });
    setText(this.status, text);
    setHidden(this.status, !text);
    setHidden(this.list, visible.length === 0);
    const left = n - this.shown;
    setHidden(this.more, this.phase !== 'loaded' || left <= 0);
    setText(this.more, t('batch.more', { n: Math.min(left, this.page) }));
    if (all) setAttr(this.list, 'aria-label', t('batch.list'));
  }

  private makeRow(id: number): HTMLElement {
    const dir = h('span', { class: 'batch-file-dir' });
    const name = h('span', { class: 'batch-file-name' });
    const size = h('span', { class: 'batch-file-size' });
    const state = this.opts.states ? h('span', { class: 'badge state-badge batch-file-state' }) : null;
    const row = h('li', { class: 'batch-file', testid: this.opts.rowTestid(id) }, h('span', { class: 'batch-file-path' }, dir, name), size, state);
    row.dataset.id = String(id);
    this.parts.set(row, { dir, name, size, state });
    return row;
  }

  private fillRow(f: HistoryEntry): void {
    const row = this.rows.get(f.id)!;
    const p = this.parts.get(row)!;
    const rel = f.rel_path ?? f.file_name;
    const [dir, name] = splitRelPath(rel);
    setText(p.dir, dir);
    setText(p.name, name);
    setAttr(p.name.parentElement!, 'title', rel);
    setText(p.size, formatBytes(f.size));
    setAttr(p.size, 'title', `${f.size.toLocaleString()} B`);
    if (!p.state) return;
    setAttr(row, 'data-state', f.state);
    // A completed file says how it was checked, like every completed transfer.
    const verified = f.state === 'completed' ? asVerification(f.verified) : null;
    const check = verified ? verificationText(f.direction, verified) : null;
    setAttr(row, 'data-verified', verified);
    setAttr(p.state, 'data-state', f.state);
    setAttr(p.state, 'data-verified', verified);
    setAttr(p.state, 'title', check ? check.tip : f.state === 'completed' ? null : f.error);
    setText(p.state, check ? check.badge : t(`state.${f.state}`));
  }
}

/** "312 files", or while it runs "12 / 312 files" (`done` known). */
export function filesText(files: number, done: number | null, completed: boolean): string {
  if (completed || done == null) return tn('batch.files', files);
  return tn('batch.filesOf', files, { done });
}
