// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App, applyTheme, autoAcceptPolicy, DEFAULT_SETTINGS } from './app';
import { setLanguage } from './i18n';
import { MockBackend, mockOptionsFromQuery, type MockOptions } from './mock-backend';
import { initialState } from './store';
import type { DragDropEvent } from './types';

const opts = (extra: Partial<MockOptions> = {}): MockOptions => ({ ...mockOptionsFromQuery('?mock&quiet'), tickMs: 0, ...extra });

let backend: MockBackend | null = null;

async function boot(o: Partial<MockOptions> = {}, search = '') {
  document.body.replaceChildren();
  delete document.body.dataset.ready;
  const root = document.createElement('div');
  document.body.append(root);
  backend = new MockBackend(opts(o));
  const app = new App(root, backend, new URLSearchParams(search));
  await app.start();
  await vi.waitFor(() => expect(document.body.dataset.ready).toBe('1'));
  // Let the demo's first events through and a frame render them.
  await vi.waitFor(() => expect(document.querySelectorAll('.transfer-card').length).toBeGreaterThan(0), { timeout: 2000 });
  return { app, backend, root };
}

/** Starts the app on `b` at the sign-in screen (no demo transfers to wait for). */
async function bootSignedOut(b: MockBackend) {
  document.body.replaceChildren();
  delete document.body.dataset.ready;
  const root = document.createElement('div');
  document.body.append(root);
  backend = b;
  await new App(root, b, new URLSearchParams()).start();
  await vi.waitFor(() => expect(document.body.dataset.ready).toBe('1'));
}

afterEach(() => {
  backend?.dispose();
  backend = null;
  setLanguage('en');
});

const q = (sel: string) => document.querySelector<HTMLElement>(sel);

