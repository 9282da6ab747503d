// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_SETTINGS } from '../app';
import { domWrites, focusables } from '../dom';
import { setLanguage } from '../i18n';
import { applyEvent, emptyDirty, initialState, setContacts, Store, type AppState, type SchedulerDeps, type TransferView } from '../store';
import type { ContactView, EngineEvent, HistoryEntry, RecordActions, Route, Settings, TransferRecord, Untrusted, UntrustedReason } from '../types';
import { ContactsPane } from './contacts';
import { connectionText } from './header';
import { errorNote, HistoryView, queryOf, rowActions, NO_FILTERS, type HistoryActions } from './history';
import { OfferDialog } from './offer';
import { looksLikeFolder, mergePaths, SendToDialog } from './sendto';
import { formToSize, isIpAddress, SettingsDialog, sizeToForm } from './settings';
import { CertificateDialog, fingerprintGroups, reasonText, validity } from './certificate';
import { certificateQuestion, describeError, describePasswordNote, validateSignIn } from './signin';
import { Toasts } from './toasts';
import { cardButtons, TransfersPane, verificationText } from './transfers';

const contacts: ContactView[] = [
  { jid: 'bob@localhost', name: 'Bob', subscription: 'both', pending_out: false, groups: [], resources: [{ resource: 'pc', show: 'available', status: 'Ready', priority: 5 }] },
  { jid: 'carol@localhost', name: 'Carol', subscription: 'both', pending_out: false, groups: [], resources: [] },
  { jid: 'dave@localhost', name: null, subscription: 'both', pending_out: false, groups: [], resources: [{ resource: 'x', show: 'dnd', status: null, priority: 0 }] },
];

function stateWith(events: EngineEvent[]): AppState {
  const s = initialState();
  const d = emptyDirty();
  setContacts(s, contacts, d);
  for (const e of events) applyEvent(s, e, d, 1000);
  return s;
}

const offer = (id: number, direction: 'incoming' | 'outgoing' = 'incoming', name = `f${id}.zip`): EngineEvent => ({
  type: 'transfer_offered',
  id,
  direction,
  peer: 'bob@localhost/pc',
  name,
  size: 5 * 1024 * 1024,
  description: id === 1 ? 'Holiday pictures' : null,
  resume_from: 0,
  files: null,
});

/** Offer `id` from `peer` (offers from one sender are asked about together). */
const offerFrom = (id: number, peer: string, name = `f${id}.zip`, description: string | null = null, size = 5 * 1024 * 1024): EngineEvent => ({
  type: 'transfer_offered',
  id,
  direction: 'incoming',
  peer,
  name,
  size,
  description,
  resume_from: 0,
  files: null,
});

const noopTransferActions = () => ({
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
  listFiles: vi.fn(async (): Promise<HistoryEntry[]> => []),
});

beforeEach(() => {
  document.body.replaceChildren();
  setLanguage('en');
});

afterEach(() => setLanguage('en'));

