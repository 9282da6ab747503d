import { beforeEach, describe, expect, it, vi } from 'vitest';

const invoke = vi.fn();
const listen = vi.fn();
const onDragDropEvent = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock('@tauri-apps/api/event', () => ({ listen: (...a: unknown[]) => listen(...a) }));
vi.mock('@tauri-apps/api/webview', () => ({ getCurrentWebview: () => ({ onDragDropEvent }) }));

import { inTauri, toCommandError, wantsMock } from './backend';
import { MockBackend, mockOptionsFromQuery, mockRecordActions } from './mock-backend';
import { COMMANDS } from './bindings/commands';
import { EVENT_CHANNEL, OPEN_FILES_CHANNEL, TauriBackend } from './tauri-backend';
import type { DragDropEvent, EngineEvent, SignInArgs, TransferRecord } from './types';

describe('TauriBackend: the command contract with src-tauri', () => {
  beforeEach(() => {
    invoke.mockReset();
    invoke.mockResolvedValue(undefined);
  });

  it('calls each command by its name with camelCase arguments', async () => {
    const b = new TauriBackend();
    await b.signIn({ jid: 'a@b', password: 'pw', tls: 'starttls', remember: true });
    await b.signIn({ jid: 'a@b', password: 'pw', server: 'h:5222', tls: 'direct', caFile: '/ca.pem', remember: false });
    await b.signOut();
    await b.account();
    await b.rememberedAccount();
    await b.roster();
    await b.sendFiles('bob@x', ['/a', '/dir']);
    await b.accept(3);
    await b.accept(3, '/tmp');
    await b.reject(4);
    await b.cancel(5);
    await b.resume(6);
    await b.retry(7);
    await b.uploadInstead(11);
    await b.history({ peer: 'bob@x', nameContains: 'pdf', sinceMs: 1, untilMs: 2, limit: 10, direction: 'incoming', state: 'completed' });
    await b.history({});
    await b.removeFromHistory(8);
    await b.openFile(9);
    await b.showInFolder(10);
    await b.getSettings();
    const settings = { downloadDir: '/d', proxyJid: '', methods: ['s5b', 'ibb'] as const, autoAcceptMaxBytes: 0, language: 'en' as const, theme: 'dark' as const, streamhostAddrs: [], allowUpload: true, serveHttp: false, strangers: 'ask' as const };
    await b.setSettings({ ...settings, methods: [...settings.methods] });
    await b.pickFiles();
    await b.pickFolder();
    await b.takePendingFiles();
    expect(invoke.mock.calls).toEqual([
      ['sign_in', { jid: 'a@b', password: 'pw', tls: 'starttls', remember: true }],
      ['sign_in', { jid: 'a@b', password: 'pw', server: 'h:5222', tls: 'direct', caFile: '/ca.pem', remember: false }],
      ['sign_out'],
      ['account'],
      ['remembered_account'],
      ['roster'],
      ['send_files', { to: 'bob@x', paths: ['/a', '/dir'] }],
      ['accept', { id: 3 }],
      ['accept', { id: 3, dir: '/tmp' }],
      ['reject', { id: 4 }],
      ['cancel', { id: 5 }],
      ['resume', { id: 6 }],
      ['retry', { id: 7 }],
      ['upload_instead', { id: 11 }],
      ['history', { peer: 'bob@x', nameContains: 'pdf', sinceMs: 1, untilMs: 2, limit: 10, direction: 'incoming', state: 'completed' }],
      ['history', {}],
      ['remove_from_history', { id: 8 }],
      ['open_file', { id: 9 }],
      ['show_in_folder', { id: 10 }],
      ['get_settings'],
      ['set_settings', { settings: { ...settings, methods: ['s5b', 'ibb'] } }],
      ['pick_files'],
      ['pick_folder', {}],
      ['take_pending_files'],
    ]);
    // Every generated command wrapper is used.
    const used = new Set(invoke.mock.calls.map((c) => c[0]));
    expect(COMMANDS.filter((c) => !used.has(c))).toEqual([]);
  });

  it('resolves with what the command returned', async () => {
    const b = new TauriBackend();
    invoke.mockResolvedValueOnce({ jid: 'a@b' }).mockResolvedValueOnce(12).mockResolvedValueOnce(null);
    expect(await b.signIn({ jid: 'a@b/x', password: 'pw', remember: false })).toEqual({ jid: 'a@b' });
    expect(await b.retry(7)).toBe(12);
    expect(await b.signOut()).toBeUndefined();
  });

  it('passes "Remember password" on, and hands back the keyring note and the remembered view', async () => {
    const b = new TauriBackend();
    const note = 'your password was not saved: no keyring service is available on this computer';
    const view = { jid: 'a@b', server: null, tls: 'starttls', caFile: null, passwordSaved: false, signInError: { code: 'connect', message: 'refused' } };
    invoke.mockResolvedValueOnce({ jid: 'a@b', password_note: note }).mockResolvedValueOnce(view);
    expect(await b.signIn({ jid: 'a@b', password: 'pw', tls: 'starttls', remember: true, rememberPassword: true })).toEqual({ jid: 'a@b', password_note: note });
    expect(await b.rememberedAccount()).toEqual(view);
    expect(invoke.mock.calls).toEqual([
      ['sign_in', { jid: 'a@b', password: 'pw', tls: 'starttls', remember: true, rememberPassword: true }],
      ['remembered_account'],
    ]);
  });

  it('rejects with { code, message } whatever the shell threw', async () => {
    const b = new TauriBackend();
    invoke.mockRejectedValueOnce({ code: 'auth-failed', message: 'not-authorized' });
    await expect(b.signIn({ jid: 'a@b', password: 'x', tls: 'starttls', remember: false })).rejects.toEqual({ code: 'auth-failed', message: 'not-authorized' });
    invoke.mockRejectedValueOnce('plain string');
    await expect(b.roster()).rejects.toEqual({ code: 'internal', message: 'plain string' });
  });

  it('signs in with trustFingerprint, and rejects with the refused certificate', async () => {
    const b = new TauriBackend();
    const fingerprint = 'SHA256:' + Array(32).fill('AB').join(':');
    const untrusted = {
      host: 'example.org',
      certificate: { subject: 'CN=example.org', issuer: 'CN=example.org', self_signed: true, not_before: 1, not_after: 2, names: ['example.org'], fingerprint },
      reason: 'self-signed',
      changed: false,
      detail: 'invalid peer certificate: UnknownIssuer',
    };
    invoke.mockRejectedValueOnce({ code: 'certificate-untrusted', message: 'not trusted', untrusted });
    await expect(b.signIn({ jid: 'a@example.org', password: 'pw', tls: 'starttls', remember: false })).rejects.toEqual({ code: 'certificate-untrusted', message: 'not trusted', untrusted });
    await b.signIn({ jid: 'a@example.org', password: 'pw', tls: 'starttls', remember: false, trustFingerprint: fingerprint });
    expect(invoke.mock.calls.at(-1)).toEqual(['sign_in', { jid: 'a@example.org', password: 'pw', tls: 'starttls', remember: false, trustFingerprint: fingerprint }]);
  });

  it('listens to skiff://event and forwards the payload', async () => {
    const b = new TauriBackend();
    let cb: ((e: { payload: EngineEvent }) => void) | undefined;
    listen.mockImplementation(async (name: string, f: typeof cb) => {
      expect(name).toBe(EVENT_CHANNEL);
      cb = f;
      return () => {};
    });
    const got: EngineEvent[] = [];
    await b.onEvent((e) => got.push(e));
    cb!({ payload: { type: 'transfer_progress', id: 3, bytes: 1, total: 2, bytes_per_sec: 3 } });
    expect(EVENT_CHANNEL).toBe('skiff://event');
    expect(got).toEqual([{ type: 'transfer_progress', id: 3, bytes: 1, total: 2, bytes_per_sec: 3 }]);
  });

  it('listens for the shell\'s focus-offer event', async () => {
    const b = new TauriBackend();
    let cb: ((e: { payload: number }) => void) | undefined;
    listen.mockImplementation(async (name: string, f: typeof cb) => {
      expect(name).toBe('skiff://focus-offer');
      cb = f;
      return () => {};
    });
    const got: number[] = [];
    await b.onFocusOffer((id) => got.push(id));
    cb!({ payload: 42 });
    expect(got).toEqual([42]);
  });

  it('listens for the files a launch hands over (skiff://open-files)', async () => {
    const b = new TauriBackend();
    let cb: ((e: { payload: string[] }) => void) | undefined;
    listen.mockImplementation(async (name: string, f: typeof cb) => {
      expect(name).toBe(OPEN_FILES_CHANNEL);
      cb = f;
      return () => {};
    });
    const got: string[][] = [];
    await b.onOpenFiles((paths) => got.push(paths));
    cb!({ payload: ['/home/me/a.pdf', '/home/me/Photos'] });
    expect(OPEN_FILES_CHANNEL).toBe('skiff://open-files');
    expect(got).toEqual([['/home/me/a.pdf', '/home/me/Photos']]);
    invoke.mockResolvedValueOnce(['/home/me/a.pdf']);
    expect(await b.takePendingFiles()).toEqual(['/home/me/a.pdf']);
  });

  it('turns webview drag-drop events into plain objects', async () => {
    const b = new TauriBackend();
    let cb: ((e: { payload: unknown }) => void) | undefined;
    onDragDropEvent.mockImplementation(async (f: typeof cb) => {
      cb = f;
      return () => {};
    });
    const got: DragDropEvent[] = [];
    await b.onDragDrop((e) => got.push(e));
    cb!({ payload: { type: 'enter', paths: ['/a'], position: { x: 1, y: 2, type: 'Physical' } } });
    cb!({ payload: { type: 'over', position: { x: 3, y: 4 } } });
    cb!({ payload: { type: 'drop', paths: ['/a'], position: { x: 5, y: 6 } } });
    cb!({ payload: { type: 'leave' } });
    expect(got).toEqual([
      { type: 'enter', paths: ['/a'], position: { x: 1, y: 2 } },
      { type: 'over', position: { x: 3, y: 4 } },
      { type: 'drop', paths: ['/a'], position: { x: 5, y: 6 } },
      { type: 'leave' },
    ]);
  });
});