describe('app with the mock backend', () => {
  it('starts signed in: header, contacts, transfers and the ready marker', async () => {
    await boot();
    expect(q('[data-testid="account-jid"]')!.textContent).toBe('alice@localhost');
    expect(q('[data-testid="connection-state"]')!.textContent).toBe('Online');
    expect(q('[data-testid="contact-bob@localhost"]')).not.toBeNull();
    expect(q('[data-testid="contact-carol@localhost"]')!.dataset.presence).toBe('offline');
    const interrupted = [...document.querySelectorAll<HTMLElement>('.transfer-card')].find((c) => c.dataset.state === 'interrupted');
    expect(interrupted).toBeDefined();
    expect(document.documentElement.lang).toBe('en');
  });

  it('shows the demo transfers completing verified, and a link received not verified', async () => {
    await boot({ tickMs: 50, speed: 1000 });
    const cards = () => [...document.querySelectorAll<HTMLElement>('.transfer-card')];
    const byName = (name: string) => cards().find((c) => c.querySelector('.transfer-name')!.textContent === name)!;
    // The demo's transfers with Bob (both Skiffs) finish checked end to end.
    await vi.waitFor(() => expect(byName('Quarterly report – final (v3).pdf').dataset.verified).toBe('sha256'));
    const sent = byName('Quarterly report – final (v3).pdf');
    expect(sent.dataset.state).toBe('completed');
    expect(sent.querySelector('.state-badge')!.textContent).toBe('Confirmed');
    expect(sent.querySelector('.transfer-verified')!.textContent).toBe('Sent · confirmed by the receiver');
    await vi.waitFor(() => expect(byName('holiday-video-4k.mp4').dataset.verified).toBe('sha256'));
    expect(byName('holiday-video-4k.mp4').querySelector('.transfer-verified')!.textContent).toBe('Received · verified (SHA-256)');
    // A recent link from the history: only its size was checked, and the card says so.
    const link = byName('boarding-pass.pdf');
    expect(link.dataset.verified).toBe('none');
    expect(link.querySelector('.state-badge')!.textContent).toBe('Not verified');
    expect(link.querySelector('.transfer-verified')!.getAttribute('title')).toContain('Only the size was checked');
  });

  it('shows and answers an incoming offer, then the next one', async () => {
    await boot({ offers: 2 });
    await vi.waitFor(() => expect(q('[data-testid="offer-dialog"]')!.closest('.modal-backdrop')!.hasAttribute('hidden')).toBe(false));
    const dialog = q('[data-testid="offer-dialog"]')!;
    const first = dialog.dataset.offerId;
    expect(q('[data-testid="offer-queue"]')!.textContent).toBe('1 of 2');
    const accept = vi.spyOn(backend!, 'accept');
    q('[data-testid="offer-accept"]')!.click();
    await vi.waitFor(() => expect(accept).toHaveBeenCalledWith(Number(first), undefined));
    await vi.waitFor(() => expect(dialog.dataset.offerId).not.toBe(first));
    const reject = vi.spyOn(backend!, 'reject');
    dialog.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    await vi.waitFor(() => expect(reject).toHaveBeenCalled());
    await vi.waitFor(() => expect(dialog.closest('.modal-backdrop')!.hasAttribute('hidden')).toBe(true));
  });

  it('shows the offer a notification\'s "Open" asked for first, on the transfers view', async () => {
    await boot({ offers: 3 });
    const dialog = q('[data-testid="offer-dialog"]')!;
    await vi.waitFor(() => expect(dialog.closest('.modal-backdrop')!.hasAttribute('hidden')).toBe(false));
    const first = Number(dialog.dataset.offerId);
    q('[data-testid="tab-history"]')!.click();
    backend!.focusOffer(first + 2);
    await vi.waitFor(() => expect(dialog.dataset.offerId).toBe(String(first + 2)));
    expect(q('[data-testid="offer-queue"]')!.textContent).toBe('1 of 3');
    expect(q('[data-testid="tab-transfers"]')!.getAttribute('aria-selected')).toBe('true');
    // An id that no longer waits changes nothing.
    backend!.focusOffer(99_999);
    await new Promise((r) => setTimeout(r, 150));
    expect(dialog.dataset.offerId).toBe(String(first + 2));
  });

  it("asks about a folder from Bob in one prompt, then 李雷's offer on its own", async () => {
    // Bob's holiday photos and 李雷's plan, then Bob's folder of three files.
    await boot({ offers: 2, burst: 3 });
    const dialog = q('[data-testid="offer-dialog"]')!;
    const rows = () => [...document.querySelectorAll<HTMLElement>('[data-testid="offer-group-list"] > li')];
    await vi.waitFor(() => expect(rows()).toHaveLength(4));
    expect(dialog.closest('.modal-backdrop')!.hasAttribute('hidden')).toBe(false);
    expect(q('#offer-title')!.textContent).toBe('Bob wants to send 4 files');
    expect(q('[data-testid="offer-queue"]')!.textContent).toBe('1 of 2');
    expect(rows()[1]!.querySelector('.offer-group-path')!.textContent).toBe('lake-trip/IMG_4102.jpg');
    const ids = rows().map((r) => Number(r.dataset.offerId));
    // Another file from Bob joins; one he withdraws leaves.
    const [late] = backend!.offerBurst(1);
    await vi.waitFor(() => expect(rows()).toHaveLength(5));
    await backend!.cancel(ids[2]!);
    await vi.waitFor(() => expect(rows().map((r) => Number(r.dataset.offerId))).toEqual([ids[0], ids[1], ids[3], late]));
    // Choose: all but the first; into another folder.
    q('[data-testid="offer-change-folder"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="offer-folder"]')!.textContent).toBe('/home/alice/Downloads/Skiff'));
    q(`[data-testid="offer-group-check-${ids[0]}"]`)!.click();
    expect(q('[data-testid="offer-accept"]')!.textContent).toBe('Accept 3');
    const accept = vi.spyOn(backend!, 'accept');
    const reject = vi.spyOn(backend!, 'reject');
    q('[data-testid="offer-accept"]')!.click();
    await vi.waitFor(() => expect(accept).toHaveBeenCalledTimes(3));
    expect(accept.mock.calls.map((c) => c[0]).sort()).toEqual([ids[1], ids[3], late].sort());
    expect(accept.mock.calls.every((c) => c[1] === '/home/alice/Downloads/Skiff')).toBe(true);
    expect(reject.mock.calls).toEqual([[ids[0]]]);
    // 李雷's offer shows next, on its own.
    await vi.waitFor(() => expect(q('#offer-title')!.textContent).toBe('Incoming file'));
    expect(q('[data-testid="offer-file"]')!.textContent).toBe('项目计划书_最终版.pdf');
    expect(q('[data-testid="offer-accept"]')!.textContent).toBe('Accept');
    expect(q('[data-testid="offer-queue"]')!.hidden).toBe(true);
  });

  it('shows peer-supplied text as text, and a flood of refused offers as one toast', async () => {
    await boot();
    const evil = '<img src=x onerror=alert(1)>';
    const emit = (e: unknown) => (backend as unknown as { emit(e: unknown): void }).emit(e);
    emit({ type: 'transfer_offered', id: 9001, direction: 'incoming', peer: `mallory@evil.example/${evil}`, name: `${evil}.png`, size: 10, description: evil, resume_from: 0 });
    await vi.waitFor(() => expect(q('[data-testid="offer-dialog"]')!.closest('.modal-backdrop')!.hasAttribute('hidden')).toBe(false));
    expect(q('[data-testid="offer-dialog"]')!.textContent).toContain(`${evil}.png`);
    emit({ type: 'offers_refused', peer: `mallory@evil.example`, count: 995, reason: evil });
    await vi.waitFor(() => expect(q('[data-testid="toast-error"]')!.textContent).toContain('Refused 995 files from mallory@evil.example'));
    emit({ type: 'transfer_failed', id: 9001, name: `${evil}.png`, error: evil, resumable: false, upload_fallback: false });
    await vi.waitFor(() => expect(document.body.textContent).toContain(evil));
    expect(document.querySelector('img')).toBeNull();
    expect(document.querySelectorAll('[data-testid="toast-error"]').length).toBe(1);
  });

  it('renders markup from peers as literal text in the offer dialog, the history and a failure toast', async () => {
    await boot();
    const evil = '<img src=x onerror=alert(1)>';
    const b = backend as unknown as {
      emit(e: unknown): void;
      record(dir: string, peer: string, name: string, size: number, state: string, extra?: object): { id: number };
    };
    // The offer dialog: name, description and sender as sent.
    const offered = b.record('incoming', `${evil}@evil.example/${evil}`, evil, 10, 'offered', { description: evil, local_path: null });
    b.emit({ type: 'transfer_offered', id: offered.id, direction: 'incoming', peer: `${evil}@evil.example/${evil}`, name: evil, size: 10, description: evil, resume_from: 0 });
    const dialog = q('[data-testid="offer-dialog"]')!;
    await vi.waitFor(() => expect(dialog.closest('.modal-backdrop')!.hasAttribute('hidden')).toBe(false));
    expect(q('[data-testid="offer-file"]')!.textContent).toBe(evil);
    expect(dialog.querySelector('.offer-desc')!.textContent).toBe(evil);
    expect(dialog.querySelector('.offer-from-jid')!.textContent).toBe(`${evil}@evil.example/${evil}`);
    expect(document.querySelector('img')).toBeNull();
    // A failure toast whose message carries the peer's text.
    vi.spyOn(backend!, 'accept').mockRejectedValueOnce({ code: 'weird', message: evil });
    q('[data-testid="offer-accept"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="toast-error"]')!.textContent).toContain(evil));
    expect(document.querySelector('img')).toBeNull();
    // The history: file name, peer and error of a failed transfer.
    b.record('incoming', `${evil}@evil.example/x`, `${evil}.png`, 20, 'failed', { error: evil });
    q('[data-testid="tab-history"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="history-table"]')!.textContent).toContain(`${evil}.png`));
    const table = q('[data-testid="history-table"]')!;
    expect([...table.querySelectorAll('.cell-error')].map((e) => e.textContent)).toContain(evil);
    expect([...table.querySelectorAll('.col-peer .cell-sub')].map((e) => e.textContent)).toContain(`${evil}@evil.example`);
    expect(document.querySelector('img')).toBeNull();
    expect(document.querySelector('[onerror]')).toBeNull();
  });

  it('sends files to a contact from "Send file…"', async () => {
    await boot();
    const before = document.querySelectorAll('.transfer-card').length;
    q('[data-testid="send-bob@localhost"]')!.click();
    // The two files picked are offered together, as one batch: one card for both.
    await vi.waitFor(() => expect(document.querySelectorAll('.transfer-card').length).toBe(before + 1));
    expect(q('[data-testid="toast-info"]')!.textContent).toContain('Sending 2 files to Bob');
    const card = document.querySelector<HTMLElement>('.transfer-card')!;
    expect(card.dataset.kind).toBe('batch');
    expect(q(`[data-testid="transfer-${card.dataset.id}-count"]`)!.textContent).toBe('0 / 2 files');
  });

  it('shows the error when sending to an offline contact with uploads turned off', async () => {
    await boot({ allowUpload: false });
    q('[data-testid="send-carol@localhost"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="toast-error"]')).not.toBeNull());
    expect(q('[data-testid="toast-error"]')!.textContent).toContain('carol@localhost is offline');
  });

  it('sends to an offline contact by upload from "Send file…" while uploads are allowed', async () => {
    await boot();
    const send = vi.spyOn(backend!, 'sendFiles');
    const before = document.querySelectorAll('.transfer-card').length;
    q('[data-testid="send-carol@localhost"]')!.click();
    await vi.waitFor(() => expect(document.querySelectorAll('.transfer-card').length).toBe(before + 2));
    expect(send).toHaveBeenCalledWith('carol@localhost', expect.any(Array));
    expect(q('[data-testid="toast-error"]')).toBeNull();
    const id = document.querySelector<HTMLElement>('.transfer-card')!.dataset.id;
    await vi.waitFor(() => expect(q(`[data-testid="transfer-${id}-route"]`)!.textContent).toBe('Upload'));
  });

  it('offers "Send by upload" after SI failed, and uploads instead', async () => {
    await boot();
    const upload = vi.spyOn(backend!, 'uploadInstead');
    const [id] = await backend!.sendFiles('erin@localhost', ['/home/alice/budget.xlsx']);
    const button = () => q(`[data-testid="transfer-${id}-upload"]`) as HTMLButtonElement | null;
    await vi.waitFor(() => expect(q(`[data-testid="transfer-${id}"]`)?.dataset.state).toBe('failed'), { timeout: 3000 });
    await vi.waitFor(() => expect(button()!.hidden).toBe(false));
    // A refusal shows as an error toast and leaves the button.
    upload.mockRejectedValueOnce({ code: 'invalid', message: 'The server offers no HTTP upload.' });
    button()!.click();
    await vi.waitFor(() => expect(q('[data-testid="toast-error"]')!.textContent).toContain('The server offers no HTTP upload.'));
    expect(button()!.hidden).toBe(false);
    // The history offers it too.
    q('[data-testid="tab-history"]')!.click();
    await vi.waitFor(() => expect(q(`[data-testid="history-${id}-upload"]`)).not.toBeNull());
    q(`[data-testid="history-${id}-upload"]`)!.click();
    await vi.waitFor(() => expect(upload).toHaveBeenCalledTimes(2));
    expect(upload).toHaveBeenLastCalledWith(id);
    q('[data-testid="tab-transfers"]')!.click();
    await vi.waitFor(() => expect(q(`[data-testid="transfer-${id}-route"]`)!.textContent).toBe('Upload'), { timeout: 3000 });
    expect(button()!.hidden).toBe(true);
    expect(q(`[data-testid="transfer-${id}"]`)!.dataset.state).toBe('active');
  });

  it('saves the upload and HTTP-link settings and follows them', async () => {
    await boot();
    q('[data-testid="open-settings"]')!.click();
    const upload = q('[data-testid="settings-allow-upload"]') as HTMLInputElement;
    const serve = q('[data-testid="settings-serve-http"]') as HTMLInputElement;
    expect([upload.checked, serve.checked]).toEqual([true, false]);
    upload.click();
    serve.click();
    q('[data-testid="settings-save"]')!.click();
    await vi.waitFor(async () => expect(await backend!.getSettings()).toMatchObject({ allowUpload: false, serveHttp: true }));
    // Offline contacts no longer say their files go by upload.
    await vi.waitFor(() => expect(q('[data-testid="send-carol@localhost"]')!.title).toBe('Send a file to Carol'));
    q('[data-testid="open-settings"]')!.click();
    expect([upload.checked, serve.checked]).toEqual([false, true]);
  });

  it('switches language live from the settings and saves', async () => {
    await boot();
    q('[data-testid="open-settings"]')!.click();
    const select = q('[data-testid="language-select"]') as HTMLSelectElement;
    select.value = 'zh-CN';
    select.dispatchEvent(new Event('change'));
    expect(document.documentElement.lang).toBe('zh-CN');
    expect(q('[data-testid="tab-history"]')!.textContent).toBe('历史记录');
    const save = vi.spyOn(backend!, 'setSettings');
    q('[data-testid="settings-save"]')!.click();
    await vi.waitFor(() => expect(save).toHaveBeenCalledWith(expect.objectContaining({ language: 'zh-CN' })));
    await vi.waitFor(() => expect(q('[data-testid="connection-state"]')!.textContent).toBe('在线'));
  });

  it('lists the history with filters and row actions', async () => {
    await boot({}, 'view=history');
    await vi.waitFor(() => expect(document.querySelectorAll('[data-testid^="history-"][data-state]').length).toBeGreaterThan(5));
    const state = q('[data-testid="history-state"]') as HTMLSelectElement;
    state.value = 'completed';
    state.dispatchEvent(new Event('change'));
    await vi.waitFor(() => {
      const rows = [...document.querySelectorAll<HTMLElement>('tr[data-state]')];
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.dataset.state === 'completed')).toBe(true);
      // Completed still filters as completed, each row saying how it was checked.
      expect(new Set(rows.map((r) => r.dataset.verified))).toEqual(new Set(['sha256', 'md5', 'none']));
    });
    const row = document.querySelector<HTMLElement>('tr[data-state]')!;
    const remove = vi.spyOn(backend!, 'removeFromHistory');
    row.querySelector<HTMLElement>('[data-action="remove"]')!.click();
    await vi.waitFor(() => expect(remove).toHaveBeenCalledWith(Number(row.dataset.id)));
    await vi.waitFor(() => expect(row.isConnected).toBe(false));
  });

  it('fills the sign-in form with the remembered account (not the password)', async () => {
    const b = new MockBackend(opts({ signedIn: false }));
    b.remembered = { jid: 'alice@example.org', server: '127.0.0.1:5222', tls: 'direct', caFile: '/etc/ca.pem' };
    await bootSignedOut(b);
    const val = (id: string) => (q(`[data-testid="${id}"]`) as HTMLInputElement).value;
    expect(val('signin-jid')).toBe('alice@example.org');
    expect(val('signin-server')).toBe('127.0.0.1:5222');
    expect(val('signin-tls')).toBe('direct');
    expect(val('signin-ca')).toBe('/etc/ca.pem');
    expect(val('signin-password')).toBe('');
    expect((q('[data-testid="signin-advanced"]') as HTMLDetailsElement).open).toBe(true);
    expect(document.activeElement).toBe(q('[data-testid="signin-password"]'));
  });

  it('offers "Remember password" only with "Remember me", and passes it to sign-in', async () => {
    const b = new MockBackend(opts({ signedIn: false }));
    const signIn = vi.spyOn(b, 'signIn');
    await bootSignedOut(b);
    const remember = q('[data-testid="signin-remember"]') as HTMLInputElement;
    const keep = q('[data-testid="signin-remember-password"]') as HTMLInputElement;
    // Labelled, with its hint, in the tab order; off until asked.
    expect(keep.labels![0]!.textContent).toBe('Remember password');
    const hint = document.getElementById(keep.getAttribute('aria-describedby')!)!;
    expect(hint.textContent).toContain('system keyring, never in Skiff’s files');
    expect(keep.tabIndex).toBe(0);
    expect(remember.checked).toBe(true);
    expect(keep.disabled).toBe(false);
    expect(keep.checked).toBe(false);
    keep.click();
    expect(keep.checked).toBe(true);
    // Without "Remember me": disabled and unticked; ticked again, the choice comes back.
    remember.click();
    expect(keep.disabled).toBe(true);
    expect(keep.checked).toBe(false);
    remember.click();
    expect(keep.disabled).toBe(false);
    expect(keep.checked).toBe(true);
    (q('[data-testid="signin-jid"]') as HTMLInputElement).value = 'alice@localhost';
    (q('[data-testid="signin-password"]') as HTMLInputElement).value = 'alice-demo';
    q('[data-testid="signin-submit"]')!.closest('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(true), { timeout: 3000 });
    expect(signIn.mock.calls[0]![0]).toMatchObject({ jid: 'alice@localhost', remember: true, rememberPassword: true });
    expect(b.keyring.get('alice@localhost')).toBe('alice-demo');
    expect(q('[data-testid="password-note"]')).toBeNull();
    // Signed out and in again without "Remember me": the kept password is forgotten.
    q('[data-testid="sign-out"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(false));
    remember.click();
    (q('[data-testid="signin-password"]') as HTMLInputElement).value = 'alice-demo';
    q('[data-testid="signin-submit"]')!.closest('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await vi.waitFor(() => expect(signIn).toHaveBeenCalledTimes(2), { timeout: 3000 });
    expect(signIn.mock.calls[1]![0]).toMatchObject({ remember: false, rememberPassword: false });
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(true), { timeout: 3000 });
    expect(b.keyring.size).toBe(0);
  });

  it('ticks "Remember password" when the keyring holds it', async () => {
    const b = new MockBackend(opts({ signedIn: false, remembered: 'saved' }));
    await bootSignedOut(b);
    const keep = q('[data-testid="signin-remember-password"]') as HTMLInputElement;
    expect((q('[data-testid="signin-jid"]') as HTMLInputElement).value).toBe('alice@localhost');
    expect(keep.checked).toBe(true);
    expect(keep.disabled).toBe(false);
    expect(q('[data-testid="signin-error"]')!.hidden).toBe(true);
    // Remembered without the password: unticked.
    b.dispose();
    const b2 = new MockBackend(opts({ signedIn: false, remembered: 'account' }));
    await bootSignedOut(b2);
    expect((q('[data-testid="signin-remember-password"]') as HTMLInputElement).checked).toBe(false);
  });

  it('shows why signing in by itself at start failed, with its code', async () => {
    const b = new MockBackend(opts({ signedIn: false, startError: 'connect' }));
    await bootSignedOut(b);
    const error = q('[data-testid="signin-error"]')!;
    expect(error.hidden).toBe(false);
    expect(error.dataset.code).toBe('connect');
    expect(error.querySelector('.error-title')!.textContent).toBe('Could not reach the server.');
    expect(error.querySelector('.error-detail')!.textContent).toContain('connection refused');
    // The password is still kept: ticked; the password field is where to type.
    expect((q('[data-testid="signin-remember-password"]') as HTMLInputElement).checked).toBe(true);
    expect(document.activeElement).toBe(q('[data-testid="signin-password"]'));
    // A refused password was forgotten: said by its code, in Chinese too, and unticked.
    b.dispose();
    const b2 = new MockBackend(opts({ signedIn: false, startError: 'auth-failed', language: 'zh-CN' }));
    await bootSignedOut(b2);
    expect(q('[data-testid="signin-error"]')!.dataset.code).toBe('auth-failed');
    expect(q('[data-testid="signin-error"] .error-title')!.textContent).toBe('地址或密码错误。');
    expect((q('[data-testid="signin-remember-password"]') as HTMLInputElement).checked).toBe(false);
    expect(q('label[for="signin-remember-password"]')!.textContent).toBe('记住密码');
  });

  it('says in a notice that blocks nothing when the keyring could not keep the password', async () => {
    const b = new MockBackend(opts({ signedIn: false, keyring: false }));
    await bootSignedOut(b);
    (q('[data-testid="signin-jid"]') as HTMLInputElement).value = 'alice@localhost';
    (q('[data-testid="signin-password"]') as HTMLInputElement).value = 'alice-demo';
    (q('[data-testid="signin-remember-password"]') as HTMLInputElement).click();
    q('[data-testid="signin-submit"]')!.closest('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    // Signed in all the same: the main window, with the notice over it.
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(true), { timeout: 3000 });
    const note = q('[data-testid="password-note"]')!;
    expect(note).not.toBeNull();
    expect(note.closest('[role="status"]')).not.toBeNull();
    expect(note.querySelector('.toast-title')!.textContent).toBe('Signed in, but your password was not remembered.');
    expect(note.querySelector('.toast-text')!.textContent).toContain('Your password was not saved: no keyring service is available');
    expect(note.querySelector('.toast-text')!.textContent).toMatch(/Nothing was written to disk\.$/);
    expect(b.keyring.size).toBe(0);
    await vi.waitFor(() => expect(q('[data-testid="contact-bob@localhost"]')).not.toBeNull());
    // Not a dialog: nothing is inert; it stays until dismissed with its button.
    expect(document.querySelector('[inert]')).toBeNull();
    const close = note.querySelector<HTMLButtonElement>('.toast-close')!;
    expect(close.getAttribute('aria-label')).toBe('Dismiss');
    close.click();
    expect(q('[data-testid="password-note"]')).toBeNull();
  });

  it('shows the account address even when `online` arrives before sign-in returns', async () => {
    class EarlyOnline extends MockBackend {
      override async signIn(args: Parameters<MockBackend['signIn']>[0]) {
        const r = await super.signIn(args); // emits `online`
        await new Promise((res) => setTimeout(res, 300)); // the header renders meanwhile
        return r;
      }
    }
    await bootSignedOut(new EarlyOnline(opts({ signedIn: false })));
    (q('[data-testid="signin-jid"]') as HTMLInputElement).value = 'alice@localhost';
    (q('[data-testid="signin-password"]') as HTMLInputElement).value = 'alice-demo';
    q('[data-testid="signin-submit"]')!.closest('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(true), { timeout: 3000 });
    await vi.waitFor(() => expect(q('[data-testid="account-jid"]')!.textContent).toBe('alice@localhost'), { timeout: 1000 });
  });

  it('signs out and in again; a wrong password shows the error', async () => {
    await boot();
    q('[data-testid="sign-out"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(false));
    (q('[data-testid="signin-jid"]') as HTMLInputElement).value = 'alice@localhost';
    (q('[data-testid="signin-password"]') as HTMLInputElement).value = 'wrong';
    q('[data-testid="signin-submit"]')!.closest('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await vi.waitFor(() => expect(q('[data-testid="signin-error"]')!.hidden).toBe(false), { timeout: 3000 });
    expect(q('[data-testid="signin-error"]')!.dataset.code).toBe('auth-failed');
    expect(q('[data-testid="signin-error"]')!.textContent).toContain('Wrong address or password.');
    (q('[data-testid="signin-password"]') as HTMLInputElement).value = 'alice-demo';
    q('[data-testid="signin-submit"]')!.closest('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(true), { timeout: 3000 });
    await vi.waitFor(() => expect(q('[data-testid="contact-bob@localhost"]')).not.toBeNull());
  });

  it('starts on the sign-in screen without an account', async () => {
    document.body.replaceChildren();
    delete document.body.dataset.ready;
    const root = document.createElement('div');
    document.body.append(root);
    backend = new MockBackend(opts({ signedIn: false }));
    await new App(root, backend, new URLSearchParams()).start();
    await vi.waitFor(() => expect(document.body.dataset.ready).toBe('1'));
    expect(q('[data-testid="signin"]')!.hidden).toBe(false);
    expect(document.activeElement).toBe(q('[data-testid="signin-jid"]'));
  });
});

describe('sign-in with a server certificate that is not trusted', () => {
  const val = (id: string) => (q(`[data-testid="${id}"]`) as HTMLInputElement).value;
  const dialog = () => q('[data-testid="cert-dialog"]')!;
  const dialogOpen = () => !dialog().closest('.modal-backdrop')!.hasAttribute('hidden');
  const SELF_FP = 'SHA256:FE:6D:FB:85:A8:78:90:E7:B6:72:EE:72:3E:F3:D8:5C:14:B1:75:CA:52:42:A2:05:5B:EA:5B:30:57:61:A6:3F';

  function fill(jid: string, password: string, server = '') {
    (q('[data-testid="signin-jid"]') as HTMLInputElement).value = jid;
    (q('[data-testid="signin-password"]') as HTMLInputElement).value = password;
    (q('[data-testid="signin-server"]') as HTMLInputElement).value = server;
  }
  const submit = () => q('[data-testid="signin-submit"]')!.closest('form')!.dispatchEvent(new Event('submit', { cancelable: true }));

  it('shows the certificate and why; Trust signs in again with its fingerprint', async () => {
    const b = new MockBackend(opts({ signedIn: false }));
    await bootSignedOut(b);
    const signIn = vi.spyOn(b, 'signIn');
    fill('alice@selfsigned.example', 'alice-demo');
    submit();
    await vi.waitFor(() => expect(dialogOpen()).toBe(true), { timeout: 3000 });
    const box = dialog();
    expect(box.getAttribute('role')).toBe('dialog');
    expect(box.dataset.changed).toBe('false');
    expect(document.getElementById(box.getAttribute('aria-labelledby')!)!.textContent).toBe('Untrusted server certificate');
    expect(document.getElementById(box.getAttribute('aria-describedby')!)!.textContent).toContain('It is self-signed: no certificate authority vouches for it.');
    const fp = q('[data-testid="cert-fingerprint"]')!;
    expect(fp.textContent).toBe(SELF_FP.slice('SHA256:'.length));
    expect(fp.dataset.fingerprint).toBe(SELF_FP);
    expect(box.textContent).toContain('Itself (self-signed)');
    expect(box.textContent).toContain('upload.selfsigned.example');
    expect(q('[data-testid="cert-trust"]')!.textContent).toBe('Trust this certificate for this account');
    // Cancel is the default; the form behind says what happened and is inert.
    expect(document.activeElement).toBe(q('[data-testid="cert-cancel"]'));
    expect(q('[data-testid="signin-error"]')!.dataset.code).toBe('certificate-untrusted');
    expect(q('[data-testid="signin"]')!.inert).toBe(true);

    q('[data-testid="cert-trust"]')!.click();
    await vi.waitFor(() => expect(signIn).toHaveBeenCalledTimes(2));
    expect(signIn.mock.calls[1]![0]).toEqual({ ...signIn.mock.calls[0]![0], trustFingerprint: SELF_FP });
    expect(dialogOpen()).toBe(false);
    // Signing in again: the usual busy state.
    expect(q('[data-testid="signin-submit"]')!.textContent).toBe('Signing in…');
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(true), { timeout: 3000 });
    await vi.waitFor(() => expect(q('[data-testid="account-jid"]')!.textContent).toBe('alice@selfsigned.example'));
    expect(b.certificatePins.get('alice@selfsigned.example')).toBe(SELF_FP);

    // Later sign-ins need nothing.
    q('[data-testid="sign-out"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(false));
    fill('alice@selfsigned.example', 'alice-demo');
    submit();
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(true), { timeout: 3000 });
    expect(signIn.mock.calls[2]![0].trustFingerprint).toBeUndefined();
    expect(dialogOpen()).toBe(false);
  });

  it('Cancel (or Esc) closes it and leaves the form filled', async () => {
    const b = new MockBackend(opts({ signedIn: false }));
    await bootSignedOut(b);
    const signIn = vi.spyOn(b, 'signIn');
    fill('alice@selfsigned.example', 'alice-demo');
    submit();
    await vi.waitFor(() => expect(dialogOpen()).toBe(true), { timeout: 3000 });
    q('[data-testid="cert-cancel"]')!.click();
    expect(dialogOpen()).toBe(false);
    // Focus back on the form's button, ready to try again.
    await vi.waitFor(() => expect(document.activeElement).toBe(q('[data-testid="signin-submit"]')));
    expect(q('[data-testid="signin"]')!.hidden).toBe(false);
    expect(q('[data-testid="signin"]')!.inert).toBe(false);
    expect([val('signin-jid'), val('signin-password')]).toEqual(['alice@selfsigned.example', 'alice-demo']);
    expect(q('[data-testid="signin-error"]')!.hidden).toBe(false);
    expect(q('[data-testid="signin-error"]')!.textContent).toContain('The server’s certificate is not trusted.');
    expect((q('[data-testid="signin-submit"]') as HTMLButtonElement).disabled).toBe(false);
    expect(signIn).toHaveBeenCalledTimes(1);
    expect(b.certificatePins.size).toBe(0);

    // Again, and Esc.
    submit();
    await vi.waitFor(() => expect(dialogOpen()).toBe(true), { timeout: 3000 });
    dialog().dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    expect(dialogOpen()).toBe(false);
    await vi.waitFor(() => expect(document.activeElement).toBe(q('[data-testid="signin-submit"]')));
    expect(signIn).toHaveBeenCalledTimes(2);
    expect(val('signin-password')).toBe('alice-demo');
  });

  it('warns when the certificate is not the one trusted before, and trusts the new one', async () => {
    const b = new MockBackend(opts({ signedIn: false }));
    b.certificatePins.set('alice@selfsigned.example', SELF_FP);
    await bootSignedOut(b);
    const signIn = vi.spyOn(b, 'signIn');
    fill('alice@selfsigned.example', 'alice-demo', 'mitm.selfsigned.example:5222');
    submit();
    await vi.waitFor(() => expect(dialogOpen()).toBe(true), { timeout: 3000 });
    const box = dialog();
    expect(box.dataset.changed).toBe('true');
    expect(box.classList.contains('is-changed')).toBe(true);
    expect(box.querySelector<HTMLElement>('.cert-band')!.hidden).toBe(false);
    expect(document.getElementById(box.getAttribute('aria-labelledby')!)!.textContent).toBe('The server’s certificate has changed');
    const warning = q('[data-testid="cert-warning"]')!;
    expect(warning.textContent).toContain('This is not the certificate you trusted before for selfsigned.example.');
    expect(warning.textContent).toContain('someone may be intercepting the connection');
    expect(warning.textContent).toContain('Only continue if the server’s admin confirms the new fingerprint.');
    expect(document.getElementById(box.getAttribute('aria-describedby')!)!.contains(warning)).toBe(true);
    expect(q('[data-testid="cert-reason"]')!.textContent).toBe('It is signed by an authority this computer does not trust.');
    expect(box.textContent).toContain('CN=Inspection Proxy CA, O=Example Networks');
    expect(q('[data-testid="cert-trust"]')!.textContent).toBe('Trust the new certificate');
    expect(q('[data-testid="signin-error"]')!.dataset.code).toBe('certificate-changed');
    expect(document.activeElement).toBe(q('[data-testid="cert-cancel"]'));
    const fp = q('[data-testid="cert-fingerprint"]')!.dataset.fingerprint!;
    expect(fp).not.toBe(SELF_FP);

    q('[data-testid="cert-trust"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(true), { timeout: 3000 });
    expect(signIn.mock.calls[1]![0]).toMatchObject({ server: 'mitm.selfsigned.example:5222', trustFingerprint: fp });
    expect(b.certificatePins.get('alice@selfsigned.example')).toBe(fp);
  });

  it('shows a further error as usual after Trust', async () => {
    const b = new MockBackend(opts({ signedIn: false }));
    await bootSignedOut(b);
    fill('alice@selfsigned.example', 'wrong');
    submit();
    await vi.waitFor(() => expect(dialogOpen()).toBe(true), { timeout: 3000 });
    q('[data-testid="cert-trust"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="signin-error"]')!.dataset.code).toBe('auth-failed'), { timeout: 3000 });
    expect(q('[data-testid="signin-error"]')!.textContent).toContain('Wrong address or password.');
    expect(dialogOpen()).toBe(false);
    expect(document.activeElement).toBe(q('[data-testid="signin-password"]'));
    // Nothing pinned: the sign-in failed.
    expect(b.certificatePins.size).toBe(0);
  });

  it('flags an expired certificate and reads in Simplified Chinese', async () => {
    const b = new MockBackend(opts({ signedIn: false, language: 'zh-CN' }));
    await bootSignedOut(b);
    fill('alice@expired.example', 'alice-demo');
    submit();
    await vi.waitFor(() => expect(dialogOpen()).toBe(true), { timeout: 3000 });
    expect(q('[data-testid="cert-expired"]')!.textContent).toBe('已过期');
    expect(q('[data-testid="cert-reason"]')!.textContent).toBe('它已过期。');
    expect(q('[data-testid="cert-trust"]')!.textContent).toBe('为此账号信任此证书');
    expect(q('[data-testid="cert-cancel"]')!.textContent).toBe('取消');
    expect(q('[data-testid="signin-error"]')!.textContent).toContain('服务器的证书不受信任。');
  });
});

describe('batches with the mock backend', () => {
  it('asks about a folder from Bob in its own prompt, lists its files, accepts it into another folder, and follows it on its card', async () => {
    const { backend: b } = await boot({ batch: 312, tickMs: 50 });
    const dialog = q('[data-testid="offer-dialog"]')!;
    await vi.waitFor(() => expect(dialog.classList.contains('is-batch')).toBe(true));
    const id = Number(dialog.dataset.offerBatch);
    expect(dialog.dataset.offerId).toBe(String(id));
    expect(q('#offer-wants')!.textContent).toMatch(/^Bob wants to send the folder photos — 312 files, 1\.\d GiB$/);
    // The files, one click away.
    q('[data-testid="offer-batch-toggle"]')!.click();
    await vi.waitFor(() => expect(document.querySelectorAll('[data-testid="offer-batch-list"] > li')).toHaveLength(200));
    // Into another folder.
    const accept = vi.spyOn(b, 'accept');
    q('[data-testid="offer-change-folder"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="offer-folder"]')!.textContent).toBe('/home/alice/Downloads/Skiff'));
    q('[data-testid="offer-accept"]')!.click();
    await vi.waitFor(() => expect(accept).toHaveBeenCalledWith(id, '/home/alice/Downloads/Skiff'));
    await vi.waitFor(() => expect(dialog.closest('.modal-backdrop')!.hasAttribute('hidden')).toBe(true));
    // Its card: a folder, files done as they finish, its files behind a button.
    const card = q(`[data-testid="transfer-${id}"]`)!;
    expect(card.dataset.kind).toBe('batch');
    await vi.waitFor(() => expect(card.dataset.state).toBe('active'));
    await vi.waitFor(() => expect(q(`[data-testid="transfer-${id}-count"]`)!.textContent).toMatch(/^([1-9]\d*) \/ 312 files$/), { timeout: 3000 });
    q(`[data-testid="transfer-${id}-expand"]`)!.click();
    await vi.waitFor(() => expect(card.querySelectorAll('[data-testid^="transfer-' + id + '-file-"][data-state="completed"]').length).toBeGreaterThan(0));
    // The history: one row, opening to its files.
    q('[data-testid="tab-history"]')!.click();
    await vi.waitFor(() => expect(q(`[data-testid="history-${id}"]`)).not.toBeNull());
    expect(q(`[data-testid="history-${id}-count"]`)!.textContent).toBe('312 files');
    q(`[data-testid="history-${id}-expand"]`)!.click();
    await vi.waitFor(() => expect(document.querySelectorAll(`[data-testid="history-${id}-files"] > li`)).toHaveLength(200));
  });

  it('says which folder is on its way when one folder is sent', async () => {
    const { app } = await boot();
    await app.sendTo('bob@localhost', ['/home/alice/Pictures/Holiday/']);
    await vi.waitFor(() => expect(q('[data-testid="toast-info"]')!.textContent).toContain('Sending the folder Holiday to Bob'));
    await vi.waitFor(() => expect(document.querySelector('.transfer-card[data-kind="batch"] .transfer-name')?.textContent).toBe('Holiday'));
  });
});