describe('transfer cards', () => {
  it('render name, peer, route badge, state and progress with test ids', () => {
    const s = stateWith([
      offer(3, 'outgoing', 'report.pdf'),
      { type: 'transfer_started', id: 3, route: 's5b-proxy', protocol: 'si', streamhost: 'proxy.localhost', offset: 0 },
      { type: 'transfer_progress', id: 3, bytes: 2 * 1024 * 1024, total: 5 * 1024 * 1024, bytes_per_sec: 1024 * 1024 },
    ]);
    const pane = new TransfersPane(noopTransferActions());
    document.body.append(pane.el);
    pane.render(s, emptyDirty(), true);
    const card = document.querySelector('[data-testid="transfer-3"]') as HTMLElement;
    expect(card).not.toBeNull();
    expect(card.dataset.state).toBe('active');
    expect(card.querySelector('.transfer-name')!.textContent).toBe('report.pdf');
    expect(card.querySelector('.transfer-peer')!.textContent).toBe('to Bob');
    expect(document.querySelector('[data-testid="transfer-3-route"]')!.textContent).toBe('Proxy');
    expect(document.querySelector('[data-testid="transfer-3-route"]')!.getAttribute('title')).toContain('proxy.localhost');
    expect(document.querySelector('[data-testid="transfer-3-state"]')!.textContent).toBe('In progress');
    expect(card.querySelector('.transfer-bytes')!.textContent).toBe('2.0 / 5.0 MiB');
    expect(card.querySelector('.transfer-speed')!.textContent).toBe('1.0 MiB/s');
    expect(card.querySelector('.transfer-eta')!.textContent).toBe('3 s left');
    expect(card.querySelector('[role=progressbar]')!.getAttribute('aria-valuenow')).toBe('40');
    const visible = [...card.querySelectorAll<HTMLButtonElement>('button[data-action]')].filter((b) => !b.hidden).map((b) => b.dataset.action);
    expect(visible).toEqual(['cancel']);
  });

  it('offer the right buttons per state', () => {
    const base = { id: 1, path: '/x', resumable: false } as TransferView;
    expect(cardButtons({ ...base, state: 'offered', direction: 'incoming' })).toEqual(['accept', 'decline']);
    expect(cardButtons({ ...base, state: 'offered', direction: 'outgoing' })).toEqual(['cancel']);
    expect(cardButtons({ ...base, state: 'active', direction: 'incoming' })).toEqual(['cancel']);
    expect(cardButtons({ ...base, state: 'completed', direction: 'incoming' })).toEqual(['open', 'showInFolder', 'dismiss']);
    expect(cardButtons({ ...base, state: 'interrupted', direction: 'outgoing', resumable: true })).toEqual(['resume', 'dismiss']);
    expect(cardButtons({ ...base, state: 'failed', direction: 'outgoing' })).toEqual(['retry', 'dismiss']);
    expect(cardButtons({ ...base, state: 'failed', direction: 'incoming' })).toEqual(['dismiss']);
    expect(cardButtons({ ...base, state: 'rejected', direction: 'outgoing' })).toEqual(['retry', 'dismiss']);
    // An interrupted SI download waits for the sender; a broken link is resumed here.
    expect(cardButtons({ ...base, state: 'interrupted', direction: 'incoming', resumable: true, route: 's5b-direct' })).toEqual(['dismiss']);
    expect(cardButtons({ ...base, state: 'interrupted', direction: 'incoming', resumable: true, route: 'oob' })).toEqual(['resume', 'dismiss']);
  });

  it('route clicks to the actions with the card id', () => {
    const actions = noopTransferActions();
    const s = stateWith([offer(9, 'outgoing'), { type: 'transfer_failed', id: 9, name: 'f9.zip', reason: 'network', error: 'lost', resumable: true, upload_fallback: false }]);
    const pane = new TransfersPane(actions);
    document.body.append(pane.el);
    pane.render(s, emptyDirty(), true);
    (document.querySelector('[data-testid="transfer-9-resume"]') as HTMLButtonElement).click();
    expect(actions.resume).toHaveBeenCalledWith(9);
    expect(document.querySelector('.transfer-error')!.textContent).toBe('lost');
  });

  it('show "Send by upload" only when the failure allows it, and route its click', () => {
    const actions = noopTransferActions();
    const failed = (id: number, upload_fallback: boolean, resumable = false): EngineEvent[] => [
      offer(id, 'outgoing'),
      { type: 'transfer_failed', id, name: `f${id}.zip`, reason: 'network', error: 'No transfer method worked', resumable, upload_fallback },
    ];
    const s = stateWith([...failed(1, true), ...failed(2, false), ...failed(3, true, true)]);
    const pane = new TransfersPane(actions);
    document.body.append(pane.el);
    pane.render(s, emptyDirty(), true);
    const button = (id: number) => document.querySelector<HTMLButtonElement>(`[data-testid="transfer-${id}-upload"]`)!;
    const visible = (id: number) =>
      [...document.querySelectorAll<HTMLButtonElement>(`[data-testid="transfer-${id}"] button[data-action]`)].filter((b) => !b.hidden).map((b) => b.dataset.action);
    expect(visible(1)).toEqual(['retry', 'upload', 'dismiss']);
    expect(visible(2)).toEqual(['retry', 'dismiss']);
    expect(visible(3)).toEqual(['resume', 'upload', 'dismiss']);
    // A real, labelled button: reachable with Tab, works with Enter / Space like the others.
    const b = button(1);
    expect(b.tagName).toBe('BUTTON');
    expect(b.type).toBe('button');
    expect(b.tabIndex).toBe(0);
    expect(b.textContent).toBe('Send by upload');
    expect(b.title).toBe('Upload the file to your server and send the contact a link to it');
    b.click();
    expect(actions.uploadInstead).toHaveBeenCalledWith(1);
    expect(actions.retry).not.toHaveBeenCalled();
    // The engine takes it: offered again, so the button goes.
    const d = emptyDirty();
    applyEvent(s, offer(1, 'outgoing'), d, 2000);
    pane.render(s, d);
    expect(button(1).hidden).toBe(true);
    expect(cardButtons({ id: 4, state: 'failed', direction: 'incoming', uploadFallback: true } as TransferView)).toEqual(['dismiss']);
    setLanguage('zh-CN');
    applyEvent(s, { type: 'transfer_failed', id: 1, name: 'f1.zip', reason: 'network', error: 'x', resumable: false, upload_fallback: true }, d, 3000);
    pane.render(s, d, true);
    expect(button(1).textContent).toBe('改用上传发送');
  });

  it('updates only the dirty cards, with bounded DOM work for 100 transfers x 1000 events', () => {
    let now = 0;
    const frames: (() => void)[] = [];
    let timers: { at: number; cb: () => void }[] = [];
    const deps: SchedulerDeps = {
      now: () => now,
      requestFrame: (cb) => void frames.push(cb),
      setTimer: (cb, ms) => void timers.push({ at: now + ms, cb }),
    };
    const store = new Store(deps, 100, () => 0);
    setContacts(store.state, contacts, emptyDirty());
    const pane = new TransfersPane(noopTransferActions());
    document.body.append(pane.el);
    let first = true;
    store.subscribe((d) => {
      pane.render(store.state, d, first);
      first = false;
    });
    // One display refresh: due timers fire, then the queued animation frames run.
    const frame = () => {
      const due = timers.filter((t) => t.at <= now);
      timers = timers.filter((t) => t.at > now);
      due.forEach((t) => t.cb());
      frames.splice(0).forEach((f) => f());
    };
    for (let id = 1; id <= 100; id++) {
      store.dispatch(offer(id, 'outgoing'));
      store.dispatch({ type: 'transfer_started', id, route: 'ibb', protocol: 'si', streamhost: null, offset: 0 });
    }
    now += 100;
    frame();
    expect(document.querySelectorAll('.transfer-card')).toHaveLength(100);
    const updatesBefore = pane.cardUpdates;
    const writesBefore = domWrites.count;
    for (let step = 1; step <= 1000; step++) {
      for (let id = 1; id <= 100; id++) store.dispatch({ type: 'transfer_progress', id, bytes: step * 1000, total: 1_000_000, bytes_per_sec: 10_000 });
      now += 1; // 100 000 events within one second of virtual time
      if (step % 16 === 0) frame();
    }
    now += 200;
    frame();
    frame();
    const renders = store.renders;
    expect(renders).toBeLessThanOrEqual(13); // ~1 s at <= 10 renders/s, plus the first
    expect(pane.cardUpdates - updatesBefore).toBeLessThanOrEqual(renders * 100);
    expect(domWrites.count - writesBefore).toBeLessThan(renders * 100 * 12);
    const card = document.querySelector('[data-testid="transfer-77"]')!;
    expect(card.querySelector('.transfer-bytes')!.textContent).toBe('977 / 977 KiB');
    expect(card.querySelector('.transfer-pct')!.textContent).toBe('100%');

    // One more event for one transfer: one card is touched, not 100.
    const u = pane.cardUpdates;
    store.dispatch({ type: 'transfer_notice', id: 5, message: 'slow peer' });
    now += 200;
    frame();
    frame();
    expect(pane.cardUpdates - u).toBe(1);
    expect(document.querySelector('[data-testid="transfer-5"] .transfer-notices')!.textContent).toContain('slow peer');
  });

  it('say how a completed transfer was checked, never a plain "Completed"', () => {
    const done = (id: number, direction: 'incoming' | 'outgoing', verified: 'sha256' | 'md5' | 'none', route: Route = 's5b-direct'): EngineEvent[] => [
      offer(id, direction, `f${id}.bin`),
      { type: 'transfer_started', id, route, protocol: route === 'upload' || route === 'oob' ? null : 'si', streamhost: null, offset: 0 },
      { type: 'transfer_completed', id, name: `f${id}.bin`, path: `/dl/f${id}.bin`, size: 1024, bytes: 1024, sha256: 'ab', route, seconds: 2, verified },
    ];
    const s = stateWith([
      ...done(1, 'incoming', 'sha256'),
      ...done(2, 'incoming', 'md5'),
      ...done(3, 'incoming', 'none', 'oob'),
      ...done(4, 'outgoing', 'sha256'),
      ...done(5, 'outgoing', 'none', 'upload'),
      offer(6, 'outgoing'),
      { type: 'transfer_started', id: 6, route: 'ibb', protocol: 'si', streamhost: null, offset: 0 },
    ]);
    const pane = new TransfersPane(noopTransferActions());
    document.body.append(pane.el);
    pane.render(s, emptyDirty(), true);
    const card = (id: number) => document.querySelector<HTMLElement>(`[data-testid="transfer-${id}"]`)!;
    const badge = (id: number) => document.querySelector<HTMLElement>(`[data-testid="transfer-${id}-state"]`)!;
    const line = (id: number) => document.querySelector<HTMLElement>(`[data-testid="transfer-${id}-verified"]`)!;
    const seen = [1, 2, 3, 4, 5].map((id) => [card(id).dataset.verified, badge(id).textContent, line(id).textContent, line(id).hidden]);
    expect(seen).toEqual([
      ['sha256', 'Verified', 'Received · verified (SHA-256)', false],
      ['md5', 'Verified (MD5)', 'Received · verified (MD5)', false],
      ['none', 'Not verified', 'Received · not verified', false],
      ['sha256', 'Confirmed', 'Sent · confirmed by the receiver', false],
      ['none', 'Not confirmed', 'Sent · not confirmed', false],
    ]);
    for (const id of [1, 2, 3, 4, 5]) {
      expect(card(id).dataset.state).toBe('completed');
      expect(card(id).textContent).not.toContain('Completed');
      expect(badge(id).dataset.verified).toBe(card(id).dataset.verified);
      expect(line(id).dataset.verified).toBe(card(id).dataset.verified);
    }
    // Not verified: a warning (the CSS colours data-verified=none), with an alert icon and the reason.
    expect(badge(3).getAttribute('title')).toContain('Only the size was checked');
    expect(badge(3).getAttribute('title')).toContain('did not provide a checksum');
    expect(line(3).getAttribute('title')).toBe(badge(3).getAttribute('title'));
    expect(badge(3).querySelector('.badge-icon')!.getAttribute('data-icon')).toBe('alert');
    expect(line(3).querySelector('.verified-icon')!.getAttribute('data-icon')).toBe('alert');
    expect(line(5).querySelector('.verified-icon')!.getAttribute('data-icon')).toBe('alert');
    expect(badge(5).getAttribute('title')).toContain('Nobody confirmed');
    expect(line(1).querySelector('.verified-icon')!.getAttribute('data-icon')).toBe('shieldCheck');
    expect(badge(1).getAttribute('title')).toContain('SHA-256');
    expect(badge(4).getAttribute('title')).toContain('receiver checked the whole file');
    // Still running: no verdict yet.
    expect(card(6).hasAttribute('data-verified')).toBe(false);
    expect(badge(6).hasAttribute('data-verified')).toBe(false);
    expect(badge(6).hasAttribute('title')).toBe(false);
    expect(badge(6).textContent).toBe('In progress');
    expect(line(6).hidden).toBe(true);
    // Sent again: the old verdict goes with the old attempt.
    const d = emptyDirty();
    applyEvent(s, offer(5, 'outgoing', 'f5.bin'), d, 2000);
    pane.render(s, d);
    expect(card(5).hasAttribute('data-verified')).toBe(false);
    expect(badge(5).textContent).toBe('Pending');
    expect(badge(5).querySelector<HTMLElement>('.badge-icon')!.hidden).toBe(true);
    expect(line(5).hidden).toBe(true);
    // Simplified Chinese.
    setLanguage('zh-CN');
    pane.render(s, emptyDirty(), true);
    expect([1, 3, 4].map((id) => [badge(id).textContent, line(id).textContent])).toEqual([
      ['已校验', '已接收 · 已校验（SHA-256）'],
      ['未校验', '已接收 · 未校验'],
      ['已确认', '已发送 · 接收方已确认'],
    ]);
    expect(badge(3).getAttribute('title')).toContain('只检查了文件大小');
  });

  it('label verification by direction: a sent file is confirmed or not', () => {
    expect(verificationText('incoming', 'none')).toMatchObject({ badge: 'Not verified', ok: false, icon: 'alert' });
    expect(verificationText('incoming', 'md5')).toMatchObject({ badge: 'Verified (MD5)', ok: true, icon: 'shieldCheck' });
    expect(verificationText('outgoing', 'sha256')).toMatchObject({ line: 'Sent · confirmed by the receiver', ok: true });
    expect(verificationText('outgoing', 'md5')).toMatchObject({ line: 'Sent · confirmed by the receiver', ok: true });
    expect(verificationText('outgoing', 'none')).toMatchObject({ line: 'Sent · not confirmed', ok: false });
  });

  it('show the protocol that set the transfer up beside its route: Jingle, SI, or nothing', () => {
    const s = stateWith([
      offer(1, 'incoming'),
      { type: 'transfer_started', id: 1, route: 's5b-direct', protocol: 'jingle', streamhost: null, offset: 0 },
      offer(2, 'outgoing'),
      { type: 'transfer_started', id: 2, route: 's5b-proxy', protocol: 'si', streamhost: 'proxy.localhost', offset: 0 },
      offer(3, 'outgoing'),
      { type: 'transfer_started', id: 3, route: 'upload', protocol: null, streamhost: null, offset: 0 },
      offer(4, 'incoming'),
    ]);
    const pane = new TransfersPane(noopTransferActions());
    document.body.append(pane.el);
    pane.render(s, emptyDirty(), true);
    const badge = (id: number) => document.querySelector<HTMLElement>(`[data-testid="transfer-${id}-protocol"]`)!;
    const route = (id: number) => document.querySelector<HTMLElement>(`[data-testid="transfer-${id}-route"]`)!;
    expect(badge(1).hidden).toBe(false);
    expect(badge(1).textContent).toBe('Jingle');
    expect(badge(1).dataset.protocol).toBe('jingle');
    expect(badge(1).title).toBe('Set up by Jingle file transfer (XEP-0234)');
    expect(badge(1).getAttribute('aria-label')).toBe('Set up by Jingle file transfer (XEP-0234)');
    // Right before the route, in the same pill.
    expect(badge(1).nextElementSibling).toBe(route(1));
    expect(route(1).textContent).toBe('Direct');
    expect(badge(2).hidden).toBe(false);
    expect(badge(2).textContent).toBe('SI');
    expect(badge(2).title).toContain('XEP-0096');
    expect(route(2).textContent).toBe('Proxy');
    // An upload (or a link) has no protocol; an offer has not started yet.
    expect(badge(3).hidden).toBe(true);
    expect(badge(3).textContent).toBe('');
    expect(badge(3).hasAttribute('aria-label')).toBe(false);
    expect(route(3).textContent).toBe('Upload');
    expect(badge(4).hidden).toBe(true);
    // The names stay; the tooltip is translated.
    setLanguage('zh-CN');
    pane.render(s, emptyDirty(), true);
    expect(badge(1).textContent).toBe('Jingle');
    expect(badge(1).title).toBe('由 Jingle 文件传输协议（XEP-0234）建立');
    expect(badge(2).textContent).toBe('SI');
    expect(badge(2).getAttribute('aria-label')).toBe('由 SI 文件传输协议（XEP-0096）建立');
  });

  it('switch language live', () => {
    const s = stateWith([offer(1, 'outgoing'), { type: 'transfer_started', id: 1, route: 's5b-direct', protocol: 'si', streamhost: null, offset: 0 }]);
    const pane = new TransfersPane(noopTransferActions());
    document.body.append(pane.el);
    pane.render(s, emptyDirty(), true);
    expect(document.querySelector('[data-testid="transfer-1-route"]')!.textContent).toBe('Direct');
    setLanguage('zh-CN');
    pane.render(s, emptyDirty(), true);
    expect(document.querySelector('[data-testid="transfer-1-route"]')!.textContent).toBe('直连');
    expect(document.querySelector('.pane-title')!.textContent).toBe('传输');
    expect(document.documentElement.lang).toBe('zh-CN');
  });
});