describe('backend selection', () => {
  it('uses the mock with ?mock or outside Tauri', () => {
    expect(wantsMock('?mock', true)).toBe(true);
    expect(wantsMock('?view=history&mock', true)).toBe(true);
    expect(wantsMock('', false)).toBe(true);
    expect(wantsMock('', true)).toBe(false);
    expect(inTauri({ __TAURI_INTERNALS__: {} })).toBe(true);
    expect(inTauri({})).toBe(false);
  });

  it('normalises errors', () => {
    expect(toCommandError({ code: 'tls', message: 'bad cert' })).toEqual({ code: 'tls', message: 'bad cert' });
    expect(toCommandError(new Error('boom'))).toEqual({ code: 'internal', message: 'boom' });
    expect(toCommandError(42)).toEqual({ code: 'internal', message: '42' });
    // Only the shell's codes pass; anything else is "internal".
    expect(toCommandError({ code: 'made-up', message: 'x' })).toEqual({ code: 'internal', message: 'x' });
    expect(toCommandError({ code: 'contact-offline', message: 'y' })).toEqual({ code: 'contact-offline', message: 'y' });
  });

  it('keeps the refused certificate of a sign-in error', () => {
    const untrusted = {
      host: 'example.org',
      certificate: { subject: 'CN=example.org', issuer: 'CN=Evil CA', self_signed: false, not_before: 1, not_after: 2, names: [], fingerprint: 'SHA256:AB:CD' },
      reason: 'unknown-issuer',
      changed: true,
      detail: 'invalid peer certificate: UnknownIssuer',
    };
    expect(toCommandError({ code: 'certificate-changed', message: 'changed', untrusted })).toEqual({ code: 'certificate-changed', message: 'changed', untrusted });
    // Absent, null (as serde may send it) or without a certificate: left out.
    expect(toCommandError({ code: 'tls', message: 'm', untrusted: null })).toEqual({ code: 'tls', message: 'm' });
    expect('untrusted' in toCommandError({ code: 'tls', message: 'm', untrusted: null })).toBe(false);
    expect(toCommandError({ code: 'certificate-untrusted', message: 'm', untrusted: { host: 'x' } })).toEqual({ code: 'certificate-untrusted', message: 'm' });
  });
});

