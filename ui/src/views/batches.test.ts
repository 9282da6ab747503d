// @vitest-environment happy-dom
// Batches (a folder, or several files offered together as one offer) in the views: the
// batch card and its files, the batch offer prompt, the history's batch rows, the
// shared file list.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setLanguage } from '../i18n';
import { applyEvent, emptyDirty, initialState, setContacts, type AppState } from '../store';
import type { ContactView, EngineEvent, HistoryEntry, HistoryQuery, RecordActions, TransferRecord, TransferState } from '../types';
import { BatchFileList, splitRelPath } from './batchfiles';
import { HistoryView } from './history';
import { OfferDialog } from './offer';
import { TransfersPane } from './transfers';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

const contacts: ContactView[] = [
  { jid: 'bob@localhost', name: 'Bob', subscription: 'both', pending_out: false, groups: [], resources: [{ resource: 'pc', show: 'available', status: null, priority: 5 }] },
  { jid: 'carol@localhost', name: 'Carol', subscription: 'both', pending_out: false, groups: [], resources: [] },
];

function stateWith(events: EngineEvent[], s: AppState = initialState()): AppState {
  const d = emptyDirty();
  setContacts(s, contacts, d);
  for (const e of events) applyEvent(s, e, d, 1000);
  return s;
}

const apply = (s: AppState, ...events: EngineEvent[]) => {
  for (const e of events) applyEvent(s, e, emptyDirty(), 2000);
  return s;
};

/** Batch `id` of `files` files offered by Bob (or sent to him). */
const batchOffer = (id: number, files: number, direction: 'incoming' | 'outgoing' = 'incoming', name = 'photos', size = 1.4 * GIB): EngineEvent => ({
  type: 'transfer_offered',
  id,
  direction,
  peer: 'bob@localhost/pc',
  name,
  size: Math.round(size),
  description: null,
  resume_from: 0,
  files,
});

const single = (id: number, name = `f${id}.zip`, peer = 'bob@localhost/pc'): EngineEvent => ({
  type: 'transfer_offered',
  id,
  direction: 'incoming',
  peer,
  name,
  size: 5 * MIB,
  description: null,
  resume_from: 0,
  files: null,
});

const NONE: RecordActions = { open: false, show: false, resend: false, resume: false, upload: false, remove: false };

/** A history entry for file `id` of batch `parent` at `rel` (or, with `files`, a batch). */
function entry(id: number, extra: Partial<TransferRecord> = {}, actions: Partial<RecordActions> = {}): HistoryEntry {
  return {
    id, sid: 's', direction: 'incoming', account: 'alice@localhost', peer_jid: 'bob@localhost/pc', file_name: `f${id}`, local_path: null, size: 1024,
    md5: null, sha256: null, date: null, description: null, route: 's5b-direct', streamhost: null, state: 'completed', bytes_done: 1024,
    error: null, fail_reason: null, created_at: 0, updated_at: 0, finished_at: 0, offset: 0, attempts: 1, url: null, verified: 'sha256',
    parent: null, files: null, rel_path: null, protocol: null,
    ...extra,
    actions: { ...NONE, ...actions },
  };
}

/** `n` files of batch `parent`, ids from `first` on, the first `done` completed, the rest `rest`. */
function filesOf(parent: number, n: number, done = n, rest: TransferState = 'active', first = parent + 1): HistoryEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const rel = i % 3 === 0 ? `2024/IMG_${1000 + i}.jpg` : `IMG_${1000 + i}.jpg`;
    return entry(first + i, {
      parent,
      rel_path: rel,
      file_name: rel.split('/').pop()!,
      size: (i + 1) * 1024,
      state: i < done ? 'completed' : rest,
      verified: i < done ? 'sha256' : 'none',
    });
  });
}

const noopTransferActions = (listFiles: (id: number) => Promise<HistoryEntry[]> = async () => []) => ({
  cancel: vi.fn(),
  accept: vi.fn(),
  decline: vi.fn(),
  open: vi.fn(),
  showInFolder: vi.fn(),
  resume: vi.fn(),
  retry: vi.fn(),
  uploadInstead: vi.fn(),
  dismiss: vi.fn(),
  clearFinished: vi.fn(),
  listFiles: vi.fn(listFiles),
});