describe('dropping files on a contact', () => {
  /** A mock that hands the test the drag-and-drop handler (the webview's events). */
  class DragMock extends MockBackend {
    drag: ((e: DragDropEvent) => void) | null = null;
    override async onDragDrop(handler: (e: DragDropEvent) => void) {
      this.drag = handler;
      return () => {};
    }
  }

  /** Gives the contact list and Carol's row boxes (happy-dom lays nothing out). */
  function layOut() {
    const box = (left: number, top: number, right: number, bottom: number) => ({ left, top, right, bottom, x: left, y: top, width: right - left, height: bottom - top }) as DOMRect;
    const list = q('[data-testid="contact-list"]')!;
    list.getClientRects = () => [box(0, 0, 300, 600)] as unknown as DOMRectList;
    list.getBoundingClientRect = () => box(0, 0, 300, 600);
    for (const row of list.querySelectorAll<HTMLElement>('[data-jid]')) {
      row.getBoundingClientRect = () => (row.dataset.jid === 'carol@localhost' ? box(0, 100, 300, 160) : box(0, 0, 0, 0));
    }
  }

  async function bootDrag(allowUpload: boolean) {
    document.body.replaceChildren();
    delete document.body.dataset.ready;
    const root = document.createElement('div');
    document.body.append(root);
    const b = new DragMock(opts({ allowUpload }));
    backend = b;
    await new App(root, b, new URLSearchParams()).start();
    await vi.waitFor(() => expect(q('[data-testid="contact-carol@localhost"]')).not.toBeNull());
    layOut();
    return b;
  }

  const over = { x: 10 * (window.devicePixelRatio || 1), y: 120 * (window.devicePixelRatio || 1) };
  const paths = ['/home/alice/photo.jpg'];

  it('uploads files dropped on an offline contact while uploads are allowed, and says so', async () => {
    const b = await bootDrag(true);
    const send = vi.spyOn(b, 'sendFiles');
    b.drag!({ type: 'enter', paths, position: over });
    const row = q('[data-testid="contact-carol@localhost"]')!;
    expect(row.classList.contains('drop-target')).toBe(true);
    expect(row.querySelector('.drop-note')!.textContent).toBe('Drop to upload for Carol');
    const hint = q('[data-testid="drag-hint"]')!;
    expect(hint.hidden).toBe(false);
    expect(hint.textContent).toBe('Offline — the file will be uploaded to your server and sent as a link');
    // Moving off the row: the usual hint.
    b.drag!({ type: 'over', position: { x: 10, y: 500 } });
    expect(hint.textContent).toBe('Drop on a contact to send');
    b.drag!({ type: 'over', position: over });
    expect(hint.textContent).toContain('uploaded to your server');
    b.drag!({ type: 'drop', paths, position: over });
    expect(hint.hidden).toBe(true);
    await vi.waitFor(() => expect(send).toHaveBeenCalledWith('carol@localhost', paths));
    await vi.waitFor(() => expect(q('[data-testid="toast-info"]')!.textContent).toContain('Sending a file to Carol'));
    expect(q('[data-testid="toast-error"]')).toBeNull();
    const id = (await send.mock.results[0]!.value)[0];
    await vi.waitFor(() => expect(q(`[data-testid="transfer-${id}"]`)?.textContent).toContain('photo.jpg'));
    await vi.waitFor(() => expect(q(`[data-testid="transfer-${id}-route"]`)!.textContent).toBe('Upload'));
  });

  it('keeps refusing offline contacts when uploads are off', async () => {
    const b = await bootDrag(false);
    b.drag!({ type: 'enter', paths, position: over });
    expect(q('[data-testid="contact-carol@localhost"] .drop-note')!.textContent).toBe('Drop to send to Carol');
    expect(q('[data-testid="drag-hint"]')!.textContent).toBe('Drop on a contact to send');
    b.drag!({ type: 'drop', paths, position: over });
    await vi.waitFor(() => expect(q('[data-testid="toast-error"]')!.textContent).toContain('carol@localhost is offline'));
  });
});