describe('MockBackend', () => {
  const make = () => new MockBackend({ ...mockOptionsFromQuery('?mock&quiet'), tickMs: 0 });

  it('reads its options from the URL', () => {
    expect(mockOptionsFromQuery('?mock&signin&offer=2&lang=zh-CN&theme=dark')).toMatchObject({ signedIn: false, offers: 2, language: 'zh-CN', theme: 'dark', offerAfterMs: 0 });
    expect(mockOptionsFromQuery('?mock&lang=fr')).toMatchObject({ signedIn: true, language: undefined, offerAfterMs: 4000 });
    expect(mockOptionsFromQuery('?mock')).toMatchObject({ keyring: true, remembered: undefined, startError: undefined });
    expect(mockOptionsFromQuery('?mock&nokeyring&remembered')).toMatchObject({ keyring: false, remembered: 'account' });
    expect(mockOptionsFromQuery('?mock&signin&remembered=saved&starterror=connect')).toMatchObject({ remembered: 'saved', startError: 'connect' });
  });

  it('hands over files like the shell: ?open= and openFiles() pending until taken, each announcing the whole list', async () => {
    expect(mockOptionsFromQuery('?mock').open).toEqual([]);
    const b = new MockBackend({ ...mockOptionsFromQuery('?mock&quiet&open=/home/me/a.pdf, /home/me/b.jpg'), tickMs: 0 });
    const got: string[][] = [];
    const stop = await b.onOpenFiles((paths) => got.push(paths));
    b.openFiles(['/home/me/c.txt']);
    expect(got).toEqual([['/home/me/a.pdf', '/home/me/b.jpg', '/home/me/c.txt']]);
    expect(await b.takePendingFiles()).toEqual(['/home/me/a.pdf', '/home/me/b.jpg', '/home/me/c.txt']);
    expect(await b.takePendingFiles()).toEqual([]);
    b.openFiles(['/home/me/d.txt']);
    expect(got.at(-1)).toEqual(['/home/me/d.txt']);
    stop();
    b.openFiles(['/home/me/e.txt']);
    expect(got).toHaveLength(2);
    b.dispose();
  });

  it('keeps a password in its keyring only when asked, and says when there is no keyring', async () => {
    vi.useFakeTimers();
    try {
      const b = make();
      const signIn = (extra: Partial<Parameters<MockBackend['signIn']>[0]>) => {
        const p = b.signIn({ jid: 'Alice@localhost', password: 'pw', tls: 'starttls', remember: true, ...extra });
        vi.advanceTimersByTime(600);
        return p;
      };
      expect(await b.rememberedAccount()).toBeNull();
      // Remember me without the password: the account, no password.
      expect(await signIn({})).toEqual({ jid: 'Alice@localhost', password_note: null });
      expect(await b.rememberedAccount()).toEqual({ jid: 'Alice@localhost', server: null, tls: 'starttls', caFile: null, passwordSaved: false, signInError: null });
      // With the password: in the keyring (never anywhere else), and said so.
      expect(await signIn({ rememberPassword: true, server: 'h:5222' })).toEqual({ jid: 'Alice@localhost', password_note: null });
      expect(b.keyring.get('alice@localhost')).toBe('pw');
      expect(await b.rememberedAccount()).toMatchObject({ server: 'h:5222', passwordSaved: true });
      // Unticked (or without Remember me): a kept password is forgotten.
      await signIn({ remember: false, rememberPassword: true });
      expect(b.keyring.size).toBe(0);
      expect((await b.rememberedAccount())!.passwordSaved).toBe(false);
      // No keyring service: signed in all the same, one sentence, nothing kept.
      const note = (await signIn({ jid: 'bob@nokeyring.example', rememberPassword: true })).password_note;
      expect(note).toMatch(/^your password was not saved: no keyring service .*Nothing was written to disk$/);
      b.keyringAvailable = false;
      expect((await signIn({ rememberPassword: true })).password_note).toBe(note);
      expect(b.keyring.size).toBe(0);
      b.dispose();
    } finally {
      vi.useRealTimers();
    }
  });

  it('starts with a remembered account, its kept password and why signing in at start failed', async () => {
    const start = async (q: string) => {
      const b = new MockBackend({ ...mockOptionsFromQuery(`?mock&quiet&signin${q}`), tickMs: 0 });
      const r = await b.rememberedAccount();
      b.dispose();
      return r;
    };
    expect(await start('')).toBeNull();
    expect(await start('&remembered')).toMatchObject({ jid: 'alice@localhost', passwordSaved: false, signInError: null });
    expect(await start('&remembered=saved')).toMatchObject({ passwordSaved: true, signInError: null });
    expect(await start('&starterror=connect')).toMatchObject({ passwordSaved: true, signInError: { code: 'connect' } });
    // A refused password is forgotten.
    expect(await start('&starterror=auth-failed')).toMatchObject({ passwordSaved: false, signInError: { code: 'auth-failed' } });
  });

  it('emits engine events for a send, and refuses offline contacts with uploads off', async () => {
    const b = new MockBackend({ ...mockOptionsFromQuery('?mock&quiet&noupload'), tickMs: 0 });
    const events: EngineEvent[] = [];
    await b.onEvent((e) => events.push(e));
    const ids = await b.sendFiles('bob@localhost', ['/x/a.txt']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'transfer_offered', id: ids[0], direction: 'outgoing', name: 'a.txt', peer: 'bob@localhost/laptop' }));
    await expect(b.sendFiles('carol@localhost', ['/x'])).rejects.toMatchObject({ code: 'contact-offline' });
    await b.cancel(ids[0]!);
    expect(events.at(-1)).toEqual({ type: 'transfer_failed', id: ids[0], name: 'a.txt', reason: 'cancelled', error: 'cancelled', resumable: true, upload_fallback: false });
    b.dispose();
  });

  it('refuses a self-signed server certificate until the account trusts it', async () => {
    const b = make();
    const args: SignInArgs = { jid: 'Alice@selfsigned.example', password: 'pw', tls: 'starttls', remember: false };
    const e1 = await b.signIn(args).catch((e) => e);
    expect(e1).toMatchObject({ code: 'certificate-untrusted', untrusted: { host: 'selfsigned.example', reason: 'self-signed', changed: false, certificate: { self_signed: true } } });
    const fp: string = e1.untrusted.certificate.fingerprint;
    expect(fp).toMatch(/^SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(e1.message).toContain(fp);
    const { not_before, not_after } = e1.untrusted.certificate;
    expect(not_before * 1000).toBeLessThan(Date.now());
    expect(not_after * 1000).toBeGreaterThan(Date.now());
    // Another fingerprint is no trust.
    await expect(b.signIn({ ...args, trustFingerprint: 'SHA256:' + Array(32).fill('00').join(':') })).rejects.toMatchObject({ code: 'certificate-changed' });
    expect(await b.signIn({ ...args, trustFingerprint: fp })).toEqual({ jid: 'Alice@selfsigned.example', password_note: null });
    expect(b.certificatePins.get('alice@selfsigned.example')).toBe(fp);
    // Pinned: nothing more to say; another machine answering for the server is a change.
    expect(await b.signIn(args)).toEqual({ jid: 'Alice@selfsigned.example', password_note: null });
    const e2 = await b.signIn({ ...args, server: 'mitm.selfsigned.example:5222' }).catch((e) => e);
    expect(e2).toMatchObject({ code: 'certificate-changed', untrusted: { reason: 'unknown-issuer', changed: true, certificate: { self_signed: false } } });
    expect(e2.untrusted.certificate.fingerprint).not.toBe(fp);
    // Another account has pinned nothing: the same certificate is only untrusted.
    await expect(b.signIn({ ...args, jid: 'bob@selfsigned.example', server: 'mitm.selfsigned.example:5222' })).rejects.toMatchObject({ code: 'certificate-untrusted' });
    // A CA file vouches for the server's own certificate; an expired one is refused as such.
    expect(await b.signIn({ ...args, jid: 'carol@selfsigned.example', caFile: '/etc/skiff/ca.pem' })).toEqual({ jid: 'carol@selfsigned.example', password_note: null });
    await expect(b.signIn({ ...args, jid: 'a@expired.example' })).rejects.toMatchObject({ code: 'certificate-untrusted', untrusted: { reason: 'expired' } });
    b.dispose();
  });

  /** A mock whose timers run fast under fake timers, with every event it emits. */
  async function fast(extra = '') {
    vi.useFakeTimers();
    const b = new MockBackend({ ...mockOptionsFromQuery(`?mock&quiet${extra}`), tickMs: 100, speed: 1000 });
    const events: EngineEvent[] = [];
    await b.onEvent((e) => events.push(e));
    const of = (id: number) => events.filter((e) => 'id' in e && e.id === id).map((e) => (e.type === 'transfer_started' || e.type === 'transfer_completed' ? `${e.type}:${e.route}` : e.type));
    return { b, events, of };
  }

  it('sends a folder of files from Bob at once with burst=N, each described by its path inside it', async () => {
    expect(mockOptionsFromQuery('?mock').burst).toBe(0);
    expect(mockOptionsFromQuery('?mock&burst').burst).toBe(3);
    expect(mockOptionsFromQuery('?mock&burst=12').burst).toBe(12);
    expect(mockOptionsFromQuery('?mock&burst=5000').burst).toBe(300);
    const { b, events } = await fast('&burst');
    try {
      await b.account(); // starts the demo
      vi.advanceTimersByTime(10);
      type Offered = Extract<EngineEvent, { type: 'transfer_offered' }>;
      const offers = events.filter((e): e is Offered => e.type === 'transfer_offered' && e.direction === 'incoming' && e.size < 1024 * 1024 * 1024);
      expect(offers.map((o) => [o.peer, o.name, o.description])).toEqual([
        ['bob@localhost/laptop', 'IMG_4102.jpg', 'lake-trip/IMG_4102.jpg'],
        ['bob@localhost/laptop', 'IMG_4107.jpg', 'lake-trip/IMG_4107.jpg'],
        ['bob@localhost/laptop', 'route.gpx', 'lake-trip/notes/route.gpx'],
      ]);
      // More on demand, answered like any offer.
      const more = b.offerBurst(2);
      expect(more).toHaveLength(2);
      await b.reject(more[0]!);
      expect(events.at(-1)).toMatchObject({ type: 'transfer_rejected', id: more[0] });
    } finally {
      b.dispose();
      vi.useRealTimers();
    }
  });

  it('gives each started transfer its protocol: SI between Skiffs, Jingle with Dave\'s client, none for uploads', async () => {
    const { b, events } = await fast();
    try {
      type Started = Extract<EngineEvent, { type: 'transfer_started' }>;
      const started = (id: number) => events.find((e): e is Started => e.type === 'transfer_started' && e.id === id);
      const [toBob] = await b.sendFiles('bob@localhost', ['/x/a.pdf']);
      const [toDave] = await b.sendFiles('dave.from.the.research.department@conference-and-files.example.org', ['/x/b.pdf']);
      const [toCarol] = await b.sendFiles('carol@localhost', ['/x/c.pdf']); // offline: an upload
      vi.advanceTimersByTime(1000);
      expect(started(toBob!)).toMatchObject({ route: 's5b-direct', protocol: 'si' });
      expect(started(toDave!)).toMatchObject({ route: 's5b-proxy', protocol: 'jingle' });
      expect(started(toCarol!)).toMatchObject({ route: 'upload', protocol: null });
      vi.advanceTimersByTime(60_000);
      expect((await b.history({ nameContains: 'b.pdf' }))[0]).toMatchObject({ protocol: 'jingle', state: 'completed' });
      // The seeded history: SI for most, Jingle for the other apps, none for links and uploads.
      const all = await b.history({ limit: 500 });
      const protocol = (name: string) => all.find((r) => r.file_name === name)!.protocol;
      expect(protocol('thesis-draft-v7.pdf')).toBe('si');
      expect(protocol('dataset.tar.gz')).toBe('jingle');
      expect(protocol('slides-final.pdf')).toBeNull();
      expect(protocol('boarding-pass.pdf')).toBeNull();
      expect(protocol('budget.xlsx')).toBeNull(); // declined: never started
      expect(protocol('wedding-photos')).toBe('si'); // batches are Skiff's, over SI
    } finally {
      b.dispose();
      vi.useRealTimers();
    }
  });

  it('sends to an offline contact by HTTP upload while uploads are allowed', async () => {
    const { b, events, of } = await fast();
    try {
      const [id] = await b.sendFiles('carol@localhost', ['/x/slides.pdf']);
      vi.advanceTimersByTime(5000);
      expect([...new Set(of(id!))]).toEqual(['transfer_offered', 'transfer_started:upload', 'transfer_progress', 'transfer_completed:upload']);
      const done = events.find((e) => e.type === 'transfer_completed' && e.id === id);
      expect(done).toMatchObject({ path: expect.stringMatching(/^https:\/\/.*slides\.pdf$/) });
      expect(events.find((e) => e.type === 'transfer_offered' && e.id === id)).toMatchObject({ peer: 'carol@localhost' });
      // An online contact whose app takes no SI offers gets an upload too.
      const [id2] = await b.sendFiles('lilei@jabber.example.cn', ['/x/a.txt']);
      vi.advanceTimersByTime(5000);
      expect(of(id2!)).toContain('transfer_completed:upload');
      expect((await b.history({ nameContains: 'slides.pdf' }))[0]).toMatchObject({ route: 'upload', state: 'completed', local_path: '/x/slides.pdf' });
    } finally {
      b.dispose();
      vi.useRealTimers();
    }
  });

  it('asks about a stranger\'s offer, or refuses it without a trace when the setting says so', async () => {
    expect(mockOptionsFromQuery('?mock&stranger').strangerOffer).toBe(true);
    const b = make();
    const events: EngineEvent[] = [];
    await b.onEvent((e) => events.push(e));
    expect((await b.getSettings()).strangers).toBe('ask');
    const id = b.offerFromStranger('a.txt');
    expect(events.at(-1)).toMatchObject({ type: 'transfer_offered', id, direction: 'incoming', peer: 'mallory@evil.example/bot' });
    await b.setSettings({ ...(await b.getSettings()), strangers: 'refuse' });
    const before = events.length;
    const records = (await b.history({})).length;
    expect(b.offerFromStranger('b.txt')).toBeNull();
    expect(events.length).toBe(before);
    expect((await b.history({})).length).toBe(records);
    b.dispose();
  });

  it('refuses a contact whose app takes no SI offers when uploads are off', async () => {
    const b = new MockBackend({ ...mockOptionsFromQuery('?mock&quiet&noupload'), tickMs: 0 });
    await expect(b.sendFiles('lilei@jabber.example.cn', ['/x'])).rejects.toMatchObject({ code: 'no-file-transfer' });
    expect((await b.getSettings()).allowUpload).toBe(false);
    b.dispose();
  });

  it('fails SI to Erin with upload_fallback, and uploads instead under the same id', async () => {
    const { b, events, of } = await fast();
    try {
      const [id] = await b.sendFiles('erin@localhost', ['/x/budget.xlsx']);
      vi.advanceTimersByTime(1000);
      expect(events.at(-1)).toMatchObject({ type: 'transfer_failed', id, resumable: false, upload_fallback: true });
      events.length = 0;
      expect(await b.uploadInstead(id!)).toBe(id);
      vi.advanceTimersByTime(5000);
      expect([...new Set(of(id!))]).toEqual(['transfer_offered', 'transfer_started:upload', 'transfer_progress', 'transfer_completed:upload']);
      expect(events[0]).toMatchObject({ type: 'transfer_offered', peer: 'erin@localhost', resume_from: 0 });
      // Not failed (any more): nothing to upload instead.
      await expect(b.uploadInstead(id!)).rejects.toMatchObject({ code: 'already-active' });
    } finally {
      b.dispose();
      vi.useRealTimers();
    }
  });

  it('offers no upload after a failure while uploads are off', async () => {
    const { b, events } = await fast('&noupload');
    try {
      const [id] = await b.sendFiles('erin@localhost', ['/x/budget.xlsx']);
      vi.advanceTimersByTime(1000);
      expect(events.at(-1)).toMatchObject({ type: 'transfer_failed', id, upload_fallback: false });
      await expect(b.uploadInstead(id!)).rejects.toMatchObject({ code: 'invalid' });
      await b.setSettings({ ...(await b.getSettings()), allowUpload: true, serveHttp: true });
      expect(await b.getSettings()).toMatchObject({ allowUpload: true, serveHttp: true });
      expect(await b.uploadInstead(id!)).toBe(id);
    } finally {
      b.dispose();
      vi.useRealTimers();
    }
  });

  it('completes the demo transfers verified between Skiffs, links and uploads not', async () => {
    const { b, events } = await fast('&offer=2');
    try {
      await b.account(); // starts the demo: two running transfers with Bob, offers from Bob and 李雷
      vi.advanceTimersByTime(10);
      type Offered = Extract<EngineEvent, { type: 'transfer_offered' }>;
      const offers = events.filter((e): e is Offered => e.type === 'transfer_offered' && e.direction === 'incoming' && e.size < 1024 * 1024 * 1024);
      expect(offers.map((o) => o.peer)).toEqual(['bob@localhost/laptop', 'lilei@jabber.example.cn/mobile']);
      for (const o of offers) await b.accept(o.id);
      const [toBob] = await b.sendFiles('bob@localhost', ['/x/a.txt']);
      const [toCarol] = await b.sendFiles('carol@localhost', ['/x/b.txt']); // offline: by upload
      vi.advanceTimersByTime(5000);
      const done = events.filter((e) => e.type === 'transfer_completed');
      const verdict = (id: number) => done.find((e) => e.id === id);
      // The demo's own transfers (to and from Bob, running from the start) and a send to Bob: SHA-256.
      const demo = done.filter((e) => ![toBob, toCarol, ...offers.map((o) => o.id)].includes(e.id));
      expect(demo).toHaveLength(2);
      expect(demo.map((e) => e.verified)).toEqual(['sha256', 'sha256']);
      // Accepted: Bob's Skiff sends the SHA-256, 李雷's other app only the offer's MD5.
      expect(offers.map((o) => verdict(o.id)?.verified)).toEqual(['sha256', 'md5']);
      expect(verdict(toBob!)).toMatchObject({ route: 's5b-direct', verified: 'sha256' });
      expect(verdict(toCarol!)).toMatchObject({ route: 'upload', verified: 'none' });
      // The history says the same.
      const [rBob] = await b.history({ nameContains: 'a.txt' });
      const [rCarol] = await b.history({ nameContains: 'b.txt' });
      expect(rBob).toMatchObject({ state: 'completed', verified: 'sha256' });
      expect(rCarol).toMatchObject({ state: 'completed', verified: 'none' });
    } finally {
      b.dispose();
      vi.useRealTimers();
    }
  });

  it('seeds a history whose completed records say how they were checked', async () => {
    const b = make();
    const all = await b.history({});
    const v = (name: string) => all.find((r) => r.file_name === name)!.verified;
    expect(v('thesis-draft-v7.pdf')).toBe('sha256'); // to Bob, a Skiff
    expect(v('Family photos 2023 — summer holidays in the mountains.zip')).toBe('sha256');
    expect(v('会议纪要-第三季度.docx')).toBe('md5'); // from another app: the offer's MD5
    expect(v('slides-final.pdf')).toBe('none'); // an upload
    expect(v('IMG_20240611_0932.jpg')).toBe('none'); // a link
    expect(v('boarding-pass.pdf')).toBe('none'); // a recent link: on the transfers pane
    // A damaged file is a failure like any other.
    expect(all.find((r) => r.file_name === 'render-final.mov')).toMatchObject({ state: 'failed', error: expect.stringContaining('SHA-256 does not match') });
    expect(all.filter((r) => r.state !== 'completed').every((r) => r.verified === 'none')).toBe(true);
    b.dispose();
  });

  it('gives each history record the actions the engine would', async () => {
    const b = make();
    const all = await b.history({});
    const actions = (name: string) => all.find((r) => r.file_name === name)!.actions;
    // Ours, interrupted, its file known: go on, or send afresh (or by upload).
    expect(actions('dataset.tar.gz')).toEqual({ open: false, show: true, resend: true, resume: true, upload: true, remove: true });
    // Received and complete: open and show it, nothing to send.
    expect(actions('Family photos 2023 — summer holidays in the mountains.zip')).toEqual({ open: true, show: true, resend: false, resume: false, upload: false, remove: true });
    // Declined: sent afresh, never resumed nor uploaded; an upload is not uploaded again.
    expect(actions('budget.xlsx')).toMatchObject({ resend: true, resume: false, upload: false });
    expect(actions('slides-final.pdf')).toMatchObject({ resend: true, upload: false });
    // Signed out: no uploads.
    await b.signOut();
    expect((await b.history({ nameContains: 'dataset.tar.gz' }))[0]!.actions).toMatchObject({ resume: true, upload: false });
    b.dispose();
  });

  it('decides the actions by the engine\'s rules', () => {
    const r: TransferRecord = {
      id: 1, sid: 's1', direction: 'outgoing', account: 'alice@x', peer_jid: 'bob@x/pc', file_name: 'a.bin', local_path: '/home/alice/a.bin', size: 10,
      md5: null, sha256: null, date: null, description: null, route: null, streamhost: null, state: 'interrupted',
      bytes_done: 0, error: null, fail_reason: null, created_at: 0, updated_at: 0, finished_at: null, offset: 0, attempts: 1, url: null, verified: 'none',
      parent: null, files: null, rel_path: null, protocol: null,
    };
    const idle = { running: false, uploadAllowed: true, fileExists: true };
    const on = (rec: TransferRecord, c = idle) => Object.entries(mockRecordActions(rec, c)).filter(([, v]) => v).map(([k]) => k);
    // The cases of the engine's own test (`what_each_record_allows`).
    expect(on({ ...r, state: 'completed' })).toEqual(['open', 'show', 'resend', 'remove']);
    expect(on(r)).toEqual(['show', 'resend', 'resume', 'upload', 'remove']);
    expect(on({ ...r, state: 'failed' })).toEqual(['show', 'resend', 'resume', 'upload', 'remove']);
    expect(on({ ...r, state: 'rejected' })).toEqual(['show', 'resend', 'remove']);
    expect(on({ ...r, state: 'cancelled' })).toEqual(['show', 'resend', 'upload', 'remove']);
    expect(on({ ...r, direction: 'incoming', state: 'completed' })).toEqual(['open', 'show', 'remove']);
    expect(on({ ...r, direction: 'incoming' })).toEqual(['remove']);
    expect(on({ ...r, direction: 'incoming', url: 'https://x/a.bin' })).toEqual(['resume', 'remove']);
    expect(on({ ...r, state: 'active' }, { ...idle, running: true })).toEqual(['show']);
    expect(on({ ...r, state: 'failed' }, { running: false, uploadAllowed: false, fileExists: false })).toEqual(['show', 'resend', 'resume', 'remove']);
    expect(mockRecordActions({ ...r, state: 'failed' }, { ...idle, fileExists: false }).upload).toBe(false);
    expect(mockRecordActions({ ...r, state: 'failed', route: 'upload' }, idle).upload).toBe(false);
    expect(mockRecordActions({ ...r, state: 'failed', sid: 'upload-x' }, idle).upload).toBe(false);
    expect(on({ ...r, state: 'failed', local_path: null })).toEqual(['remove']);
    // Batches as a whole; their files only looked at.
    expect(on({ ...r, files: 3, local_path: null })).toEqual(['resend', 'resume', 'remove']);
    expect(on({ ...r, files: 3, state: 'failed' })).toEqual(['show', 'resend', 'resume', 'remove']);
    expect(on({ ...r, files: 3, direction: 'incoming', state: 'completed' })).toEqual(['open', 'show', 'remove']);
    expect(on({ ...r, parent: 9 })).toEqual(['show']);
    expect(on({ ...r, parent: 9, direction: 'incoming', state: 'completed' })).toEqual(['open', 'show']);
  });

  it('filters its history like the engine', async () => {
    const b = make();
    const all = await b.history({});
    expect(all.length).toBeGreaterThan(5);
    expect(all.map((r) => r.created_at)).toEqual([...all.map((r) => r.created_at)].sort((x, y) => y - x));
    const bob = await b.history({ peer: 'bob@localhost' });
    expect(bob.every((r) => r.peer_jid.startsWith('bob@localhost/'))).toBe(true);
    expect((await b.history({ state: 'completed', direction: 'incoming' })).every((r) => r.state === 'completed' && r.direction === 'incoming')).toBe(true);
    expect((await b.history({ nameContains: 'NOTES' })).map((r) => r.file_name)).toEqual(['notes.txt']);
    expect(await b.history({ limit: 2 })).toHaveLength(2);
    const id = all[0]!.id;
    await b.removeFromHistory(id);
    expect((await b.history({})).some((r) => r.id === id)).toBe(false);
    await expect(b.openFile(id)).rejects.toMatchObject({ code: 'not-found' });
    b.dispose();
  });
  describe('batches', () => {
    type Offered = Extract<EngineEvent, { type: 'transfer_offered' }>;
    type Progress = Extract<EngineEvent, { type: 'batch_progress' }>;
    const progressOf = (events: EngineEvent[], id: number) => events.filter((e): e is Progress => e.type === 'batch_progress' && e.id === id);
    /** A mock at the demo's own speed (`fast` finishes anything in one tick). */
    async function slow() {
      vi.useFakeTimers();
      const b = new MockBackend({ ...mockOptionsFromQuery('?mock&quiet'), tickMs: 100, speed: 1 });
      const events: EngineEvent[] = [];
      await b.onEvent((e) => events.push(e));
      const of = (id: number) => events.filter((e) => 'id' in e && e.id === id).map((e) => (e.type === 'transfer_started' || e.type === 'transfer_completed' ? `${e.type}:${e.route}` : e.type));
      return { b, events, of };
    }

    it('offers a folder from Bob as one batch with ?mock&batch, its files under it in the history', async () => {
      expect(mockOptionsFromQuery('?mock').batch).toBe(0);
      expect(mockOptionsFromQuery('?mock&batch').batch).toBe(312);
      expect(mockOptionsFromQuery('?mock&batch=5').batch).toBe(5);
      const { b, events } = await fast('&batch');
      try {
        await b.account(); // starts the demo
        vi.advanceTimersByTime(10);
        const offer = events.find((e): e is Offered => e.type === 'transfer_offered' && e.files != null)!;
        expect(offer).toMatchObject({ direction: 'incoming', peer: 'bob@localhost/laptop', name: 'photos', files: 312, resume_from: 0 });
        // About 1.4 GiB.
        expect(offer.size / 1024 ** 3).toBeGreaterThan(1.2);
        expect(offer.size / 1024 ** 3).toBeLessThan(1.6);
        // The history: the batch is one row, its files are not beside it.
        const rows = await b.history({});
        expect(rows.filter((r) => r.id === offer.id)).toEqual([expect.objectContaining({ files: 312, parent: null, size: offer.size, state: 'offered' })]);
        expect(rows.some((r) => r.parent != null)).toBe(false);
        const files = await b.history({ parent: offer.id });
        expect(files).toHaveLength(312);
        expect(files.every((f) => f.parent === offer.id && f.rel_path && f.files === null && f.state === 'offered')).toBe(true);
        expect(files.reduce((sum, f) => sum + f.size, 0)).toBe(offer.size);
        // Paths inside the folder, the same every time.
        const rels = files.map((f) => f.rel_path!);
        expect(rels.some((r) => r.includes('/'))).toBe(true);
        expect(rels.some((r) => r.startsWith('photos/'))).toBe(false);
        expect(new Set(rels).size).toBe(312);
        expect(await b.history({ parent: 99_999 })).toEqual([]);
      } finally {
        b.dispose();
        vi.useRealTimers();
      }
    });

    it('lands an accepted batch as a new folder in the folder chosen, counting its files done, "photos (1)" the second time', async () => {
      const { b, events, of } = await slow();
      try {
        const first = b.offerBatch(40);
        await b.accept(first, '/media/backup');
        vi.advanceTimersByTime(60_000);
        expect([...new Set(of(first))]).toEqual(['transfer_offered', 'transfer_started:s5b-direct', 'transfer_progress', 'batch_progress', 'transfer_completed:s5b-direct']);
        const counts = progressOf(events, first).map((e) => e.files_done);
        expect(counts.length).toBeGreaterThan(1);
        expect(counts).toEqual([...counts].sort((x, y) => x - y));
        expect(counts.at(-1)).toBe(40);
        expect(progressOf(events, first).every((e) => e.files === 40)).toBe(true);
        expect(events.find((e) => e.type === 'transfer_completed' && e.id === first)).toMatchObject({ path: '/media/backup/photos', verified: 'sha256' });
        const files = await b.history({ parent: first });
        expect(files.every((f) => f.state === 'completed' && f.verified === 'sha256' && f.local_path === `/media/backup/photos/${f.rel_path}`)).toBe(true);
        // The same folder again: the name is taken.
        const second = b.offerBatch(3);
        await b.accept(second, '/media/backup');
        vi.advanceTimersByTime(60_000);
        expect(events.find((e) => e.type === 'transfer_completed' && e.id === second)).toMatchObject({ path: '/media/backup/photos (1)' });
        // Removed from the history, its files go too.
        await b.removeFromHistory(first);
        expect(await b.history({ parent: first })).toEqual([]);
      } finally {
        b.dispose();
        vi.useRealTimers();
      }
    });

    it('declines and cancels a batch with its files', async () => {
      const { b, events } = await slow();
      try {
        const declined = b.offerBatch(5);
        await b.reject(declined);
        expect(events.at(-1)).toEqual({ type: 'transfer_rejected', id: declined, name: 'photos', reason: 'declined' });
        expect((await b.history({ parent: declined })).every((f) => f.state === 'rejected')).toBe(true);
        const running = b.offerBatch(300);
        await b.accept(running);
        vi.advanceTimersByTime(5_000);
        await b.cancel(running);
        expect(events.at(-1)).toMatchObject({ type: 'transfer_failed', id: running, reason: 'cancelled' });
        const states = new Set((await b.history({ parent: running })).map((f) => f.state));
        expect(states).toEqual(new Set(['completed', 'cancelled']));
      } finally {
        b.dispose();
        vi.useRealTimers();
      }
    });

    it('sends a folder, or several files at once, to a contact as one batch; by upload each path is one file', async () => {
      const { b, events, of } = await fast();
      try {
        const [folder, ...more] = await b.sendFiles('bob@localhost', ['/home/alice/Pictures/Holiday/']);
        expect(more).toEqual([]);
        const offered = events.find((e): e is Offered => e.type === 'transfer_offered' && e.id === folder)!;
        expect(offered).toMatchObject({ direction: 'outgoing', name: 'Holiday', peer: 'bob@localhost/laptop' });
        expect(offered.files).toBeGreaterThanOrEqual(8);
        vi.advanceTimersByTime(60_000);
        expect(of(folder!)).toContain('transfer_completed:s5b-direct');
        expect(progressOf(events, folder!).at(-1)).toMatchObject({ files_done: offered.files, files: offered.files });
        expect(events.find((e) => e.type === 'transfer_completed' && e.id === folder)).toMatchObject({ path: '/home/alice/Pictures/Holiday', verified: 'sha256' });
        const files = await b.history({ parent: folder });
        expect(files).toHaveLength(offered.files!);
        expect(files.every((f) => f.direction === 'outgoing' && f.local_path === `/home/alice/Pictures/Holiday/${f.rel_path}`)).toBe(true);
        // A path without an extension is taken for a folder too; its files are the same every time.
        const [again] = await b.sendFiles('bob@localhost', ['/home/alice/Pictures/Holiday']);
        expect((await b.history({ parent: again })).map((f) => f.rel_path)).toEqual(files.map((f) => f.rel_path));
        // Several paths: one batch named like the engine names loose files.
        const [loose] = await b.sendFiles('bob@localhost', ['/x/a.txt', '/x/b.pdf', '/x/Scans']);
        const looseOffer = events.find((e): e is Offered => e.type === 'transfer_offered' && e.id === loose)!;
        expect(looseOffer.name).toMatch(/^Files \d{4}-\d{2}-\d{2}$/);
        const looseFiles = (await b.history({ parent: loose })).map((f) => f.rel_path!);
        expect(looseFiles).toEqual(expect.arrayContaining(['a.txt', 'b.pdf']));
        expect(looseFiles.filter((r) => r.startsWith('Scans/')).length).toBeGreaterThanOrEqual(8);
        // Carol is offline: uploaded, one file per path.
        const up = await b.sendFiles('carol@localhost', ['/x/a.txt', '/x/b.pdf']);
        expect(up).toHaveLength(2);
        expect(up.every((id) => events.some((e) => e.type === 'transfer_offered' && e.id === id && e.files === null))).toBe(true);
        // One file to Bob is one file.
        const [one] = await b.sendFiles('bob@localhost', ['/x/c.txt']);
        expect(events.find((e) => e.type === 'transfer_offered' && e.id === one)).toMatchObject({ files: null });
      } finally {
        b.dispose();
        vi.useRealTimers();
      }
    });

    it('seeds the history with a folder from Carol, one row opening to its verified files', async () => {
      const b = make();
      const rows = await b.history({});
      const wedding = rows.find((r) => r.file_name === 'wedding-photos')!;
      expect(wedding).toMatchObject({ files: 36, parent: null, state: 'completed', verified: 'sha256', local_path: '/home/alice/Downloads/wedding-photos' });
      expect(wedding.actions).toMatchObject({ open: true, show: true, remove: true });
      const files = await b.history({ parent: wedding.id });
      expect(files).toHaveLength(36);
      expect(files.every((f) => f.state === 'completed' && f.verified === 'sha256')).toBe(true);
      // Filters apply to the rows: a file of the batch is not found beside it.
      expect(await b.history({ nameContains: files[0]!.file_name })).toEqual([]);
      b.dispose();
    });
  });
});