describe('contacts pane', () => {
  it('lists contacts with presence text and test ids, online first', () => {
    const s = stateWith([]);
    const pane = new ContactsPane({ sendFile: vi.fn() });
    document.body.append(pane.el);
    pane.render(s);
    const rows = [...document.querySelectorAll<HTMLElement>('.contact-row')];
    expect(rows.map((r) => r.dataset.testid)).toEqual(['contact-bob@localhost', 'contact-dave@localhost', 'contact-carol@localhost']);
    expect(rows[0]!.querySelector('.presence-text')!.textContent).toBe('Available · Ready');
    expect(rows[1]!.querySelector('.presence-text')!.textContent).toBe('Do not disturb');
    expect(rows[1]!.querySelector('.contact-name')!.textContent).toBe('dave');
    expect(rows[2]!.dataset.presence).toBe('offline');
    expect(document.querySelector('.pane-meta')!.textContent).toBe('2 online');
  });

  it('keeps row elements (and so focus) across presence changes', () => {
    const s = stateWith([]);
    const pane = new ContactsPane({ sendFile: vi.fn() });
    document.body.append(pane.el);
    pane.render(s);
    const carol = document.querySelector<HTMLElement>('[data-testid="contact-carol@localhost"]')!;
    carol.focus();
    applyEvent(s, { type: 'presence', jid: 'carol@localhost/pc', resource: 'pc', available: true, show: 'away', status: null, priority: 0 }, emptyDirty(), 0);
    pane.render(s);
    expect(document.querySelector('[data-testid="contact-carol@localhost"]')).toBe(carol);
    expect(carol.dataset.presence).toBe('away');
    expect(document.activeElement).toBe(carol);
  });

  it('filters by name or JID as you type', () => {
    const s = stateWith([]);
    const pane = new ContactsPane({ sendFile: vi.fn() });
    document.body.append(pane.el);
    pane.render(s);
    pane.search.value = 'car';
    pane.search.dispatchEvent(new Event('input'));
    expect([...document.querySelectorAll<HTMLElement>('.contact-row')].map((r) => r.dataset.jid)).toEqual(['carol@localhost']);
    pane.search.value = 'DAVE@';
    pane.search.dispatchEvent(new Event('input'));
    expect([...document.querySelectorAll<HTMLElement>('.contact-row')].map((r) => r.dataset.jid)).toEqual(['dave@localhost']);
    pane.search.value = '';
    pane.search.dispatchEvent(new Event('input'));
    expect(document.querySelectorAll('.contact-row')).toHaveLength(3);
    pane.search.value = 'zzz';
    pane.search.dispatchEvent(new Event('input'));
    expect(document.querySelector('.pane-empty')!.textContent).toBe('No contact matches “zzz”.');
  });

  it('sends a file from the button, Enter or double click', () => {
    const sendFile = vi.fn();
    const pane = new ContactsPane({ sendFile });
    document.body.append(pane.el);
    pane.render(stateWith([]));
    (document.querySelector('[data-testid="send-carol@localhost"]') as HTMLButtonElement).click();
    expect(sendFile).toHaveBeenLastCalledWith('carol@localhost');
    const row = document.querySelector('[data-testid="contact-bob@localhost"]') as HTMLElement;
    row.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    expect(sendFile).toHaveBeenLastCalledWith('bob@localhost');
  });

  it('says offline contacts get files by upload only while uploads are allowed', () => {
    const pane = new ContactsPane({ sendFile: vi.fn() });
    document.body.append(pane.el);
    pane.render(stateWith([]));
    const send = (jid: string) => document.querySelector<HTMLButtonElement>(`[data-testid="send-${jid}"]`)!;
    expect(send('carol@localhost').title).toBe('Send a file to Carol');
    expect(pane.uploadsTo('carol@localhost')).toBe(false);
    pane.setUploadWhenOffline(true);
    expect(send('carol@localhost').title).toBe('Send a file to Carol: offline, so it will be uploaded to your server and sent as a link');
    expect(send('carol@localhost').getAttribute('aria-label')).toBe(send('carol@localhost').title);
    expect(send('bob@localhost').title).toBe('Send a file to Bob');
    expect(pane.uploadsTo('carol@localhost')).toBe(true);
    expect(pane.uploadsTo('bob@localhost')).toBe(false);
    pane.setDropTarget('carol@localhost');
    expect(document.querySelector('.drop-target .drop-note')!.textContent).toBe('Drop to upload for Carol');
    pane.setUploadWhenOffline(false);
    expect(document.querySelector('.drop-target .drop-note')!.textContent).toBe('Drop to send to Carol');
    expect(pane.uploadsTo('carol@localhost')).toBe(false);
  });

  it('highlights the drop target row', () => {
    const pane = new ContactsPane({ sendFile: vi.fn() });
    document.body.append(pane.el);
    pane.render(stateWith([]));
    pane.setDropTarget('carol@localhost');
    expect(document.querySelector('.drop-target')!.getAttribute('data-jid')).toBe('carol@localhost');
    expect(document.querySelector('.drop-target .drop-note')!.textContent).toBe('Drop to send to Carol');
    pane.setDropTarget(null);
    expect(document.querySelector('.drop-target')).toBeNull();
  });
});

/** Where a modal dialog lives: its host, and the page's main content with a focused-before button. */
function modalHost(): { host: HTMLElement; main: HTMLElement; outside: HTMLButtonElement } {
  const host = document.createElement('div');
  const main = document.createElement('main');
  const outside = document.createElement('button');
  main.append(outside);
  document.body.append(main, host);
  return { host, main, outside };
}

describe('offer dialog', () => {
  function setup() {
    const { host, main, outside } = modalHost();
    const actions = {
      accept: vi.fn(async () => {}),
      decline: vi.fn(async () => {}),
      pickFolder: vi.fn(async () => '/tmp/elsewhere'),
      defaultDir: () => '/home/alice/Downloads',
      listFiles: vi.fn(async (): Promise<HistoryEntry[]> => []),
    };
    const dialog = new OfferDialog(host, () => [main], actions);
    return { dialog, actions, main, outside };
  }

  it('shows the first offer, labelled, modal, with the queue count', () => {
    const { dialog, main } = setup();
    dialog.render(stateWith([offer(1), offerFrom(2, 'carol@localhost/home')]));
    const box = document.querySelector('[role=dialog]') as HTMLElement;
    expect(box.getAttribute('aria-modal')).toBe('true');
    expect(document.getElementById(box.getAttribute('aria-labelledby')!)!.textContent).toBe('Incoming file');
    expect(box.dataset.offerId).toBe('1');
    expect(document.querySelector('[data-testid="offer-file"]')!.textContent).toBe('f1.zip');
    expect(document.querySelector('[data-testid="offer-size"]')!.textContent).toBe('5.0 MiB');
    expect(document.querySelector('[data-testid="offer-folder"]')!.textContent).toBe('/home/alice/Downloads');
    expect(document.querySelector('[data-testid="offer-queue"]')!.textContent).toBe('1 of 2');
    expect(box.textContent).toContain('Holiday pictures');
    expect(document.activeElement).toBe(document.querySelector('[data-testid="offer-accept"]'));
    expect(main.inert).toBe(true);
  });

  it('says when the sender is not in the contacts', () => {
    const { dialog } = setup();
    const note = () => document.querySelector<HTMLElement>('[data-testid="offer-stranger"]')!;
    dialog.render(stateWith([offer(1)]));
    expect(note().hidden).toBe(true);
    dialog.render(stateWith([{ ...offer(2), peer: 'mallory@evil.example/bot' } as EngineEvent]));
    expect(note().hidden).toBe(false);
    expect(note().textContent).toBe('Not in your contacts. Accept only files you expect.');
    expect(document.getElementById('offer-wants')!.textContent).toBe('mallory@evil.example wants to send you a file');
  });

  it('accepts with Enter (into the folder chosen with Change…) and declines with Esc', async () => {
    const { dialog, actions } = setup();
    dialog.render(stateWith([offer(1), offerFrom(2, 'carol@localhost/home')]));
    (document.querySelector('[data-testid="offer-change-folder"]') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(document.querySelector('[data-testid="offer-folder"]')!.textContent).toBe('/tmp/elsewhere'));
    const box = document.querySelector('[role=dialog]') as HTMLElement;
    box.focus();
    box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    await vi.waitFor(() => expect(actions.accept).toHaveBeenCalledWith(1, '/tmp/elsewhere'));
    // The app removes answered offers; the next one shows.
    dialog.render(stateWith([offerFrom(2, 'carol@localhost/home')]));
    expect(box.dataset.offerId).toBe('2');
    expect(document.querySelector('[data-testid="offer-folder"]')!.textContent).toBe('/home/alice/Downloads');
    box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    await vi.waitFor(() => expect(actions.decline).toHaveBeenCalledWith(2));
  });

  it('traps Tab inside and gives focus back when closed', () => {
    const { dialog, main, outside } = setup();
    outside.focus();
    dialog.render(stateWith([offer(1)]));
    const accept = document.querySelector('[data-testid="offer-accept"]') as HTMLElement;
    const change = document.querySelector('[data-testid="offer-change-folder"]') as HTMLElement;
    accept.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', bubbles: true }));
    expect(document.activeElement).toBe(change); // wrapped from the last to the first
    change.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', shiftKey: true, bubbles: true }));
    expect(document.activeElement).toBe(accept);
    dialog.render(stateWith([]));
    expect(dialog.isOpen).toBe(false);
    expect(main.inert).toBe(false);
    expect(document.activeElement).toBe(outside);
  });
});