describe('files handed over by a launch ("Open with Skiff", a second launch)', () => {
  const files = ['/home/me/a.pdf', '/home/me/Photos'];
  const dialog = () => q('[data-testid="send-to-dialog"]')!;
  const dialogOpen = () => !!document.querySelector('[data-testid="send-to-dialog"]') && !dialog().closest('.modal-backdrop')!.hasAttribute('hidden');
  const names = () => [...document.querySelectorAll('[data-testid="send-to-files"] li')].map((li) => li.textContent);
  const key = (k: string) => q('[data-testid="send-to-search"]')!.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }));
  const signIn = () => {
    (q('[data-testid="signin-jid"]') as HTMLInputElement).value = 'alice@localhost';
    (q('[data-testid="signin-password"]') as HTMLInputElement).value = 'alice-demo';
    q('[data-testid="signin-submit"]')!.closest('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
  };

  it('reads the files from ?open= once', async () => {
    expect(mockOptionsFromQuery('?mock&open=/home/me/a.pdf,/home/me/b.jpg').open).toEqual(['/home/me/a.pdf', '/home/me/b.jpg']);
    const b = new MockBackend(opts({ open: files }));
    backend = b;
    expect(await b.takePendingFiles()).toEqual(files);
    expect(await b.takePendingFiles()).toEqual([]);
  });

  it('shows "Send N files" at start, once the main window shows', async () => {
    const { backend: b } = await boot({ open: files });
    await vi.waitFor(() => expect(dialogOpen()).toBe(true));
    expect(b.pendingFiles).toEqual([]);
    expect(dialog().getAttribute('role')).toBe('dialog');
    expect(document.getElementById(dialog().getAttribute('aria-labelledby')!)!.textContent).toBe('Send 2 files');
    expect(names()).toEqual(['a.pdf', 'Photos']);
    expect(q('[data-testid="send-to-bob@localhost"]')).not.toBeNull();
    expect(document.activeElement).toBe(q('[data-testid="send-to-search"]'));
    expect(q('.shell')!.inert).toBe(true);
  });

  it('keeps files handed over before sign-in until signed in', async () => {
    const b = new MockBackend(opts({ signedIn: false, open: ['/home/me/a.pdf'] }));
    await bootSignedOut(b);
    // A second launch hands another file over while the sign-in form shows.
    b.openFiles(['/home/me/b.jpg']);
    await new Promise((r) => setTimeout(r, 50));
    expect(dialogOpen()).toBe(false);
    expect(b.pendingFiles).toEqual(['/home/me/a.pdf', '/home/me/b.jpg']);
    signIn();
    await vi.waitFor(() => expect(dialogOpen()).toBe(true), { timeout: 3000 });
    expect(names()).toEqual(['a.pdf', 'b.jpg']);
    expect(b.pendingFiles).toEqual([]);
    await vi.waitFor(() => expect(q('[data-testid="send-to-bob@localhost"]')).not.toBeNull());
  });

  it('shows the dialog when a launch hands files over while running, and adds more to it', async () => {
    const { backend: b } = await boot();
    expect(dialogOpen()).toBe(false);
    const take = vi.spyOn(b, 'takePendingFiles');
    b.openFiles(['/home/me/a.pdf']);
    await vi.waitFor(() => expect(dialogOpen()).toBe(true));
    expect(names()).toEqual(['a.pdf']);
    expect(dialog().querySelector('.modal-title')!.textContent).toBe('Send a file');
    key('ArrowDown');
    const chosen = document.querySelector<HTMLElement>('[role=option][aria-selected="true"]')!.dataset.jid;
    b.openFiles(['/home/me/b.jpg', '/home/me/c.txt']);
    await vi.waitFor(() => expect(names()).toEqual(['a.pdf', 'b.jpg', 'c.txt']));
    expect(dialog().querySelector('.modal-title')!.textContent).toBe('Send 3 files');
    expect(take).toHaveBeenCalledTimes(2);
    expect(b.pendingFiles).toEqual([]);
    // The selection and the focus stay.
    expect(document.querySelector<HTMLElement>('[role=option][aria-selected="true"]')!.dataset.jid).toBe(chosen);
    expect(document.activeElement).toBe(q('[data-testid="send-to-search"]'));
  });

  it('sends to the contact picked, as a drop on it would, and closes', async () => {
    const { backend: b } = await boot({ open: files });
    await vi.waitFor(() => expect(dialogOpen()).toBe(true));
    const send = vi.spyOn(b, 'sendFiles');
    q('[data-testid="send-to-bob@localhost"]')!.click();
    expect(dialogOpen()).toBe(false);
    await vi.waitFor(() => expect(send).toHaveBeenCalledExactlyOnceWith('bob@localhost', files));
    await vi.waitFor(() => expect(q('[data-testid="toast-info"]')!.textContent).toContain('Sending 2 files to Bob'));
    expect(q('.shell')!.inert).toBe(false);
  });

  it('chooses with the arrow keys and Enter, offline contacts by upload while uploads are allowed', async () => {
    const { backend: b } = await boot({ open: files });
    await vi.waitFor(() => expect(dialogOpen()).toBe(true));
    const send = vi.spyOn(b, 'sendFiles');
    const options = [...document.querySelectorAll<HTMLElement>('[data-testid="send-to-list"] [role=option]')];
    // Online first; every contact selectable (uploads are allowed).
    expect(options.map((o) => o.dataset.presence).indexOf('offline')).toBe(options.length - 2);
    expect(options.every((o) => !o.hasAttribute('aria-disabled'))).toBe(true);
    for (let i = 0; i < options.length; i++) key('ArrowDown');
    const last = options[options.length - 1]!.dataset.jid!;
    expect(document.querySelector<HTMLElement>('[role=option][aria-selected="true"]')!.dataset.jid).toBe(last);
    key('ArrowUp');
    const carol = q('[data-testid="send-to-carol@localhost"]')!;
    expect(carol.getAttribute('aria-selected')).toBe('true');
    expect(carol.querySelector('.presence-text')!.textContent).toBe('Offline — will be uploaded to your server and sent as a link');
    key('Enter');
    await vi.waitFor(() => expect(send).toHaveBeenCalledExactlyOnceWith('carol@localhost', files));
    expect(dialogOpen()).toBe(false);
    const id = (await send.mock.results[0]!.value)[0];
    await vi.waitFor(() => expect(q(`[data-testid="transfer-${id}-route"]`)!.textContent).toBe('Upload'));
  });

  it('keeps offline contacts out of reach while uploads are off', async () => {
    const { backend: b } = await boot({ open: files, allowUpload: false });
    await vi.waitFor(() => expect(dialogOpen()).toBe(true));
    const send = vi.spyOn(b, 'sendFiles');
    const carol = q('[data-testid="send-to-carol@localhost"]')!;
    expect(carol.getAttribute('aria-disabled')).toBe('true');
    carol.click();
    for (let i = 0; i < 10; i++) key('ArrowDown');
    expect(carol.getAttribute('aria-selected')).toBe('false');
    expect(send).not.toHaveBeenCalled();
    expect(dialogOpen()).toBe(true);
  });

  it('closes without sending on Escape and on Cancel', async () => {
    const { backend: b } = await boot({ open: files });
    await vi.waitFor(() => expect(dialogOpen()).toBe(true));
    const send = vi.spyOn(b, 'sendFiles');
    key('Escape');
    expect(dialogOpen()).toBe(false);
    b.openFiles(['/home/me/c.txt']);
    await vi.waitFor(() => expect(dialogOpen()).toBe(true));
    // Only the new file: the cancelled ones are gone.
    expect(names()).toEqual(['c.txt']);
    q('[data-testid="send-to-cancel"]')!.click();
    expect(dialogOpen()).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(send).not.toHaveBeenCalled();
    expect(q('.shell')!.inert).toBe(false);
  });

  it('offers the files again after signing out and in with the dialog open', async () => {
    await boot({ open: files });
    await vi.waitFor(() => expect(dialogOpen()).toBe(true));
    // Signing out from the dialog is not possible with the mouse (the page is inert): the connection fails instead.
    (backend as unknown as { emit(e: unknown): void }).emit({ type: 'fatal', code: 'auth-failed', message: 'The server refused the password.' });
    await vi.waitFor(() => expect(q('[data-testid="signin"]')!.hidden).toBe(false));
    expect(dialogOpen()).toBe(false);
    signIn();
    await vi.waitFor(() => expect(dialogOpen()).toBe(true), { timeout: 3000 });
    expect(names()).toEqual(['a.pdf', 'Photos']);
  });
});

describe('auto-accept policy', () => {
  it('skips the dialog for small files from contacts only', () => {
    const settings = { ...DEFAULT_SETTINGS, autoAcceptMaxBytes: 1000 };
    const policy = autoAcceptPolicy(() => settings);
    const s = initialState();
    s.contacts.set('bob@x', { jid: 'bob@x', name: null, subscription: 'both', pending_out: false, groups: [], resources: [] });
    const offer = (peer: string, size: number) => ({ peer, size }) as never;
    expect(policy(offer('bob@x/pc', 500), s)).toBe(false);
    expect(policy(offer('bob@x/pc', 5000), s)).toBe(true);
    expect(policy(offer('eve@y/pc', 500), s)).toBe(true);
    settings.autoAcceptMaxBytes = 0;
    expect(policy(offer('bob@x/pc', 1), s)).toBe(true);
  });
});

describe('applyTheme', () => {
  it('always resolves to light or dark, so one dark palette serves both', () => {
    const root = document.createElement('div');
    applyTheme('dark', root);
    expect(root.dataset.theme).toBe('dark');
    applyTheme('light', root);
    expect(root.dataset.theme).toBe('light');
    applyTheme('system', root);
    expect(['light', 'dark']).toContain(root.dataset.theme);
  });
});