const $ = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`)!;
const visibleButtons = (id: number) =>
  [...document.querySelectorAll<HTMLButtonElement>(`[data-testid="transfer-${id}"] button[data-action]`)].filter((b) => !b.hidden).map((b) => b.dataset.action);

beforeEach(() => {
  document.body.replaceChildren();
  setLanguage('en');
});

afterEach(() => {
  setLanguage('en');
  vi.useRealTimers();
});

describe('batch card', () => {
  function running(files = 312) {
    return stateWith([
      batchOffer(5, files, 'outgoing'),
      { type: 'transfer_started', id: 5, route: 's5b-proxy', protocol: 'si', streamhost: 'proxy.localhost', offset: 0 },
      { type: 'transfer_progress', id: 5, bytes: 512 * MIB, total: 1024 * MIB, bytes_per_sec: 64 * MIB },
      { type: 'batch_progress', id: 5, files_done: 12, files },
    ]);
  }

  it('shows a folder, the name, "12 / 312 files", bytes, speed, ETA, route and Cancel', () => {
    const pane = new TransfersPane(noopTransferActions());
    document.body.append(pane.el);
    pane.render(running(), emptyDirty(), true);
    const card = $('transfer-5');
    expect(card.dataset.kind).toBe('batch');
    expect(card.dataset.state).toBe('active');
    expect(card.querySelector<HTMLElement>('.dir-icon')!.dataset.icon).toBe('folder');
    expect(card.querySelector('.dir-icon')!.getAttribute('aria-label')).toBe('Outgoing folder');
    expect(card.querySelector('.transfer-name')!.textContent).toBe('photos');
    expect(card.querySelector('.transfer-peer')!.textContent).toBe('to Bob');
    expect($('transfer-5-count').textContent).toBe('12 / 312 files');
    expect(card.querySelector('.transfer-bytes')!.textContent).toBe('512 MiB / 1.0 GiB');
    expect(card.querySelector('.transfer-speed')!.textContent).toBe('64.0 MiB/s');
    expect(card.querySelector('.transfer-eta')!.textContent).toBe('8 s left');
    expect($('transfer-5-route').textContent).toBe('Proxy');
    expect(visibleButtons(5)).toEqual(['cancel']);
    // The count follows the next batch_progress.
    const s = running();
    apply(s, { type: 'batch_progress', id: 5, files_done: 13, files: 312 });
    const d = emptyDirty();
    d.transfers.add(5);
    pane.render(s, d);
    expect($('transfer-5-count').textContent).toBe('13 / 312 files');
  });

  it('counts one file as one, and routes cancel, retry and open (the folder) to the batch id', () => {
    const actions = noopTransferActions();
    const pane = new TransfersPane(actions);
    document.body.append(pane.el);
    const s = stateWith([batchOffer(1, 1, 'outgoing'), batchOffer(2, 40, 'outgoing'), batchOffer(3, 40, 'incoming')]);
    apply(
      s,
      { type: 'transfer_failed', id: 2, name: 'photos', reason: 'declined', error: 'declined', resumable: false, upload_fallback: false },
      { type: 'transfer_started', id: 3, route: 's5b-direct', protocol: 'si', streamhost: null, offset: 0 },
      { type: 'transfer_completed', id: 3, name: 'photos', path: '/dl/photos (1)', size: 1.4 * GIB, bytes: 1.4 * GIB, sha256: '', route: 's5b-direct', seconds: 20, verified: 'sha256' },
    );
    pane.render(s, emptyDirty(), true);
    expect($('transfer-1-count').textContent).toBe('0 / 1 file');
    $('transfer-1-cancel').click();
    expect(actions.cancel).toHaveBeenCalledWith(1);
    expect(visibleButtons(2)).toEqual(['retry', 'dismiss']);
    $('transfer-2-retry').click();
    expect(actions.retry).toHaveBeenCalledWith(2);
    // Completed: every file counted; "Open folder" opens the batch's folder (same command as a file).
    expect($('transfer-3-count').textContent).toBe('40 files');
    expect($('transfer-3-open').textContent).toBe('Open folder');
    expect($('transfer-3').querySelector('.dir-icon')!.getAttribute('aria-label')).toBe('Incoming folder');
    $('transfer-3-open').click();
    expect(actions.open).toHaveBeenCalledWith(3);
  });

  it('leaves single-file cards as they were: no folder, no count, no file list', () => {
    const pane = new TransfersPane(noopTransferActions());
    document.body.append(pane.el);
    pane.render(stateWith([single(4)]), emptyDirty(), true);
    const card = $('transfer-4');
    expect(card.hasAttribute('data-kind')).toBe(false);
    expect(card.querySelector<HTMLElement>('.dir-icon')!.dataset.icon).toBe('down');
    expect(document.querySelector('[data-testid="transfer-4-count"]')).toBeNull();
    expect(document.querySelector('[data-testid="transfer-4-expand"]')).toBeNull();
  });

  it('expands to its files with their states (mouse and keyboard), loaded once with history({parent})', async () => {
    const files = filesOf(5, 312, 12);
    const actions = noopTransferActions(async () => files);
    const pane = new TransfersPane(actions);
    document.body.append(pane.el);
    pane.render(running(), emptyDirty(), true);
    const toggle = $('transfer-5-expand') as HTMLButtonElement;
    // A real button: in the Tab order, Enter and Space press it.
    expect(toggle.tagName).toBe('BUTTON');
    expect(toggle.type).toBe('button');
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    const region = document.getElementById(toggle.getAttribute('aria-controls')!)!;
    expect(region.hidden).toBe(true);
    expect(actions.listFiles).not.toHaveBeenCalled();
    expect(toggle.getAttribute('aria-label')).toBe('Show the files in photos');

    toggle.focus();
    toggle.click();
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    expect(toggle.getAttribute('aria-label')).toBe('Hide the files in photos');
    expect(region.hidden).toBe(false);
    expect(actions.listFiles).toHaveBeenCalledWith(5);
    await vi.waitFor(() => expect(document.querySelectorAll('[data-testid="transfer-5-files"] > li')).toHaveLength(200));
    const row = $('transfer-5-file-6');
    expect(row.dataset.state).toBe('completed');
    expect(row.querySelector('.batch-file-path')!.textContent).toBe('2024/IMG_1000.jpg');
    expect(row.querySelector('.batch-file-dir')!.textContent).toBe('2024/');
    expect(row.querySelector('.batch-file-size')!.textContent).toBe('1.0 KiB');
    // Completed files say how they were checked, never a plain "Completed".
    expect(row.querySelector('.batch-file-state')!.textContent).toBe('Verified');
    expect($('transfer-5-file-20').dataset.state).toBe('active');
    expect($('transfer-5-file-20').querySelector('.batch-file-state')!.textContent).toBe('In progress');
    // Thousands of files are rendered a page at a time.
    expect(region.textContent).toContain('Showing 200 of 312 files');
    ($('transfer-5-files-more') as HTMLButtonElement).click();
    expect(document.querySelectorAll('[data-testid="transfer-5-files"] > li')).toHaveLength(312);
    expect($('transfer-5-files-more').hidden).toBe(true);
    expect(document.activeElement).toBe(toggle);

    toggle.click();
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    expect(region.hidden).toBe(true);
    // Opened again: the list is there, loaded again for what changed meanwhile.
    toggle.click();
    expect(region.hidden).toBe(false);
    expect(document.querySelectorAll('[data-testid="transfer-5-files"] > li')).toHaveLength(312);
  });

  it('reloads the open list when files finish (batch_progress) and when the batch completes', async () => {
    let done = 1;
    const actions = noopTransferActions(async () => filesOf(5, 4, done));
    const pane = new TransfersPane(actions);
    document.body.append(pane.el);
    const s = running(4);
    pane.render(s, emptyDirty(), true);
    $('transfer-5-expand').click();
    await vi.waitFor(() => expect(document.querySelectorAll('[data-testid="transfer-5-files"] > li[data-state="completed"]')).toHaveLength(1));
    const calls = () => actions.listFiles.mock.calls.length;
    const before = calls();
    const dirty = () => {
      const d = emptyDirty();
      d.transfers.add(5);
      return d;
    };
    done = 3;
    apply(s, { type: 'batch_progress', id: 5, files_done: 3, files: 4 });
    pane.render(s, dirty());
    // At most one reload a second while files keep finishing.
    await vi.waitFor(() => expect(document.querySelectorAll('[data-testid="transfer-5-files"] > li[data-state="completed"]')).toHaveLength(3), { timeout: 2500 });
    expect(calls()).toBe(before + 1);
    // The end shows at once.
    done = 4;
    apply(s, { type: 'transfer_completed', id: 5, name: 'photos', path: '/home/alice/photos', size: 4, bytes: 4, sha256: '', route: 's5b-direct', seconds: 1, verified: 'sha256' });
    pane.render(s, dirty());
    expect(calls()).toBe(before + 2);
    await vi.waitFor(() => expect(document.querySelectorAll('[data-testid="transfer-5-files"] > li[data-state="completed"]')).toHaveLength(4));
    expect($('transfer-5-count').textContent).toBe('4 files');
    // Progress of a batch whose list is closed loads nothing.
    $('transfer-5-expand').click();
    const closed = calls();
    apply(s, { type: 'batch_progress', id: 5, files_done: 4, files: 4 });
    pane.render(s, dirty());
    expect(calls()).toBe(closed);
  });

  it('says when the list could not be loaded, and relabels in Simplified Chinese', async () => {
    const pane = new TransfersPane(noopTransferActions(async () => Promise.reject(new Error('store'))));
    document.body.append(pane.el);
    const s = running();
    pane.render(s, emptyDirty(), true);
    $('transfer-5-expand').click();
    await vi.waitFor(() => expect($('transfer-5').textContent).toContain('The list of files could not be loaded.'));
    setLanguage('zh-CN');
    pane.render(s, emptyDirty(), true);
    expect($('transfer-5-count').textContent).toBe('12 / 312 个文件');
    expect($('transfer-5-expand').textContent).toBe('文件');
    expect($('transfer-5-expand').getAttribute('aria-label')).toBe('隐藏 photos 中的文件');
    expect($('transfer-5').textContent).toContain('无法加载文件列表。');
    expect($('transfer-5').querySelector('.dir-icon')!.getAttribute('aria-label')).toBe('发送的文件夹');
  });
});

function modalHost(): { host: HTMLElement; main: HTMLElement; outside: HTMLButtonElement } {
  const host = document.createElement('div');
  const main = document.createElement('main');
  const outside = document.createElement('button');
  main.append(outside);
  document.body.append(main, host);
  return { host, main, outside };
}

describe('batch offer prompt', () => {
  function setup(files: HistoryEntry[] = filesOf(2, 312, 0, 'offered')) {
    const { host, main, outside } = modalHost();
    const actions = {
      accept: vi.fn(async (_id: number, _dir: string | undefined) => {}),
      decline: vi.fn(async (_id: number) => {}),
      pickFolder: vi.fn(async () => '/media/backup'),
      defaultDir: () => '/home/alice/Downloads',
      listFiles: vi.fn(async (_id: number) => files),
    };
    const dialog = new OfferDialog(host, () => [main], actions);
    outside.focus();
    return { dialog, actions, main };
  }
  const box = () => $('offer-dialog');
  const items = () => document.querySelectorAll('[data-testid="offer-batch-list"] > li');

  it('says who sends which folder, how many files and how big, in its own labelled prompt', () => {
    const { dialog, main } = setup();
    dialog.render(stateWith([batchOffer(2, 312)]));
    expect(dialog.isOpen).toBe(true);
    expect(main.inert).toBe(true);
    expect(box().getAttribute('aria-modal')).toBe('true');
    expect(box().classList.contains('is-batch')).toBe(true);
    expect(box().classList.contains('is-group')).toBe(false);
    expect(box().dataset.offerId).toBe('2');
    expect(box().dataset.offerBatch).toBe('2');
    expect(document.getElementById(box().getAttribute('aria-labelledby')!)!.textContent).toBe('Incoming folder');
    expect(document.getElementById(box().getAttribute('aria-describedby')!)!.textContent).toBe('Bob wants to send the folder photos — 312 files, 1.4 GiB');
    expect($('offer-batch-name').textContent).toBe('photos');
    expect($('offer-batch-count').textContent).toBe('312 files');
    expect($('offer-size').textContent).toBe('1.4 GiB');
    expect($('offer-folder').textContent).toBe('/home/alice/Downloads');
    expect($('offer-batch-lands').textContent).toBe('A new folder “photos” is made there (“photos (1)” if that name is taken).');
    // A single file's rows stay hidden; the grouped prompt's list too.
    expect($('offer-file').closest('[hidden]')).not.toBeNull();
    expect($('offer-group-list').closest('[hidden]')).not.toBeNull();
    expect(document.activeElement).toBe($('offer-accept'));
    // One file: plural-aware.
    dialog.render(stateWith([batchOffer(3, 1, 'incoming', 'notes', 2048)]));
    expect(document.getElementById('offer-wants')!.textContent).toBe('Bob wants to send the folder notes — 1 file, 2.0 KiB');
    expect($('offer-batch-count').textContent).toBe('1 file');
  });

  it('shows the files one click away: rel_path and size, scrolling, a page at a time', async () => {
    const { dialog, actions } = setup();
    dialog.render(stateWith([batchOffer(2, 312)]));
    const toggle = $('offer-batch-toggle') as HTMLButtonElement;
    expect(toggle.tagName).toBe('BUTTON');
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    expect(toggle.textContent).toBe('Show the 312 files');
    const region = document.getElementById(toggle.getAttribute('aria-controls')!)!;
    expect(region.hidden).toBe(true);
    expect(actions.listFiles).not.toHaveBeenCalled();
    toggle.click();
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    expect(toggle.textContent).toBe('Hide the files');
    expect(region.hidden).toBe(false);
    expect(actions.listFiles).toHaveBeenCalledWith(2);
    await vi.waitFor(() => expect(items()).toHaveLength(200));
    const first = $('offer-batch-file-3');
    expect(first.querySelector('.batch-file-path')!.textContent).toBe('2024/IMG_1000.jpg');
    expect(first.querySelector('.batch-file-size')!.textContent).toBe('1.0 KiB');
    // An offer lists path and size, no state.
    expect(first.querySelector('.batch-file-state')).toBeNull();
    expect($('offer-batch-list').getAttribute('tabindex')).toBe('0');
    expect(region.textContent).toContain('Showing 200 of 312 files');
    ($('offer-batch-list-more') as HTMLButtonElement).click();
    expect(items()).toHaveLength(312);
    // Folded and opened again: loaded once.
    toggle.click();
    expect(region.hidden).toBe(true);
    toggle.click();
    expect(actions.listFiles).toHaveBeenCalledTimes(1);
  });

  it('accepts into the folder chosen with Change…, and declines with Decline or Esc', async () => {
    const { dialog, actions } = setup();
    dialog.render(stateWith([batchOffer(2, 312), batchOffer(9, 3, 'incoming', 'music')]));
    expect($('offer-queue').textContent).toBe('1 of 2');
    $('offer-change-folder').click();
    await vi.waitFor(() => expect($('offer-folder').textContent).toBe('/media/backup'));
    $('offer-accept').click();
    await vi.waitFor(() => expect(actions.accept).toHaveBeenCalledWith(2, '/media/backup'));
    // The app drops answered offers: the next batch, with the default folder, folded.
    dialog.render(stateWith([batchOffer(9, 3, 'incoming', 'music')]));
    expect(box().dataset.offerBatch).toBe('9');
    expect($('offer-folder').textContent).toBe('/home/alice/Downloads');
    expect($('offer-batch-toggle').getAttribute('aria-expanded')).toBe('false');
    $('offer-decline').click();
    await vi.waitFor(() => expect(actions.decline).toHaveBeenCalledWith(9));
    box().dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    await vi.waitFor(() => expect(actions.decline).toHaveBeenCalledTimes(2));
    expect(actions.accept).toHaveBeenCalledTimes(1);
  });

  it('is never merged into the grouped prompt of single files from the same sender', async () => {
    const { dialog, actions } = setup();
    // Bob: a file, the folder, another file. The two files are asked about together, the folder on its own.
    const s = stateWith([single(1, 'a.txt'), batchOffer(2, 312), single(3, 'b.txt')]);
    dialog.render(s);
    expect(box().classList.contains('is-group')).toBe(true);
    expect(box().classList.contains('is-batch')).toBe(false);
    expect([...document.querySelectorAll<HTMLElement>('[data-testid="offer-group-list"] > li')].map((li) => li.dataset.offerId)).toEqual(['1', '3']);
    expect($('offer-queue').textContent).toBe('1 of 2');
    expect($('offer-batch').hidden).toBe(true);
    $('offer-accept').click();
    await vi.waitFor(() => expect(actions.accept).toHaveBeenCalledTimes(2));
    expect(actions.accept.mock.calls.map((c) => c[0])).toEqual([1, 3]);
    s.offers = [2];
    dialog.render(s);
    expect(box().classList.contains('is-batch')).toBe(true);
    expect(box().classList.contains('is-group')).toBe(false);
    expect($('offer-batch').hidden).toBe(false);
    expect(document.querySelectorAll('[data-testid="offer-group-list"] > li')).toHaveLength(0);
    // A second batch from Bob is a prompt of its own too.
    apply(s, batchOffer(4, 2, 'incoming', 'docs'));
    dialog.render(s);
    expect(box().dataset.offerBatch).toBe('2');
    expect($('offer-queue').textContent).toBe('1 of 2');
  });

  it('reads in Simplified Chinese', () => {
    setLanguage('zh-CN');
    const { dialog } = setup();
    dialog.render(stateWith([batchOffer(2, 312)]));
    expect(document.getElementById('offer-title')!.textContent).toBe('收到文件夹');
    expect(document.getElementById('offer-wants')!.textContent).toBe('Bob 想发送文件夹 photos——312 个文件，1.4 GiB');
    expect($('offer-batch-toggle').textContent).toBe('显示全部 312 个文件');
    expect($('offer-batch-count').textContent).toBe('312 个文件');
  });
});

describe('history batch rows', () => {
  const batchRow = entry(10, { file_name: 'photos', files: 312, size: 1.4 * GIB, local_path: '/home/alice/Downloads/photos' }, { open: true, show: true, remove: true });
  const lone = entry(2, { file_name: 'a.txt' }, { open: true, remove: true });
  function view(load?: (q: HistoryQuery) => Promise<HistoryEntry[]>) {
    const loads = vi.fn(load ?? (async (q: HistoryQuery) => (q.parent === 10 ? filesOf(10, 312, 300, 'failed', 11) : [batchRow, lone])));
    const actions = {
      load: loads, open: vi.fn(), showInFolder: vi.fn(), resend: vi.fn(), resume: vi.fn(), uploadInstead: vi.fn(), remove: vi.fn(async () => true),
      isLive: () => false,
    };
    const v = new HistoryView(actions);
    document.body.append(v.el);
    return { v, actions };
  }
  const fileRows = () => document.querySelectorAll('[data-testid="history-10-files"] > li');

  it('shows a folder, the name, "312 files", the total size and the state, with the actions it allows', async () => {
    const { v, actions } = view();
    await v.refresh();
    const row = $('history-10');
    expect(row.dataset.kind).toBe('batch');
    expect(row.dataset.state).toBe('completed');
    expect(row.querySelector('.dir-icon')!.getAttribute('aria-label')).toBe('Incoming folder');
    expect(row.querySelector('.cell-main')!.textContent).toBe('photos');
    expect($('history-10-count').textContent).toBe('312 files');
    expect(row.querySelector('.col-size')!.textContent).toBe('1.4 GiB');
    expect(row.querySelector('.state-badge')!.textContent).toBe('Verified');
    expect([...row.querySelectorAll<HTMLButtonElement>('.row-actions button')].map((b) => b.dataset.action)).toEqual(['open', 'show', 'remove']);
    $('history-10-open').click();
    expect(actions.open).toHaveBeenCalledWith(expect.objectContaining({ id: 10 }));
    // A single file's row is as before.
    expect($('history-2').hasAttribute('data-kind')).toBe(false);
    expect(document.querySelector('[data-testid="history-2-expand"]')).toBeNull();
    expect(actions.load).toHaveBeenCalledTimes(1);
  });

  it('opens to its files with their states (its chevron or its name), and folds again', async () => {
    const { v, actions } = view();
    await v.refresh();
    const expand = () => $('history-10-expand') as HTMLButtonElement;
    expect(expand().tagName).toBe('BUTTON');
    expect(expand().getAttribute('aria-expanded')).toBe('false');
    expect(expand().getAttribute('aria-label')).toBe('Show the files in photos');
    expect(document.querySelector('[data-testid="history-10-files"]')).toBeNull();
    expand().focus();
    expand().click();
    expect(actions.load).toHaveBeenLastCalledWith({ parent: 10 });
    expect(expand().getAttribute('aria-expanded')).toBe('true');
    expect(expand().getAttribute('aria-label')).toBe('Hide the files in photos');
    // The focus stays on the chevron (the row was drawn again).
    expect(document.activeElement).toBe(expand());
    expect(document.getElementById(expand().getAttribute('aria-controls')!)).not.toBeNull();
    await vi.waitFor(() => expect(fileRows()).toHaveLength(200));
    // The files sit in a row of their own right under the batch.
    const next = $('history-10').nextElementSibling as HTMLElement;
    expect(next.classList.contains('batch-files-row')).toBe(true);
    expect(next.contains($('history-10-files'))).toBe(true);
    expect(next.hasAttribute('data-state')).toBe(false);
    expect($('history-10-file-11').dataset.state).toBe('completed');
    expect($('history-10-file-11').querySelector('.batch-file-state')!.textContent).toBe('Verified');
    expect($('history-10-file-11').querySelector('.batch-file-path')!.textContent).toBe('2024/IMG_1000.jpg');
    ($('history-10-files-more') as HTMLButtonElement).click();
    expect($('history-10-file-311').dataset.state).toBe('failed');
    expect($('history-10-file-311').querySelector('.batch-file-state')!.textContent).toBe('Failed');
    // Folded with its chevron; opened again with a click on the name.
    expand().click();
    expect(expand().getAttribute('aria-expanded')).toBe('false');
    expect(document.querySelector('[data-testid="history-10-files"]')).toBeNull();
    ($('history-10').querySelector('.cell-main') as HTMLElement).click();
    expect(expand().getAttribute('aria-expanded')).toBe('true');
    expect($('history-10-files')).not.toBeNull();
    // The history's reload keeps it open and reloads its files.
    const before = actions.load.mock.calls.length;
    await v.refresh();
    expect(expand().getAttribute('aria-expanded')).toBe('true');
    await vi.waitFor(() => expect(actions.load.mock.calls.filter((c) => c[0].parent === 10).length).toBeGreaterThan(1));
    expect(actions.load.mock.calls.length).toBeGreaterThan(before);
  });

  it('reloads an open batch on batch_progress, and drops it when the batch is removed', async () => {
    let done = 1;
    const files = () => filesOf(10, 3, done, 'active', 11);
    const { v, actions } = view(async (q) => (q.parent === 10 ? files() : [batchRow, lone]));
    await v.refresh();
    $('history-10-expand').click();
    await vi.waitFor(() => expect(document.querySelectorAll('[data-testid="history-10-files"] > li[data-state="completed"]')).toHaveLength(1));
    done = 3;
    // Closed batches and other ids: nothing.
    v.batchChanged(99);
    v.batchChanged(10);
    await vi.waitFor(() => expect(document.querySelectorAll('[data-testid="history-10-files"] > li[data-state="completed"]')).toHaveLength(3), { timeout: 2500 });
    $('history-10-remove').click();
    await vi.waitFor(() => expect(document.querySelector('[data-testid="history-10"]')).toBeNull());
    expect(document.querySelector('[data-testid="history-10-files"]')).toBeNull();
    expect(actions.remove).toHaveBeenCalledWith(expect.objectContaining({ id: 10 }));
  });

  it('reads in Simplified Chinese', async () => {
    setLanguage('zh-CN');
    const { v } = view();
    await v.refresh();
    expect($('history-10-count').textContent).toBe('312 个文件');
    $('history-10-expand').click();
    await vi.waitFor(() => expect(fileRows().length).toBeGreaterThan(0));
    expect($('history-10-file-11').querySelector('.batch-file-state')!.textContent).toBe('已校验');
    expect($('history-10').textContent).not.toContain('Verified');
  });
});

describe('batch file list', () => {
  it('splits a path inside the batch into its folder and name', () => {
    expect(splitRelPath('photos/2024/a.jpg')).toEqual(['photos/2024/', 'a.jpg']);
    expect(splitRelPath('a.jpg')).toEqual(['', 'a.jpg']);
  });

  it('renders thousands of files a page at a time, in the batch order, and patches rows in place on reload', async () => {
    let files = filesOf(1, 5000, 0, 'offered').reverse(); // history() lists newest first
    const list = new BatchFileList({ id: 'x', testid: 'list', rowTestid: (id) => `row-${id}`, states: true, load: async () => files, page: 100, refreshMs: 300 });
    document.body.append(list.el);
    expect(list.started).toBe(false);
    list.refreshSoon(); // nothing before it was first shown
    expect(list.loads).toBe(0);
    await list.load();
    const rows = () => [...document.querySelectorAll<HTMLElement>('[data-testid="list"] > li')];
    expect(rows()).toHaveLength(100);
    expect(rows()[0]!.dataset.testid).toBe('row-2');
    expect(list.el.textContent).toContain('Showing 100 of 5000 files');
    expect($('list-more').textContent).toBe('Show 100 more');
    $('list-more').click();
    expect(rows()).toHaveLength(200);
    const first = rows()[0];
    // Reloads are throttled, and keep the rows (and how many are shown).
    files = files.map((f) => ({ ...f, state: 'completed', verified: 'sha256' }));
    await new Promise((r) => setTimeout(r, 320));
    list.refreshSoon();
    expect(list.loads).toBe(2); // the last load was long enough ago: at once
    await vi.waitFor(() => expect(rows()[0]!.dataset.state).toBe('completed'), { interval: 5 });
    // Within the window: one load, after it.
    list.refreshSoon();
    list.refreshSoon();
    expect(list.loads).toBe(2);
    await vi.waitFor(() => expect(list.loads).toBe(3));
    await new Promise((r) => setTimeout(r, 350));
    expect(list.loads).toBe(3);
    expect(rows()).toHaveLength(200);
    expect(rows()[0]).toBe(first);
    list.refreshSoon(true);
    expect(list.loads).toBe(4);
    list.dispose();
  });

  it('says when there are no files yet', async () => {
    const list = new BatchFileList({ id: 'x', testid: 'list', rowTestid: (id) => `row-${id}`, states: false, load: async () => [] });
    document.body.append(list.el);
    await list.load();
    expect(list.el.textContent).toContain('No files listed yet.');
    expect($('list').hidden).toBe(true);
  });
});
