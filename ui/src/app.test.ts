// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App, applyTheme, autoAcceptPolicy, DEFAULT_SETTINGS } from './app';
import { setLanguage } from './i18n';
import { MockBackend, mockOptionsFromQuery, type MockOptions } from './mock-backend';
import { initialState } from './store';

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

  it('sends files to a contact from "Send file…"', async () => {
    await boot();
    const before = document.querySelectorAll('.transfer-card').length;
    q('[data-testid="send-bob@localhost"]')!.click();
    await vi.waitFor(() => expect(document.querySelectorAll('.transfer-card').length).toBe(before + 2));
    expect(q('[data-testid="toast-info"]')!.textContent).toContain('Sending 2 files to Bob');
  });

  it('shows the error when sending to an offline contact', async () => {
    await boot();
    q('[data-testid="send-carol@localhost"]')!.click();
    await vi.waitFor(() => expect(q('[data-testid="toast-error"]')).not.toBeNull());
    expect(q('[data-testid="toast-error"]')!.textContent).toContain('carol@localhost is offline');
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