describe('grouped offer prompt (several offers from one sender)', () => {
  function setup() {
    const { host, main, outside } = modalHost();
    const actions = {
      accept: vi.fn(async (_id: number, _dir: string | undefined) => {}),
      decline: vi.fn(async (_id: number) => {}),
      pickFolder: vi.fn(async () => '/tmp/elsewhere'),
      defaultDir: () => '/home/alice/Downloads',
      listFiles: vi.fn(async (): Promise<HistoryEntry[]> => []),
    };
    const dialog = new OfferDialog(host, () => [main], actions);
    outside.focus();
    return { dialog, actions, main, outside };
  }
  const $ = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`)!;
  const box = () => $('offer-dialog');
  const rows = () => [...document.querySelectorAll<HTMLElement>('[data-testid="offer-group-list"] > li')].map((li) => li.dataset.testid);
  const check = (id: number) => $(`offer-group-check-${id}`) as HTMLInputElement;
  const isShown = (el: HTMLElement) => !el.closest('[hidden]');
  // Bob sends two files of a folder (described by their path inside it) and a note; Carol one file.
  const bob = (id: number, name = `f${id}.zip`, description: string | null = null) => offerFrom(id, 'bob@localhost/pc', name, description);
  const three = () => [bob(1, 'a.jpg', 'photos/2024/a.jpg'), bob(2, 'b.jpg', 'photos/2024/b.jpg'), bob(3, 'notes.txt', 'Read me first')];
  const carol = offerFrom(4, 'carol@localhost/home', 'menu.pdf');
  const apply = (s: AppState, ...events: EngineEvent[]) => {
    for (const e of events) applyEvent(s, e, emptyDirty(), 2000);
    return s;
  };

  it("asks about Bob's three offers in one prompt; Carol's, queued after them, gets her own afterwards", async () => {
    const { dialog, actions, main } = setup();
    dialog.render(stateWith([...three(), carol]));
    expect(dialog.isOpen).toBe(true);
    expect(main.inert).toBe(true);
    expect(box().getAttribute('aria-modal')).toBe('true');
    expect(box().dataset.offerGroup).toBe('bob@localhost');
    expect(box().classList.contains('is-group')).toBe(true);
    expect(document.getElementById(box().getAttribute('aria-labelledby')!)!.textContent).toBe('Bob wants to send 3 files');
    expect(document.getElementById(box().getAttribute('aria-describedby')!)!.textContent).toBe('Check the files to accept; the others are declined.');
    expect($('offer-group-total').textContent).toBe('15.0 MiB');
    expect($('offer-folder').textContent).toBe('/home/alice/Downloads');
    expect(isShown($('offer-change-folder'))).toBe(true);
    // One prompt for Bob, then one for Carol.
    expect($('offer-queue').textContent).toBe('1 of 2');
    expect(rows()).toEqual(['offer-group-item-1', 'offer-group-item-2', 'offer-group-item-3']);
    // A folder's files show their path inside it; another description shows as a message.
    expect($('offer-group-item-1').querySelector('.offer-group-path')!.textContent).toBe('photos/2024/a.jpg');
    expect($('offer-group-item-1').querySelector('.offer-group-name')!.textContent).toBe('a.jpg');
    expect(isShown($('offer-group-item-1').querySelector<HTMLElement>('.offer-group-desc')!)).toBe(false);
    expect($('offer-group-item-3').querySelector('.offer-group-path')!.textContent).toBe('notes.txt');
    expect($('offer-group-item-3').querySelector('.offer-group-desc')!.textContent).toBe('Read me first');
    expect($('offer-group-item-3').querySelector('.offer-group-size')!.textContent).toBe('5.0 MiB');
    // Each box labelled by its file, all checked.
    expect([1, 2, 3].map((id) => check(id).checked)).toEqual([true, true, true]);
    expect(document.querySelector(`label[for="${check(2).id}"]`)!.textContent).toBe('photos/2024/b.jpg');
    expect(($('offer-group-all') as HTMLInputElement).checked).toBe(true);
    expect($('offer-group-chosen').textContent).toBe('3 of 3 selected');
    // The single offer's rows are not shown.
    expect(isShown($('offer-file'))).toBe(false);
    expect(isShown($('offer-group-list'))).toBe(true);
    expect($('offer-accept').textContent).toBe('Accept all');
    expect($('offer-decline').textContent).toBe('Decline all');
    expect(document.activeElement).toBe($('offer-accept'));

    $('offer-accept').click();
    await vi.waitFor(() => expect(actions.accept).toHaveBeenCalledTimes(3));
    expect(actions.accept.mock.calls).toEqual([[1, undefined], [2, undefined], [3, undefined]]);
    expect(actions.decline).not.toHaveBeenCalled();
    // The app removes answered offers: Carol's shows, as a single offer.
    dialog.render(stateWith([carol]));
    expect(dialog.isOpen).toBe(true);
    expect(box().dataset.offerId).toBe('4');
    expect(box().dataset.offerGroup).toBeUndefined();
    expect(box().classList.contains('is-group')).toBe(false);
    expect(document.getElementById('offer-title')!.textContent).toBe('Incoming file');
    expect(document.getElementById('offer-wants')!.textContent).toBe('Carol wants to send you a file');
    expect($('offer-file').textContent).toBe('menu.pdf');
    expect(isShown($('offer-file'))).toBe(true);
    expect(isShown($('offer-group-list'))).toBe(false);
    expect($('offer-accept').textContent).toBe('Accept');
    expect($('offer-decline').textContent).toBe('Decline');
    expect(($('offer-accept') as HTMLButtonElement).disabled).toBe(false);
    expect($('offer-queue').hidden).toBe(true);
    expect(document.activeElement).toBe($('offer-accept'));
  });

  it('accepts the checked offers into the folder chosen, and declines the unchecked one', async () => {
    const { dialog, actions } = setup();
    dialog.render(stateWith(three()));
    $('offer-change-folder').click();
    await vi.waitFor(() => expect($('offer-folder').textContent).toBe('/tmp/elsewhere'));
    check(2).click();
    expect(check(2).checked).toBe(false);
    expect($('offer-accept').textContent).toBe('Accept 2');
    expect($('offer-group-chosen').textContent).toBe('2 of 3 selected');
    expect(($('offer-group-all') as HTMLInputElement).indeterminate).toBe(true);
    // Enter on a box accepts, as anywhere in the dialog.
    check(2).focus();
    check(2).dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    await vi.waitFor(() => expect(actions.decline).toHaveBeenCalledTimes(1));
    expect(actions.accept.mock.calls).toEqual([[1, '/tmp/elsewhere'], [3, '/tmp/elsewhere']]);
    expect(actions.decline).toHaveBeenCalledWith(2);
  });

  it('accepts nothing with every box unchecked; "Select all" checks them again', async () => {
    const { dialog, actions } = setup();
    dialog.render(stateWith(three()));
    const all = $('offer-group-all') as HTMLInputElement;
    all.click();
    expect([1, 2, 3].map((id) => check(id).checked)).toEqual([false, false, false]);
    expect($('offer-accept').textContent).toBe('Accept 0');
    expect(($('offer-accept') as HTMLButtonElement).disabled).toBe(true);
    box().dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    await Promise.resolve();
    expect(actions.accept).not.toHaveBeenCalled();
    expect(actions.decline).not.toHaveBeenCalled();
    all.click();
    expect([1, 2, 3].map((id) => check(id).checked)).toEqual([true, true, true]);
    expect($('offer-accept').textContent).toBe('Accept all');
    expect(($('offer-accept') as HTMLButtonElement).disabled).toBe(false);
  });

  it('declines them all with "Decline all", checked or not', async () => {
    const { dialog, actions } = setup();
    dialog.render(stateWith(three()));
    check(1).click();
    $('offer-decline').click();
    await vi.waitFor(() => expect(actions.decline).toHaveBeenCalledTimes(3));
    expect(actions.decline.mock.calls).toEqual([[1], [2], [3]]);
    expect(actions.accept).not.toHaveBeenCalled();
  });

  it('declines them all with Esc, as the single dialog declines its offer', async () => {
    const { dialog, actions } = setup();
    dialog.render(stateWith([...three(), carol]));
    box().dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    await vi.waitFor(() => expect(actions.decline).toHaveBeenCalledTimes(3));
    expect(actions.decline.mock.calls).toEqual([[1], [2], [3]]);
  });

  it('lets offers that end meanwhile leave the list, and closes when the last one goes', () => {
    const { dialog, main, outside } = setup();
    const s = stateWith(three());
    dialog.render(s);
    check(3).click();
    // Bob withdraws the second; the first is answered from a notification.
    dialog.render(apply(s, { type: 'transfer_failed', id: 2, name: 'b.jpg', reason: 'cancelled', error: 'cancelled', resumable: false, upload_fallback: false }));
    expect(rows()).toEqual(['offer-group-item-1', 'offer-group-item-3']);
    expect(document.getElementById('offer-title')!.textContent).toBe('Bob wants to send 2 files');
    expect($('offer-group-total').textContent).toBe('10.0 MiB');
    dialog.render(apply(s, { type: 'transfer_started', id: 1, route: 's5b-direct', protocol: 'si', streamhost: null, offset: 0 }));
    expect(rows()).toEqual(['offer-group-item-3']);
    expect(document.getElementById('offer-title')!.textContent).toBe('Bob wants to send 1 file');
    expect(box().dataset.offerId).toBe('3');
    // Still the same prompt, with the choice made.
    expect(check(3).checked).toBe(false);
    expect($('offer-accept').textContent).toBe('Accept 0');
    dialog.render(apply(s, { type: 'transfer_rejected', id: 3, name: 'notes.txt', reason: 'declined' }));
    expect(dialog.isOpen).toBe(false);
    expect(main.inert).toBe(false);
    expect(document.activeElement).toBe(outside);
  });

  it('lets offers from Bob arriving while it is open join the list, checked; a single offer becomes a group', () => {
    const { dialog } = setup();
    const s = stateWith([bob(1, 'a.jpg', 'photos/2024/a.jpg')]);
    dialog.render(s);
    expect(box().dataset.offerGroup).toBeUndefined();
    expect(document.getElementById('offer-title')!.textContent).toBe('Incoming file');
    // The focus stays where the person put it when the prompt grows.
    $('offer-change-folder').focus();
    dialog.render(apply(s, bob(2, 'b.jpg', 'photos/2024/b.jpg'), carol));
    expect(box().dataset.offerGroup).toBe('bob@localhost');
    expect(rows()).toEqual(['offer-group-item-1', 'offer-group-item-2']);
    expect(document.activeElement).toBe($('offer-change-folder'));
    check(1).click();
    dialog.render(apply(s, bob(5, 'c.jpg', 'photos/2024/c.jpg')));
    expect(rows()).toEqual(['offer-group-item-1', 'offer-group-item-2', 'offer-group-item-5']);
    expect([1, 2, 5].map((id) => check(id).checked)).toEqual([false, true, true]);
    expect(document.getElementById('offer-title')!.textContent).toBe('Bob wants to send 3 files');
    expect($('offer-accept').textContent).toBe('Accept 2');
    expect($('offer-queue').textContent).toBe('1 of 2');
    // From another resource of Bob's: the same sender.
    dialog.render(apply(s, offerFrom(6, 'bob@localhost/phone', 'd.jpg')));
    expect(rows()).toHaveLength(4);
  });

  it('keeps the list in the Tab order, ↑/↓ moving between the boxes, the focus starting on Accept', () => {
    const { dialog } = setup();
    dialog.render(stateWith(three()));
    expect(document.activeElement).toBe($('offer-accept'));
    const order = focusables(box()).map((el) => el.dataset.testid);
    expect(order).toEqual(['offer-change-folder', 'offer-group-all', 'offer-group-check-1', 'offer-group-check-2', 'offer-group-check-3', 'offer-decline', 'offer-accept']);
    // Tab from Accept wraps to the first control, inside the dialog.
    $('offer-accept').dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', bubbles: true }));
    expect(document.activeElement).toBe($('offer-change-folder'));
    check(1).focus();
    check(1).dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowDown', bubbles: true, cancelable: true }));
    expect(document.activeElement).toBe(check(2));
    check(2).dispatchEvent(new KeyboardEvent('keydown', { key: 'End', bubbles: true, cancelable: true }));
    expect(document.activeElement).toBe(check(3));
    check(3).dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowUp', bubbles: true, cancelable: true }));
    expect(document.activeElement).toBe(check(2));
  });

  it('lists 300 files from a folder, the total summed', () => {
    const { dialog } = setup();
    const many = Array.from({ length: 300 }, (_, i) => offerFrom(i + 1, 'bob@localhost/pc', `IMG_${i}.jpg`, `trip/IMG_${i}.jpg`, 1024 * 1024));
    dialog.render(stateWith(many));
    expect(rows()).toHaveLength(300);
    expect(document.getElementById('offer-title')!.textContent).toBe('Bob wants to send 300 files');
    expect($('offer-group-total').textContent).toBe('300 MiB');
  });

  it('says when sizes are unknown (links)', () => {
    const { dialog } = setup();
    dialog.render(stateWith([bob(1), offerFrom(2, 'bob@localhost/pc', 'link.bin', null, 0)]));
    expect($('offer-group-total').textContent).toBe('At least 5.0 MiB');
    expect($('offer-group-item-2').querySelector('.offer-group-size')!.textContent).toBe('—');
  });

  it('reads in Simplified Chinese', () => {
    const { dialog } = setup();
    setLanguage('zh-CN');
    dialog.render(stateWith(three()));
    expect(document.getElementById('offer-title')!.textContent).toBe('Bob 想发送 3 个文件');
    expect($('offer-accept').textContent).toBe('全部接受');
    expect($('offer-decline').textContent).toBe('全部拒绝');
    expect($('offer-group-chosen').textContent).toBe('已选 3 个，共 3 个');
    check(1).click();
    expect($('offer-accept').textContent).toBe('接受 2 个');
    expect($('offer-group-list').getAttribute('aria-label')).toBe('对方发来的文件');
    expect($('offer-group-total').textContent).toBe('15.0 MiB');
  });
});

describe('"Send N files" dialog', () => {
  const files = ['/home/alice/Documents/report.pdf', '/home/alice/Pictures/Holiday 2024/'];

  function setup() {
    const { host, main, outside } = modalHost();
    const actions = { send: vi.fn() };
    const dialog = new SendToDialog(host, () => [main], actions);
    outside.focus();
    return { dialog, actions, main, outside };
  }
  const $ = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`)!;
  const rowIds = () => [...document.querySelectorAll<HTMLElement>('[data-testid="send-to-list"] [role=option]')].map((r) => r.dataset.testid);
  const key = (el: HTMLElement, k: string) => el.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }));
  const selected = () => document.querySelector<HTMLElement>('[role=option][aria-selected="true"]')?.dataset.jid;

  it('lists the file names and the contacts, online first, in a labelled modal with the focus in the search', () => {
    const { dialog, main } = setup();
    expect(dialog.isOpen).toBe(false);
    dialog.add(files, stateWith([]));
    const box = $('send-to-dialog');
    expect(box.getAttribute('role')).toBe('dialog');
    expect(box.getAttribute('aria-modal')).toBe('true');
    expect(document.getElementById(box.getAttribute('aria-labelledby')!)!.textContent).toBe('Send 2 files');
    expect(document.getElementById(box.getAttribute('aria-describedby')!)!.textContent).toBe('Choose the contact to send to.');
    const names = [...$('send-to-files').querySelectorAll('li')];
    expect(names.map((li) => li.textContent)).toEqual(['report.pdf', 'Holiday 2024']);
    expect(names.map((li) => li.dataset.kind)).toEqual(['file', 'folder']);
    expect(names[0]!.title).toBe(files[0]);
    expect(rowIds()).toEqual(['send-to-bob@localhost', 'send-to-dave@localhost', 'send-to-carol@localhost']);
    const search = $('send-to-search') as HTMLInputElement;
    expect(document.activeElement).toBe(search);
    expect(search.getAttribute('role')).toBe('combobox');
    expect($('send-to-list').getAttribute('role')).toBe('listbox');
    expect(search.getAttribute('aria-controls')).toBe($('send-to-list').id);
    // The first contact is selected, for Enter.
    expect(search.getAttribute('aria-activedescendant')).toBe($('send-to-bob@localhost').id);
    expect(selected()).toBe('bob@localhost');
    expect($('send-to-bob@localhost').querySelector('.presence-text')!.textContent).toBe('Available');
    expect(main.inert).toBe(true);
  });

  it('offers offline contacts only while uploads are allowed', () => {
    const { dialog, actions } = setup();
    dialog.add(files, stateWith([]));
    const carol = $('send-to-carol@localhost');
    expect(carol.getAttribute('aria-disabled')).toBe('true');
    expect(carol.querySelector('.presence-text')!.textContent).toBe('Offline — allow HTTP upload in the settings to send to offline contacts');
    carol.click();
    expect(actions.send).not.toHaveBeenCalled();
    expect(dialog.isOpen).toBe(true);
    dialog.setUploadWhenOffline(true);
    expect(carol.hasAttribute('aria-disabled')).toBe(false);
    expect(carol.querySelector('.presence-text')!.textContent).toBe('Offline — will be uploaded to your server and sent as a link');
    carol.click();
    expect(actions.send).toHaveBeenCalledWith('carol@localhost', files);
    expect(dialog.isOpen).toBe(false);
  });

  it('moves the selection with the arrow keys over selectable rows and sends with Enter', () => {
    const { dialog, actions, main, outside } = setup();
    dialog.add(files, stateWith([]));
    const search = $('send-to-search');
    key(search, 'ArrowDown');
    expect(selected()).toBe('dave@localhost');
    key(search, 'ArrowDown'); // Carol is offline and uploads are off: skipped, the end
    expect(selected()).toBe('dave@localhost');
    key(search, 'ArrowUp');
    expect(selected()).toBe('bob@localhost');
    key(search, 'ArrowUp');
    expect(selected()).toBe('bob@localhost');
    // From the Cancel button, the arrows bring the focus back to the search box.
    $('send-to-cancel').focus();
    key($('send-to-cancel'), 'ArrowDown');
    expect(document.activeElement).toBe(search);
    expect(search.getAttribute('aria-activedescendant')).toBe($('send-to-dave@localhost').id);
    key(search, 'Enter');
    expect(actions.send).toHaveBeenCalledExactlyOnceWith('dave@localhost', files);
    expect(dialog.isOpen).toBe(false);
    expect(main.inert).toBe(false);
    expect(document.activeElement).toBe(outside);
  });

  it('filters as you type, selecting the first match', () => {
    const { dialog, actions } = setup();
    dialog.setUploadWhenOffline(true);
    dialog.add(files, stateWith([]));
    const search = $('send-to-search') as HTMLInputElement;
    search.value = 'CAR';
    search.dispatchEvent(new Event('input'));
    expect(rowIds()).toEqual(['send-to-carol@localhost']);
    expect(selected()).toBe('carol@localhost');
    search.value = 'zzz';
    search.dispatchEvent(new Event('input'));
    expect(rowIds()).toEqual([]);
    expect($('send-to-empty').textContent).toBe('No contact matches “zzz”.');
    expect(search.hasAttribute('aria-activedescendant')).toBe(false);
    key(search, 'Enter'); // nobody selected: nothing happens
    expect(actions.send).not.toHaveBeenCalled();
    expect(dialog.isOpen).toBe(true);
  });

  it('closes without sending on Escape or Cancel, and starts afresh next time', () => {
    const { dialog, actions, outside } = setup();
    dialog.add(files, stateWith([]));
    const search = $('send-to-search') as HTMLInputElement;
    search.value = 'dave';
    search.dispatchEvent(new Event('input'));
    key(search, 'Escape');
    expect(dialog.isOpen).toBe(false);
    expect(document.activeElement).toBe(outside);
    dialog.add(['/tmp/a.txt'], stateWith([]));
    expect(dialog.files).toEqual(['/tmp/a.txt']);
    expect(search.value).toBe('');
    expect(rowIds()).toHaveLength(3);
    expect($('send-to-dialog').querySelector('.modal-title')!.textContent).toBe('Send a file');
    $('send-to-cancel').click();
    expect(dialog.isOpen).toBe(false);
    expect(actions.send).not.toHaveBeenCalled();
  });

  it('adds files that arrive while open (once each), keeping the selection and the focus', () => {
    const { dialog, actions } = setup();
    const s = stateWith([]);
    dialog.add(files, s);
    const search = $('send-to-search');
    key(search, 'ArrowDown');
    dialog.add([files[1]!, '/home/alice/notes.txt'], s);
    expect(dialog.files).toEqual([...files, '/home/alice/notes.txt']);
    expect($('send-to-dialog').querySelector('.modal-title')!.textContent).toBe('Send 3 files');
    expect(selected()).toBe('dave@localhost');
    expect(document.activeElement).toBe(search);
    // Presence changes follow while open: Carol comes online and can be chosen.
    applyEvent(s, { type: 'presence', jid: 'carol@localhost/pc', resource: 'pc', available: true, show: 'away', status: null, priority: 0 }, emptyDirty(), 0);
    dialog.render(s);
    expect(rowIds()).toEqual(['send-to-bob@localhost', 'send-to-carol@localhost', 'send-to-dave@localhost']);
    expect(selected()).toBe('dave@localhost');
    $('send-to-carol@localhost').click();
    expect(actions.send).toHaveBeenCalledWith('carol@localhost', [...files, '/home/alice/notes.txt']);
  });

  it('reads in Simplified Chinese', () => {
    const { dialog } = setup();
    dialog.add(files, stateWith([]));
    setLanguage('zh-CN');
    dialog.relabel();
    expect($('send-to-dialog').querySelector('.modal-title')!.textContent).toBe('发送 2 个文件');
    expect($('send-to-cancel').textContent).toBe('取消');
    expect($('send-to-carol@localhost').querySelector('.presence-text')!.textContent).toContain('HTTP 上传');
    expect($('send-to-search').getAttribute('placeholder')).toBe('搜索联系人');
  });

  it('lets an offer that arrives meanwhile come on top, drawn last, and gets the focus back after it', () => {
    const { dialog } = setup();
    const host = document.querySelector('main + div') as HTMLElement;
    // The offer dialog was made after this one, yet opened first.
    const offers = new OfferDialog(host, () => [], { accept: vi.fn(async () => {}), decline: vi.fn(async () => {}), pickFolder: vi.fn(async () => null), defaultDir: () => '', listFiles: vi.fn(async () => []) });
    offers.render(stateWith([offer(1)]));
    dialog.add(files, stateWith([]));
    const sendTo = $('send-to-dialog').closest<HTMLElement>('.modal-backdrop')!;
    const offerBox = $('offer-dialog').closest<HTMLElement>('.modal-backdrop')!;
    expect(host.lastElementChild).toBe(sendTo);
    expect(offerBox.inert).toBe(true);
    expect(sendTo.inert).toBe(false);
    // An offer now: on top of "Send", which waits inert underneath.
    offers.render(stateWith([]));
    offers.render(stateWith([offer(2)]));
    expect(host.lastElementChild).toBe(offerBox);
    expect(sendTo.inert).toBe(true);
    offers.render(stateWith([]));
    expect(sendTo.inert).toBe(false);
    expect(document.activeElement).toBe($('send-to-search'));
  });

  it('tells folders by a trailing separator and merges paths once each', () => {
    expect(looksLikeFolder('/home/a/Photos/')).toBe(true);
    expect(looksLikeFolder('C:\\Users\\a\\Photos\\')).toBe(true);
    expect(looksLikeFolder('/home/a/photo.jpg')).toBe(false);
    expect(looksLikeFolder('/')).toBe(false);
    expect(mergePaths(['/a', '/b'], ['/b', '/c', '', '/c'])).toEqual(['/a', '/b', '/c']);
  });
});

describe('certificate dialog', () => {
  const FP = 'SHA256:FE:6D:FB:85:A8:78:90:E7:B6:72:EE:72:3E:F3:D8:5C:14:B1:75:CA:52:42:A2:05:5B:EA:5B:30:57:61:A6:3F';
  const NOW = Date.UTC(2026, 5, 1) ; // 2026-06-01
  const secs = (y: number, m: number, d: number) => Date.UTC(y, m - 1, d) / 1000;
  const untrusted = (extra: Partial<Untrusted> = {}, cert: Partial<Untrusted['certificate']> = {}): Untrusted => ({
    host: 'example.org',
    certificate: {
      subject: 'CN=example.org',
      issuer: 'CN=example.org',
      self_signed: true,
      not_before: secs(2026, 1, 1),
      not_after: secs(2027, 1, 1),
      names: ['example.org', 'upload.example.org'],
      fingerprint: FP,
      ...cert,
    },
    reason: 'self-signed',
    changed: false,
    detail: 'invalid peer certificate: UnknownIssuer',
    ...extra,
  });

  function setup() {
    const { host, main, outside } = modalHost();
    const dialog = new CertificateDialog(host, () => [main], () => NOW);
    const box = () => document.querySelector<HTMLElement>('[data-testid="cert-dialog"]')!;
    const open = () => !box().closest('.modal-backdrop')!.hasAttribute('hidden');
    const text = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`)!.textContent;
    return { dialog, main, outside, box, open, text };
  }

  it('shows the certificate, why it is not trusted, labelled and described, Cancel focused', () => {
    const { dialog, main, box, text } = setup();
    void dialog.ask(untrusted());
    const b = box();
    expect(b.getAttribute('role')).toBe('dialog');
    expect(b.getAttribute('aria-modal')).toBe('true');
    expect(document.getElementById(b.getAttribute('aria-labelledby')!)!.textContent).toBe('Untrusted server certificate');
    const desc = document.getElementById(b.getAttribute('aria-describedby')!)!.textContent!;
    expect(desc).toContain('Skiff cannot confirm that this is really example.org: its certificate is not trusted.');
    expect(desc).toContain('It is self-signed: no certificate authority vouches for it.');
    expect(b.dataset.changed).toBe('false');
    expect(b.querySelector<HTMLElement>('.cert-band')!.hidden).toBe(true);
    const rows = Object.fromEntries([...b.querySelectorAll('.dl-row')].map((r) => [r.querySelector('dt')!.textContent, r.querySelector('dd')!.textContent]));
    expect(rows).toMatchObject({ Server: 'example.org', 'Issued to': 'CN=example.org', 'Issued by': 'Itself (self-signed)' });
    expect(rows.Valid).toContain('2026');
    expect(rows.Valid).toContain('2027');
    expect(rows.Names).toBe('example.orgupload.example.org');
    expect([...b.querySelectorAll('.cert-name')].map((n) => n.textContent)).toEqual(['example.org', 'upload.example.org']);
    // The fingerprint in groups that copy back to the pairs.
    const fp = document.querySelector<HTMLElement>('[data-testid="cert-fingerprint"]')!;
    expect([...fp.querySelectorAll('.cert-fp-group')].map((g) => g.textContent)).toEqual([
      'FE:6D:FB:85:', 'A8:78:90:E7:', 'B6:72:EE:72:', '3E:F3:D8:5C:', '14:B1:75:CA:', '52:42:A2:05:', '5B:EA:5B:30:', '57:61:A6:3F',
    ]);
    expect(fp.textContent).toBe(FP.slice(7));
    expect(fp.dataset.fingerprint).toBe(FP);
    expect(document.getElementById(fp.getAttribute('aria-labelledby')!)!.textContent).toBe('SHA-256 fingerprint');
    expect(text('cert-trust')).toBe('Trust this certificate for this account');
    expect(text('cert-cancel')).toBe('Cancel');
    expect(document.activeElement).toBe(document.querySelector('[data-testid="cert-cancel"]'));
    expect(main.inert).toBe(true);
    expect(b.querySelector('[data-testid="cert-expired"]')).toBeNull();
  });

  it('answers true for Trust, false for Cancel, Esc or Enter on Cancel, and gives focus back', async () => {
    const { dialog, main, outside, box, open } = setup();
    outside.focus();
    const trusted = dialog.ask(untrusted());
    (document.querySelector('[data-testid="cert-trust"]') as HTMLElement).click();
    await expect(trusted).resolves.toBe(true);
    expect(open()).toBe(false);
    expect(main.inert).toBe(false);
    expect(document.activeElement).toBe(outside);

    const cancelled = dialog.ask(untrusted());
    (document.querySelector('[data-testid="cert-cancel"]') as HTMLElement).click();
    await expect(cancelled).resolves.toBe(false);

    const escaped = dialog.ask(untrusted());
    box().dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    await expect(escaped).resolves.toBe(false);
    expect(open()).toBe(false);

    // Enter has no dialog-wide meaning: on the focused Cancel it is a click (the browser's), never Trust.
    const entered = dialog.ask(untrusted());
    const cancel = document.activeElement as HTMLElement;
    expect(cancel.dataset.testid).toBe('cert-cancel');
    cancel.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    expect(open()).toBe(true);
    cancel.click();
    await expect(entered).resolves.toBe(false);
  });

  it('keeps Tab inside, from Cancel round to Trust', () => {
    const { dialog } = setup();
    void dialog.ask(untrusted());
    const trust = document.querySelector('[data-testid="cert-trust"]') as HTMLElement;
    const cancel = document.querySelector('[data-testid="cert-cancel"]') as HTMLElement;
    cancel.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', bubbles: true }));
    expect(document.activeElement).toBe(trust);
    trust.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', shiftKey: true, bubbles: true }));
    expect(document.activeElement).toBe(cancel);
  });

  it('warns about a changed certificate', () => {
    const { dialog, box, text } = setup();
    void dialog.ask(untrusted({ changed: true, reason: 'unknown-issuer' }, { self_signed: false, issuer: 'CN=Inspection Proxy CA' }));
    const b = box();
    expect(b.dataset.changed).toBe('true');
    expect(b.classList.contains('is-changed')).toBe(true);
    expect(b.querySelector<HTMLElement>('.cert-band')!.hidden).toBe(false);
    expect(b.querySelector('.cert-band')!.textContent).toBe('Security warning');
    expect(document.getElementById(b.getAttribute('aria-labelledby')!)!.textContent).toBe('The server’s certificate has changed');
    expect(text('cert-warning')).toBe(
      'This is not the certificate you trusted before for example.org. The server may have changed its certificate, or someone may be intercepting the connection. Only continue if the server’s admin confirms the new fingerprint.',
    );
    expect(document.getElementById(b.getAttribute('aria-describedby')!)!.textContent).toContain('intercepting');
    expect(text('cert-reason')).toBe('It is signed by an authority this computer does not trust.');
    expect(b.textContent).toContain('CN=Inspection Proxy CA');
    expect(b.textContent).not.toContain('Itself (self-signed)');
    expect(text('cert-trust')).toBe('Trust the new certificate');
    expect(document.activeElement).toBe(document.querySelector('[data-testid="cert-cancel"]'));
    // The next question is a plain one again.
    (document.querySelector('[data-testid="cert-cancel"]') as HTMLElement).click();
    void dialog.ask(untrusted());
    expect(b.dataset.changed).toBe('false');
    expect(b.querySelector('[data-testid="cert-warning"]')).toBeNull();
  });

  it('flags expired and not yet valid certificates', () => {
    const { dialog, box } = setup();
    void dialog.ask(untrusted({ reason: 'expired' }, { not_before: secs(2025, 1, 1), not_after: secs(2026, 1, 1) }));
    expect(box().querySelector('[data-testid="cert-expired"]')!.textContent).toBe('Expired');
    expect(box().querySelector<HTMLElement>('[data-validity]')!.dataset.validity).toBe('expired');
    expect(box().querySelector('[data-testid="cert-reason"]')!.textContent).toBe('It has expired.');
    void dialog.ask(untrusted({ reason: 'not-yet-valid' }, { not_before: secs(2026, 7, 1), not_after: secs(2027, 7, 1) }));
    expect(box().querySelector('[data-testid="cert-expired"]')).toBeNull();
    expect(box().querySelector('[data-testid="cert-not-yet-valid"]')!.textContent).toBe('Not yet valid');
    // Nothing known (the shell could not read the certificate): no validity row, "Unknown" names.
    void dialog.ask(untrusted({ reason: 'invalid' }, { subject: '', issuer: '', self_signed: false, not_before: 0, not_after: 0, names: [] }));
    expect(box().querySelector('[data-validity]')).toBeNull();
    expect(box().querySelector('.cert-details')!.textContent).toContain('Unknown');
    expect(box().querySelector('.cert-details')!.textContent).toContain('None');
  });

  it('a second question answers the first with Cancel', async () => {
    const { dialog } = setup();
    const first = dialog.ask(untrusted());
    const second = dialog.ask(untrusted({ changed: true }));
    await expect(first).resolves.toBe(false);
    (document.querySelector('[data-testid="cert-trust"]') as HTMLElement).click();
    await expect(second).resolves.toBe(true);
  });

  it('shows dates in the UI language and relabels live', () => {
    const { dialog, box, text } = setup();
    void dialog.ask(untrusted({ reason: 'wrong-name' }));
    const dates = () => box().querySelector('.cert-dates')!.textContent!;
    expect(text('cert-reason')).toBe('It was issued for other names, not for example.org.');
    const english = dates();
    setLanguage('zh-CN');
    dialog.relabel();
    expect(document.getElementById('cert-title')!.textContent).toBe('不受信任的服务器证书');
    expect(text('cert-reason')).toBe('它是为其他名称签发的，不适用于 example.org。');
    expect(text('cert-trust')).toBe('为此账号信任此证书');
    expect(dates()).not.toBe(english);
    expect(dates()).toContain('年');
    expect(dates()).toContain(' 至 ');
  });

  it('has one translated sentence for every reason', () => {
    const reasons: UntrustedReason[] = ['self-signed', 'unknown-issuer', 'wrong-name', 'expired', 'not-yet-valid', 'revoked', 'invalid'];
    const sentences = reasons.map((reason) => reasonText(untrusted({ reason })));
    expect(new Set(sentences).size).toBe(reasons.length);
    for (const s of sentences) expect(s).toMatch(/^It.*\.$/);
    setLanguage('zh-CN');
    for (const reason of reasons) expect(reasonText(untrusted({ reason }))).toMatch(/[\u4e00-\u9fff].*。$/);
    // A reason this UI does not know yet: the shell's words.
    expect(reasonText(untrusted({ reason: 'quantum' as UntrustedReason }))).toBe('invalid peer certificate: UnknownIssuer');
  });

  it('helpers: fingerprint groups, validity, when to ask', () => {
    expect(fingerprintGroups('SHA256:AA:BB:CC:DD:EE', 2)).toEqual(['AA:BB:', 'CC:DD:', 'EE']);
    expect(fingerprintGroups('abcdef')).toEqual(['abcdef']);
    expect(fingerprintGroups(FP).join('')).toBe(FP.slice(7));
    expect(validity(untrusted(), NOW)).toBe('valid');
    expect(validity(untrusted({}, { not_after: secs(2026, 5, 31) }), NOW)).toBe('expired');
    expect(validity(untrusted({}, { not_before: secs(2026, 6, 2) }), NOW)).toBe('not-yet-valid');
    expect(validity(untrusted({}, { not_before: 0, not_after: 0 }), NOW)).toBe('unknown');
    const args = { jid: 'a@example.org', password: 'pw', tls: 'starttls' as const, remember: true };
    const u = untrusted();
    expect(certificateQuestion({ code: 'certificate-untrusted', message: 'm', untrusted: u }, args)).toBe(u);
    expect(certificateQuestion({ code: 'certificate-changed', message: 'm', untrusted: u }, args)).toBe(u);
    expect(certificateQuestion({ code: 'certificate-untrusted', message: 'm' }, args)).toBeNull();
    expect(certificateQuestion({ code: 'tls', message: 'm', untrusted: u }, args)).toBeNull();
    // Not the certificate the user just trusted, in whatever spelling.
    expect(certificateQuestion({ code: 'certificate-untrusted', message: 'm', untrusted: u }, { ...args, trustFingerprint: FP.slice(7).toLowerCase() })).toBeNull();
    expect(certificateQuestion({ code: 'certificate-untrusted', message: 'm', untrusted: u }, { ...args, trustFingerprint: `sha256:${FP.slice(7).replace(/:/g, '')}` })).toBeNull();
    expect(certificateQuestion({ code: 'certificate-changed', message: 'm', untrusted: u }, { ...args, trustFingerprint: 'SHA256:00' })).toBe(u);
  });
});

describe('settings dialog', () => {
  const base: Settings = { ...DEFAULT_SETTINGS, downloadDir: '/home/alice/Downloads' };

  function setup() {
    const host = document.createElement('div');
    document.body.append(host);
    const saved: Settings[] = [];
    const dialog = new SettingsDialog(host, () => [], {
      pickFolder: async () => null,
      save: async (s) => (saved.push(s), true),
      preview: () => {},
    });
    const box = (id: string) => document.querySelector<HTMLInputElement>(`[data-testid="${id}"]`)!;
    return { dialog, saved, box };
  }

  it('asks about files from strangers by default, and saves "Refuse"', async () => {
    const { dialog, saved, box } = setup();
    dialog.open(base);
    const strangers = document.querySelector<HTMLSelectElement>('[data-testid="settings-strangers"]')!;
    expect(strangers.value).toBe('ask');
    expect(strangers.closest('.settings-section')!.querySelector('.section-title')!.textContent).toBe('Receiving');
    expect(document.querySelector(`label[for="${strangers.id}"]`)!.textContent).toBe('Files from people not in my contacts');
    expect([...strangers.options].map((o) => [o.value, o.textContent])).toEqual([
      ['ask', 'Ask me'],
      ['refuse', 'Refuse'],
    ]);
    expect(document.getElementById(strangers.getAttribute('aria-describedby')!)!.textContent).toContain('never accepted automatically');
    strangers.value = 'refuse';
    strangers.dispatchEvent(new Event('change'));
    box('settings-save').click();
    await vi.waitFor(() => expect(saved.length).toBe(1));
    expect(saved[0]).toEqual({ ...base, strangers: 'refuse' });
    // Opened again with the saved value; Cancel keeps it.
    dialog.open(saved[0]!);
    expect(strangers.value).toBe('refuse');
  });

  it('labels the stranger setting in Simplified Chinese', () => {
    const { dialog } = setup();
    setLanguage('zh-CN');
    try {
      dialog.open(base);
      const strangers = document.querySelector<HTMLSelectElement>('[data-testid="settings-strangers"]')!;
      expect(document.querySelector(`label[for="${strangers.id}"]`)!.textContent).toBe('不在联系人列表中的人发来的文件');
      expect([...strangers.options].map((o) => o.textContent)).toEqual(['询问我', '拒收']);
    } finally {
      setLanguage('en');
    }
  });

  it('shows HTTP upload and HTTP links as labelled checkboxes and saves them with the rest', async () => {
    const { dialog, saved, box } = setup();
    dialog.open(base);
    const upload = box('settings-allow-upload');
    const serve = box('settings-serve-http');
    expect(upload.checked).toBe(true);
    expect(serve.checked).toBe(false);
    expect(document.querySelector(`label[for="${upload.id}"]`)!.textContent).toBe('Send by HTTP upload when a direct transfer is not possible');
    expect(document.querySelector(`label[for="${serve.id}"]`)!.textContent).toBe('Let contacts on my network download files from this computer');
    expect(document.getElementById(upload.getAttribute('aria-describedby')!)!.textContent).toContain('uploaded to your server and sent as a link');
    expect(document.getElementById(serve.getAttribute('aria-describedby')!)!.textContent).toContain('jabber:iq:oob');
    upload.click();
    serve.click();
    box('settings-save').click();
    await vi.waitFor(() => expect(saved).toHaveLength(1));
    expect(saved[0]).toEqual({ ...base, allowUpload: false, serveHttp: true });
    // Opened again with what was saved: the boxes show it.
    dialog.open(saved[0]!);
    expect(upload.checked).toBe(false);
    expect(serve.checked).toBe(true);
  });

  it('puts the saved values back when cancelled', () => {
    const { dialog, saved, box } = setup();
    dialog.open({ ...base, allowUpload: false, serveHttp: true });
    box('settings-allow-upload').click();
    box('settings-cancel').click();
    dialog.open({ ...base, allowUpload: false, serveHttp: true });
    expect(box('settings-allow-upload').checked).toBe(false);
    expect(box('settings-serve-http').checked).toBe(true);
    expect(saved).toEqual([]);
  });
});

describe('history helpers', () => {
  it('turns filters into the history command arguments', () => {
    expect(queryOf(NO_FILTERS)).toEqual({ limit: 500 });
    const q = queryOf({ peer: 'bob@localhost', direction: 'incoming', state: 'completed', name: ' pdf ', since: '2025-03-01', until: '2025-03-10' });
    expect(q).toEqual({
      limit: 500,
      peer: 'bob@localhost',
      direction: 'incoming',
      state: 'completed',
      nameContains: 'pdf',
      sinceMs: new Date(2025, 2, 1).getTime(),
      untilMs: new Date(2025, 2, 11).getTime(), // the whole "until" day counts
    });
  });

  const NONE: RecordActions = { open: false, show: false, resend: false, resume: false, upload: false, remove: false };
  /** A history entry: an outgoing transfer to Bob with the given `actions` (none unless said). */
  const entry = (id: number, extra: Partial<TransferRecord> = {}, actions: Partial<RecordActions> = {}): HistoryEntry => ({
    id, sid: '', direction: 'outgoing', account: '', peer_jid: 'bob@localhost/pc', file_name: `f${id}`, local_path: `/f${id}`, size: 1,
    md5: null, sha256: null, date: null, description: null, route: null, streamhost: null, state: 'interrupted',
    bytes_done: 0, error: 'lost', fail_reason: 'network', created_at: 0, updated_at: 0, finished_at: null, offset: 0, attempts: 1, url: null, verified: 'none',
    parent: null, files: null, rel_path: null, protocol: null,
    ...extra,
    actions: { ...NONE, ...actions },
  });
  /** A history view over `entries`, `live` ids running now. */
  const historyView = (entries: HistoryEntry[], live: number[] = [], extra: Partial<HistoryActions> = {}) =>
    new HistoryView({
      load: async () => entries,
      open: vi.fn(), showInFolder: vi.fn(), resend: vi.fn(), resume: vi.fn(), uploadInstead: vi.fn(), remove: vi.fn(async () => true),
      isLive: (id) => live.includes(id),
      ...extra,
    });
  /** The buttons row `id` shows, by action. */
  const rowButtons = (id: number) =>
    [...document.querySelectorAll<HTMLButtonElement>(`[data-testid="history-${id}"] .row-actions button`)].map((b) => b.dataset.action);

  it('offers the actions the engine allows, none that would restart or drop a running transfer', () => {
    const all = { open: true, show: true, resend: true, resume: true, upload: true, remove: true };
    expect(rowActions(entry(1, {}, all), false)).toEqual(all);
    expect(rowActions(entry(1, {}, all), true)).toEqual({ ...NONE, open: true, show: true });
    expect(rowActions(entry(1, {}, { show: true, resend: true, resume: true }), false)).toEqual({ ...NONE, show: true, resend: true, resume: true });
    expect(rowActions(entry(1), false)).toEqual(NONE);
    const r = entry(1);
    expect(errorNote(r)).toBe('lost');
    expect(errorNote({ ...r, state: 'rejected', error: 'declined' })).toBe('');
    expect(errorNote({ ...r, state: 'rejected', error: 'too large' })).toBe('too large');
    expect(errorNote({ ...r, state: 'cancelled', error: 'cancelled' })).toBe('');
  });

  it('shows on each row the buttons its actions allow, while it does not run', async () => {
    const view = historyView(
      [
        entry(1, {}, { show: true, resend: true, resume: true, upload: true, remove: true }),
        entry(2, {}, { show: true, resend: true, resume: true, upload: true, remove: true }),
        entry(3, { direction: 'incoming', state: 'completed' }, { open: true, show: true, remove: true }),
      ],
      [2],
    );
    document.body.append(view.el);
    await view.refresh();
    expect(rowButtons(1)).toEqual(['show', 'resend', 'resume', 'upload', 'remove']);
    expect(rowButtons(2)).toEqual(['show']); // started since the history was loaded
    expect(rowButtons(3)).toEqual(['open', 'show', 'remove']);
  });

  it('shows no resume button where the engine says no, even for an interrupted transfer of ours', async () => {
    const resume = vi.fn();
    const view = historyView(
      [
        entry(1, { state: 'interrupted' }, { show: true, resend: true, remove: true }),
        // An interrupted link we fetch: the engine lets it go on.
        entry(2, { direction: 'incoming', local_path: '/f2.part', url: 'https://x/f2' }, { resume: true, remove: true }),
      ],
      [],
      { resume },
    );
    document.body.append(view.el);
    await view.refresh();
    expect(rowButtons(1)).toEqual(['show', 'resend', 'remove']);
    expect(document.querySelector('[data-testid="history-1-resume"]')).toBeNull();
    expect(rowButtons(2)).toEqual(['resume', 'remove']);
    document.querySelector<HTMLButtonElement>('[data-testid="history-2-resume"]')!.click();
    expect(resume).toHaveBeenCalledWith(expect.objectContaining({ id: 2 }));
  });

  it('shows "Send by upload" on the rows whose actions allow it', async () => {
    const uploadInstead = vi.fn();
    const view = historyView(
      [
        entry(1, { state: 'failed' }, { show: true, resend: true, upload: true, remove: true }),
        entry(2, { state: 'failed' }, { show: true, resend: true, remove: true }),
        entry(3, { state: 'completed' }, { open: true, show: true, resend: true, remove: true }),
      ],
      [],
      { uploadInstead },
    );
    document.body.append(view.el);
    await view.refresh();
    const b = document.querySelector<HTMLButtonElement>('[data-testid="history-1-upload"]')!;
    expect(b).not.toBeNull();
    expect(b.getAttribute('aria-label')).toBe('Send by upload: f1');
    expect(document.querySelector('[data-testid="history-2-upload"]')).toBeNull();
    expect(document.querySelector('[data-testid="history-3-upload"]')).toBeNull();
    // Every row keeps six slots, so the buttons line up.
    for (const id of [1, 2, 3]) expect(document.querySelector(`[data-testid="history-${id}"] .row-actions`)!.children).toHaveLength(6);
    b.click();
    expect(uploadInstead).toHaveBeenCalledWith(expect.objectContaining({ id: 1 }));
  });
});

describe('history view', () => {
  const rec = (id: number, extra: Partial<TransferRecord>): HistoryEntry => ({
    id, sid: '', direction: 'incoming', account: '', peer_jid: 'bob@localhost/pc', file_name: `f${id}`, local_path: `/f${id}`, size: 1,
    md5: null, sha256: null, date: null, description: null, route: 's5b-direct', streamhost: null, state: 'completed',
    bytes_done: 1, error: null, fail_reason: null, created_at: 0, updated_at: 0, finished_at: 0, offset: 0, attempts: 1, url: null, verified: 'sha256',
    parent: null, files: null, rel_path: null, protocol: null,
    actions: { open: true, show: true, resend: false, resume: false, upload: false, remove: true },
    ...extra,
  });
  const view = (records: HistoryEntry[], load = vi.fn(async () => records)) =>
    new HistoryView({
      load, open: vi.fn(), showInFolder: vi.fn(), resend: vi.fn(), resume: vi.fn(), uploadInstead: vi.fn(), remove: vi.fn(async () => true),
      isLive: () => false,
    });

  it('shows whether each completed transfer was verified, in the state badge', async () => {
    const v = view([
      rec(1, {}),
      rec(2, { verified: 'md5' }),
      rec(3, { verified: 'none', route: 'oob' }),
      rec(4, { direction: 'outgoing' }),
      rec(5, { direction: 'outgoing', verified: 'none', route: 'upload' }),
      rec(6, { state: 'failed', verified: 'none', error: "The file arrived damaged: its SHA-256 does not match the sender's." }),
    ]);
    document.body.append(v.el);
    await v.refresh();
    const row = (id: number) => document.querySelector<HTMLElement>(`[data-testid="history-${id}"]`)!;
    const badge = (id: number) => row(id).querySelector<HTMLElement>('.state-badge')!;
    expect([1, 2, 3, 4, 5].map((id) => [row(id).dataset.verified, badge(id).dataset.verified, badge(id).textContent])).toEqual([
      ['sha256', 'sha256', 'Verified'],
      ['md5', 'md5', 'Verified (MD5)'],
      ['none', 'none', 'Not verified'],
      ['sha256', 'sha256', 'Confirmed'],
      ['none', 'none', 'Not confirmed'],
    ]);
    expect(badge(3).title).toContain('Only the size was checked');
    expect(badge(3).querySelector('.badge-icon .icon')).not.toBeNull();
    expect(badge(5).title).toContain('Nobody confirmed');
    expect(badge(1).title).toContain('SHA-256');
    expect(document.querySelector('[data-testid="history-table"] tbody')!.textContent).not.toContain('Completed');
    // Other states keep their name and carry no verdict; a damaged file is a failure with its reason.
    expect(row(6).hasAttribute('data-verified')).toBe(false);
    expect(badge(6).hasAttribute('data-verified')).toBe(false);
    expect(badge(6).textContent).toBe('Failed');
    expect(row(6).querySelector('.cell-error')!.textContent).toContain('SHA-256 does not match');
    setLanguage('zh-CN');
    v.relabel();
    expect([1, 3, 5].map((id) => badge(id).textContent)).toEqual(['已校验', '未校验', '未确认']);
  });

  it('shows the protocol beside the route: Jingle, SI, nothing for none', async () => {
    const v = view([
      rec(1, { protocol: 'jingle', route: 's5b-proxy', streamhost: 'proxy.localhost' }),
      rec(2, { protocol: 'si' }),
      rec(3, { protocol: null, route: 'oob', verified: 'none' }),
      rec(4, { protocol: null, route: null, state: 'rejected', error: 'declined', verified: 'none' }),
    ]);
    document.body.append(v.el);
    await v.refresh();
    const cell = (id: number) => document.querySelector<HTMLElement>(`[data-testid="history-${id}"] .col-route`)!;
    const badge = (id: number) => document.querySelector<HTMLElement>(`[data-testid="history-${id}-protocol"]`);
    expect(badge(1)!.hidden).toBe(false);
    expect(badge(1)!.textContent).toBe('Jingle');
    expect(badge(1)!.title).toBe('Set up by Jingle file transfer (XEP-0234)');
    expect(badge(1)!.getAttribute('aria-label')).toBe('Set up by Jingle file transfer (XEP-0234)');
    expect(badge(1)!.nextElementSibling!.textContent).toBe('Proxy');
    expect(badge(2)!.textContent).toBe('SI');
    expect(badge(2)!.title).toContain('XEP-0096');
    expect(badge(3)!.hidden).toBe(true);
    expect(cell(3).querySelector('.route-badge')!.textContent).toBe('Link');
    expect(cell(3).querySelector('.protocol-badge:not([hidden])')).toBeNull();
    expect(badge(4)).toBeNull();
    expect(cell(4).textContent).toBe('—');
    setLanguage('zh-CN');
    v.relabel();
    expect(badge(1)!.textContent).toBe('Jingle');
    expect(badge(1)!.title).toBe('由 Jingle 文件传输协议（XEP-0234）建立');
    expect(badge(2)!.textContent).toBe('SI');
  });

  it('filters completed transfers as completed, verified or not', async () => {
    const load = vi.fn(async () => [rec(1, {}), rec(2, { verified: 'none' })]);
    const v = view([], load);
    document.body.append(v.el);
    await v.refresh();
    const sel = document.querySelector<HTMLSelectElement>('[data-testid="history-state"]')!;
    expect([...sel.options].map((o) => o.value)).toContain('completed');
    expect([...sel.options].find((o) => o.value === 'completed')!.textContent).toBe('Completed');
    sel.value = 'completed';
    sel.dispatchEvent(new Event('change'));
    await vi.waitFor(() => expect(load).toHaveBeenLastCalledWith({ limit: 500, state: 'completed' }));
    await vi.waitFor(() => expect(document.querySelectorAll('tr[data-verified]')).toHaveLength(2));
  });
});

describe('settings helpers', () => {
  it('converts auto-accept sizes', () => {
    expect(sizeToForm(100 * 1024 * 1024)).toEqual({ value: 100, unit: 'MiB' });
    expect(sizeToForm(2 * 1024 ** 3)).toEqual({ value: 2, unit: 'GiB' });
    expect(sizeToForm(1.5 * 1024 ** 3)).toEqual({ value: 1536, unit: 'MiB' });
    expect(formToSize(100, 'MiB')).toBe(100 * 1024 * 1024);
    expect(formToSize(1.5, 'GiB')).toBe(1.5 * 1024 ** 3);
    expect(formToSize(0, 'MiB')).toBe(0);
    expect(formToSize(Number.NaN, 'MiB')).toBe(0);
  });

  it('validates streamhost addresses', () => {
    for (const ok of ['127.0.0.1', '192.168.1.20', '::1', 'fe80::1', '2001:db8::8a2e:370:7334', '::ffff:10.0.0.1', '1:2:3:4:5:6:7:8']) expect(isIpAddress(ok), ok).toBe(true);
    for (const bad of ['', 'localhost', '256.1.1.1', '1.2.3', '1::2::3', '1:2:3:4:5:6:7:8:9', 'gg::1', '10.0.0.1:5000']) expect(isIpAddress(bad), bad).toBe(false);
  });
});

describe('sign-in and header helpers', () => {
  it('checks the form before asking the server', () => {
    expect(validateSignIn('', 'x')).toBe('signin.missingJid');
    expect(validateSignIn('alice', 'x')).toBe('signin.badJid');
    expect(validateSignIn('@localhost', 'x')).toBe('signin.badJid');
    expect(validateSignIn('alice@', 'x')).toBe('signin.badJid');
    expect(validateSignIn('alice@localhost', '')).toBe('signin.missingPassword');
    expect(validateSignIn(' alice@localhost ', 'pw')).toBeNull();
  });

  it('describes errors by code, keeping the shell message as detail', () => {
    expect(describeError({ code: 'auth-failed', message: 'SASL: not-authorized' })).toEqual({ title: 'Wrong address or password.', detail: 'SASL: not-authorized' });
    expect(describeError({ code: 'internal', message: 'Disk full' })).toEqual({ title: 'Disk full', detail: '' });
    expect(describeError({ code: 'internal', message: '' }).title).toBe('Something went wrong.');
    expect(describeError({ code: 'plain-downgrade', message: 'the server offered only PLAIN' })).toEqual({
      title: 'The server offered only plain password sign-in, though this account signed in securely (SCRAM) before. Nothing was sent: this may be an attack.',
      detail: 'the server offered only PLAIN',
    });
    expect(describeError({ code: 'server-auth-invalid', message: 'bad server signature' }).title).toContain('sign-in answers are invalid');
  });

  it('words the keyring note: a localised headline, the shell\'s sentence under it', () => {
    const note = 'your password was not saved: no keyring service is available on this computer; you will be asked for it next time. Nothing was written to disk';
    expect(describePasswordNote(note)).toEqual({
      title: 'Signed in, but your password was not remembered.',
      detail: 'Your password was not saved: no keyring service is available on this computer; you will be asked for it next time. Nothing was written to disk.',
    });
    expect(describePasswordNote(' Already a sentence. ').detail).toBe('Already a sentence.');
    setLanguage('zh-CN');
    expect(describePasswordNote(note).title).toBe('已登录，但密码没有被记住。');
    setLanguage('en');
  });

  it('says how the connection stands', () => {
    expect(connectionText({ kind: 'online', jid: 'a@b/c', tls: true, mechanism: 'SCRAM-SHA-256' }, 0)).toMatchObject({ text: 'Online', kind: 'online' });
    expect(connectionText({ kind: 'reconnecting', attempt: 2, at: 5000 }, 1200).text).toBe('Reconnecting in 4 s');
    expect(connectionText({ kind: 'reconnecting', attempt: 2, at: 5000 }, 6000).text).toBe('Reconnecting…');
    expect(connectionText({ kind: 'offline', reason: 'connection reset', willRetry: true }, 0).text).toBe('Offline: connection reset');
    setLanguage('zh-CN');
    expect(connectionText({ kind: 'reconnecting', attempt: 2, at: 5000 }, 0).text).toBe('5 秒后重新连接');
  });
});

describe('Toasts', () => {
  it('replaces a repeated message, keeps at most four, and expires them', () => {
    vi.useFakeTimers();
    try {
      const toasts = new Toasts(1000);
      toasts.show('Settings saved.');
      toasts.show('Settings saved.');
      expect(toasts.el.querySelectorAll('.toast').length).toBe(1);
      for (let i = 0; i < 6; i++) toasts.show(`m${i}`);
      expect([...toasts.el.querySelectorAll('.toast-text')].map((e) => e.textContent)).toEqual(['m2', 'm3', 'm4', 'm5']);
      toasts.show('Broken', 'error');
      vi.advanceTimersByTime(1001);
      expect([...toasts.el.querySelectorAll('.toast-text')].map((e) => e.textContent)).toEqual(['Broken']);
      vi.advanceTimersByTime(500);
      expect(toasts.el.querySelectorAll('.toast').length).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps a notice with a headline until dismissed, and past the limit of four', () => {
    vi.useFakeTimers();
    try {
      const toasts = new Toasts(1000);
      const note = toasts.show('The keyring is missing.', 'warn', { title: 'Not remembered.', testid: 'password-note', timeoutMs: 0 });
      expect(note.dataset.testid).toBe('password-note');
      expect(note.classList.contains('toast-warn')).toBe(true);
      expect(note.querySelector('.toast-title')!.textContent).toBe('Not remembered.');
      expect(note.querySelector('.toast-text')!.textContent).toBe('Not remembered. The keyring is missing.');
      expect(note.parentElement!.getAttribute('role')).toBe('status');
      for (let i = 0; i < 5; i++) toasts.show(`m${i}`);
      vi.advanceTimersByTime(60_000);
      expect([...toasts.el.querySelectorAll('.toast')]).toEqual([note]);
      note.querySelector<HTMLButtonElement>('.toast-close')!.click();
      expect(toasts.el.querySelectorAll('.toast').length).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
