// The controller: wires the backend, the store and the views together.
//
// Startup: subscribe to events, read settings (language, theme), ask `account()`; then
// either the sign-in screen or the main window with `roster()` and recent `history()`.
// Signed out, the form shows the remembered account, and why the shell could not sign
// in by itself with the kept password (`signInError`). A password the keyring could not
// keep is said in a notice over the main window (`password_note`), which stays until
// dismissed and blocks nothing.
// After that only events change the state; the store renders at most ~10 times a second.
// Files a launch handed over ("Open with Skiff", a second launch) wait in the shell until
// the main window shows; then the "Send N files" dialog asks for the contact.

import { toCommandError, type Backend } from './backend';
import { contactAt, toCssPoint } from './dnd';
import { h, isTyping } from './dom';
import { bareJid } from './format';
import { applyI18n, isLanguage, language, onLanguageChange, pickLanguage, setLanguage, t, tn } from './i18n';
import {
  clearFinished,
  displayName,
  focusOffer,
  isFinal,
  isLive,
  seedTransfers,
  setContacts,
  Store,
  type AppState,
  type Dirty,
  type OfferPolicy,
} from './store';
import type { AppError, DragDropEvent, EngineEvent, HistoryEntry, Language, Settings, Theme } from './types';
import { CertificateDialog } from './views/certificate';
import { ContactsPane } from './views/contacts';
import { Header, type ViewName } from './views/header';
import { HistoryView } from './views/history';
import { OfferDialog } from './views/offer';
import { SendToDialog } from './views/sendto';
import { SettingsDialog } from './views/settings';
import { describeError, describePasswordNote, SignInView } from './views/signin';
import { Toasts } from './views/toasts';
import { TransfersPane } from './views/transfers';

/** Transfers from the last day (and unfinished ones) start on the transfers pane. */
export const RECENT_MS = 24 * 3600 * 1000;

export const DEFAULT_SETTINGS: Settings = {
  downloadDir: '',
  proxyJid: null,
  methods: ['s5b', 'ibb'],
  autoAcceptMaxBytes: 0,
  language: 'en',
  theme: 'system',
  streamhostAddrs: [],
  allowUpload: true,
  serveHttp: false,
  strangers: 'ask',
};

const darkScheme: MediaQueryList | undefined =
  typeof window !== 'undefined' && typeof window.matchMedia === 'function'
    ? window.matchMedia('(prefers-color-scheme: dark)')
    : undefined;
let followSystem = false;
darkScheme?.addEventListener?.('change', () => {
  if (followSystem) applyTheme('system');
});

/** Sets `data-theme` to `light` or `dark`; `system` follows the OS (live). */
export function applyTheme(theme: Theme, root: HTMLElement = document.documentElement): void {
  followSystem = theme === 'system';
  root.dataset.theme = followSystem ? (darkScheme?.matches ? 'dark' : 'light') : theme;
}

/** The offer policy that mirrors the shell's auto-accept: contacts, up to the size. */
export function autoAcceptPolicy(settings: () => Settings): OfferPolicy {
  return (offer, state) => {
    const max = settings().autoAcceptMaxBytes;
    return !(max > 0 && offer.size <= max && state.contacts.has(bareJid(offer.peer)));
  };
}

/**
 * The toast after `send_files`: "Sending the folder photos to Bob" when one folder went
 * as one batch (its offer already seen), else "Sending N files to Bob", N the offers
 * made or, when they are fewer (several files offered together as one batch), the
 * things chosen.
 */
export function sendingText(ids: number[], paths: string[], state: AppState, name: string): string {
  const only = ids.length === 1 ? state.transfers.get(ids[0]!) : undefined;
  if (only?.files != null && paths.length === 1) return t('toast.sendingFolder', { folder: only.name, name });
  return tn('toast.sending', Math.max(ids.length, paths.length), { name });
}

export class App {
  readonly store = new Store();
  private settings: Settings = { ...DEFAULT_SETTINGS };
  private accountJid = '';
  private demo = false;
  private signedIn = false;
  private view: ViewName = 'transfers';
  private readonly signin: SignInView;
  private readonly shell: HTMLElement;
  private readonly header: Header;
  private readonly contacts: ContactsPane;
  private readonly transfers: TransfersPane;
  private readonly history: HistoryView;
  private readonly offer: OfferDialog;
  private readonly settingsDialog: SettingsDialog;
  private readonly certificateDialog: CertificateDialog;
  private readonly sendToDialog: SendToDialog;
  /** True once the main window shows with its contacts loaded (pending files are taken then). */
  private mainReady = false;
  /** Files of a "Send" dialog closed by signing out: offered again after the next sign-in. */
  private heldFiles: string[] = [];
  private readonly toasts = new Toasts();
  private readonly transfersView: HTMLElement;
  private readonly historyView: HTMLElement;
  private readonly dragHint: HTMLElement;
  private dragPaths: string[] = [];
  private countdown: ReturnType<typeof setInterval> | undefined;
  private historyTimer: ReturnType<typeof setTimeout> | undefined;
  private firstRender = true;

  constructor(
    root: HTMLElement,
    private readonly backend: Backend,
    private readonly params = new URLSearchParams(location.search),
  ) {
    const b = backend;
    this.store.policy = autoAcceptPolicy(() => this.settings);

    this.signin = new SignInView({
      signIn: async (args) => {
        const r = await b.signIn(args);
        // The screens switch at once; the notice shows while the contacts load.
        const main = this.enterMain(r.jid, false);
        if (r.password_note) this.showPasswordNote(r.password_note);
        await main;
      },
      setLanguage: (lang) => this.setLanguage(lang),
      language: () => language(),
      confirmCertificate: (u) => this.certificateDialog.ask(u),
    });
    this.header = new Header({
      show: (v) => this.show(v),
      settings: () => this.openSettings(),
      signOut: () => void this.signOut(),
    });
    this.contacts = new ContactsPane({ sendFile: (jid) => void this.pickAndSend(jid) });
    this.transfers = new TransfersPane({
      cancel: (id) => void this.run(b.cancel(id)),
      accept: (id) =>
        this.store.update((s, d) => {
          s.offers = [id, ...s.offers.filter((x) => x !== id)];
          d.offers = true;
        }),
      decline: (id) => void this.run(b.reject(id)),
      open: (id) => void this.run(b.openFile(id)),
      showInFolder: (id) => void this.run(b.showInFolder(id)),
      resume: (id) => void this.run(b.resume(id)),
      retry: (id) => void this.run(b.retry(id)),
      uploadInstead: (id) => void this.run(b.uploadInstead(id)),
      dismiss: (id) =>
        this.store.update((s, d) => {
          s.transfers.delete(id);
          s.order = s.order.filter((x) => x !== id);
          d.order = true;
        }),
      clearFinished: () => this.store.update((s, d) => void clearFinished(s, d)),
      listFiles: (id) => b.history({ parent: id }),
    });
    this.history = new HistoryView({
      load: (q) => b.history(q),
      open: (r) => void this.run(b.openFile(r.id)),
      showInFolder: (r) => void this.run(b.showInFolder(r.id)),
      resend: (r) => void this.sendTo(bareJid(r.peer_jid), [r.local_path!]),
      resume: (r) => void this.run(b.resume(r.id)),
      uploadInstead: (r) => void this.run(b.uploadInstead(r.id)),
      remove: async (r) => {
        const ok = await this.run(b.removeFromHistory(r.id));
        if (ok) this.toasts.show(t('history.removed', { name: r.file_name }));
        return ok;
      },
      isLive: (id) => {
        const v = this.store.state.transfers.get(id);
        return !!v && isLive(v.state);
      },
    });

    this.transfersView = h('div', { class: 'main-view', id: 'view-transfers', role: 'tabpanel', 'aria-labelledby': 'tab-transfers' }, this.contacts.el, this.transfers.el);
    this.historyView = h('div', { class: 'history-wrap', id: 'view-history', role: 'tabpanel', 'aria-labelledby': 'tab-history', hidden: true }, this.history.el);
    this.dragHint = h('div', { class: 'drag-hint', hidden: true, 'aria-hidden': 'true', testid: 'drag-hint' }, h('span', { i18n: 'drop.hint' }));
    this.shell = h('div', { class: 'shell', hidden: true }, this.header.el, h('div', { class: 'views' }, this.transfersView, this.historyView), this.dragHint);
    const modals = h('div', { class: 'modals' });
    root.replaceChildren(this.signin.el, this.shell, modals, this.toasts.el);
    this.signin.el.hidden = true;
    const background = () => [this.signin.el, this.shell];
    this.certificateDialog = new CertificateDialog(modals, background);
    // Sent exactly as if dropped on that contact.
    this.sendToDialog = new SendToDialog(modals, background, { send: (jid, paths) => void this.sendTo(jid, paths) });
    this.settingsDialog = new SettingsDialog(modals, background, {
      pickFolder: () => b.pickFolder(),
      save: async (s) => {
        const ok = await this.run(b.setSettings(s));
        if (ok) {
          this.settings = s;
          this.applySettings();
          this.toasts.show(t('settings.saved'));
        }
        return ok;
      },
      preview: (lang, theme) => {
        this.setLanguage(lang);
        applyTheme(theme);
      },
    });
    this.offer = new OfferDialog(modals, background, {
      accept: async (id, dir) => {
        const ok = await this.run(b.accept(id, dir), true);
        this.doneWithOffer(id, ok);
      },
      decline: async (id) => {
        const ok = await this.run(b.reject(id), true);
        this.doneWithOffer(id, ok);
      },
      pickFolder: () => b.pickFolder(),
      defaultDir: () => this.settings.downloadDir,
      listFiles: (id) => b.history({ parent: id }),
    });

    this.store.subscribe((d) => this.render(d));
    onLanguageChange(() => this.relabel());
    document.addEventListener('keydown', (e) => this.onKey(e));
  }

  async start(): Promise<void> {
    await this.backend.onEvent((e) => this.onEvent(e));
    await this.backend.onDragDrop((e) => this.onDrag(e));
    // "Open" on a notification: the window came forward; show that offer first.
    await this.backend.onFocusOffer((id) => {
      if (this.view !== 'transfers') this.show('transfers');
      this.store.update((s, d) => focusOffer(s, id, d));
    });
    // A launch handed files over while running. Signed out (or still loading), the shell
    // keeps them: entering the main window takes them.
    await this.backend.onOpenFiles((paths) => {
      if (this.mainReady) void this.takePendingFiles(paths);
    });
    try {
      this.settings = { ...DEFAULT_SETTINGS, ...(await this.backend.getSettings()) };
    } catch {
      this.settings = { ...DEFAULT_SETTINGS, language: pickLanguage(navigator.languages ?? []) };
    }
    if (!isLanguage(this.settings.language)) this.settings.language = 'en';
    this.applySettings();
    let account = null;
    try {
      account = await this.backend.account();
    } catch (e) {
      this.toasts.show(describeError(toCommandError(e)).title, 'error');
    }
    if (account) {
      this.demo = account.demo;
      await this.enterMain(account.jid, account.online);
    } else {
      let startError: AppError | null = null;
      try {
        const r = await this.backend.rememberedAccount();
        if (r) {
          this.signin.prefillAccount(r);
          startError = r.signInError;
        }
      } catch {
        // Nothing remembered that we can read: an empty form.
      }
      this.showSignIn(startError);
    }
  }

  // ---- screens ----

  private showSignIn(error: AppError | null): void {
    this.signedIn = false;
    this.mainReady = false;
    if (this.sendToDialog.isOpen) this.heldFiles = [...this.heldFiles, ...this.sendToDialog.close()];
    this.shell.hidden = true;
    this.signin.el.hidden = false;
    this.signin.relabel();
    this.signin.showError(error);
    if (this.accountJid) this.signin.prefill(bareJid(this.accountJid));
    this.signin.focus();
    this.markReady();
  }

  private async enterMain(jid: string, online: boolean): Promise<void> {
    this.accountJid = jid;
    this.signedIn = true;
    this.signin.el.hidden = true;
    this.shell.hidden = false;
    this.store.update((s, d) => {
      if (s.connection.kind === 'signed-out' || s.connection.kind === 'connecting') {
        s.connection = online ? { kind: 'online', jid, tls: true, mechanism: '' } : { kind: 'connecting', attempt: 1 };
      }
      // Always: the `online` event may have come (and the header rendered) before
      // sign-in returned the account's address.
      d.connection = true;
      s.fatal = null;
    });
    const initial = this.params.get('view');
    this.show(initial === 'history' ? 'history' : 'transfers');
    const [roster, records] = await Promise.all([
      this.backend.roster().catch((e) => (this.toastError(e), [])),
      this.backend.history({ limit: 100 }).catch((e) => (this.toastError(e), [] as HistoryEntry[])),
    ]);
    const now = Date.now();
    this.store.update((s, d) => {
      setContacts(s, roster, d);
      seedTransfers(s, records.filter((r) => !isFinal(r.state) || now - r.created_at < RECENT_MS), d);
    });
    this.store.flush();
    if (initial === 'settings') this.openSettings();
    if (this.signedIn) {
      this.mainReady = true;
      await this.takePendingFiles();
    }
    this.markReady();
  }

  /**
   * Takes the files launches handed over and asks where to send them ("Send N files"),
   * with those held from before a sign-out. `announced` (the event's list) stands in
   * when the shell cannot be asked.
   */
  private async takePendingFiles(announced: string[] = []): Promise<void> {
    let paths: string[];
    try {
      paths = await this.backend.takePendingFiles();
    } catch (e) {
      this.toastError(e);
      paths = announced;
    }
    if (!this.mainReady) {
      // Signed out meanwhile: offered after the next sign-in.
      this.heldFiles = [...this.heldFiles, ...paths];
      return;
    }
    const all = [...this.heldFiles, ...paths];
    this.heldFiles = [];
    if (all.length) this.sendToDialog.add(all, this.store.state);
  }

  /** Signed in, but the keyring could not keep the password: said until dismissed. */
  private showPasswordNote(note: string): void {
    const d = describePasswordNote(note);
    this.toasts.show(d.detail, 'warn', { title: d.title, testid: 'password-note', timeoutMs: 0 });
  }

  private markReady(): void {
    if (document.body.dataset.ready !== '1') {
      // After the frame that shows the first data.
      requestAnimationFrame(() => (document.body.dataset.ready = '1'));
    }
  }

  show(view: ViewName): void {
    this.view = view;
    this.header.setView(view);
    this.transfersView.hidden = view !== 'transfers';
    this.historyView.hidden = view !== 'history';
    if (view === 'history') {
      this.history.setContext(this.store.state);
      void this.history.refresh();
    }
  }

  private openSettings(): void {
    if (!this.settingsDialog.isOpen) this.settingsDialog.open(this.settings);
  }

  private async signOut(): Promise<void> {
    await this.run(this.backend.signOut());
    this.store.reset();
    this.store.flush();
    this.showSignIn(null);
  }

  // ---- settings, language, theme ----

  private applySettings(): void {
    this.setLanguage(this.settings.language);
    applyTheme(this.settings.theme);
    // Offline contacts take files by HTTP upload only when the settings allow it.
    this.contacts.setUploadWhenOffline(this.settings.allowUpload);
    this.sendToDialog.setUploadWhenOffline(this.settings.allowUpload);
  }

  private setLanguage(lang: Language): void {
    setLanguage(lang);
  }

  private relabel(): void {
    applyI18n(document.body);
    this.signin.relabel();
    this.history.relabel();
    this.settingsDialog.relabel();
    this.certificateDialog.relabel();
    this.sendToDialog.relabel();
    this.store.invalidateAll();
  }

  // ---- events ----

  private onEvent(e: EngineEvent): void {
    this.store.dispatch(e);
    switch (e.type) {
      case 'fatal':
        if (this.signedIn) {
          this.store.reset();
          this.store.flush();
          this.showSignIn({ code: e.code, message: e.message });
        } else {
          this.signin.showError({ code: e.code, message: e.message });
        }
        break;
      case 'subscription_request':
        this.toasts.show(t('toast.subscription', { jid: e.from }));
        break;
      case 'offers_refused':
        // One line per burst: the engine already coalesced the refusals.
        this.toasts.show(tn('toast.offersRefused', e.count, { jid: e.peer }), 'error');
        break;
      case 'batch_progress':
        // An opened batch row lists its files with their states: it reloads them.
        if (this.view === 'history' && this.signedIn) this.history.batchChanged(e.id);
        break;
      case 'transfer_completed':
      case 'transfer_failed':
      case 'transfer_rejected':
      case 'transfer_offered':
        if (this.view === 'history' && this.signedIn) {
          clearTimeout(this.historyTimer);
          this.historyTimer = setTimeout(() => void this.history.refresh(), 400);
        }
        break;
    }
  }

  private render(d: Dirty): void {
    const s = this.store.state;
    const all = this.firstRender;
    this.firstRender = false;
    if (d.connection || all) {
      this.header.render(s.connection, bareJid(this.accountJid), this.demo, Date.now());
      this.syncCountdown();
    }
    if (d.contacts || all) {
      this.contacts.render(s);
      this.sendToDialog.render(s);
      if (this.view === 'history') this.history.setContext(s);
    }
    this.transfers.render(s, d, all);
    if (d.offers || all) this.offer.render(s);
  }

  /** While reconnecting, the header counts down once a second (a local timer, no polling). */
  private syncCountdown(): void {
    const c = this.store.state.connection;
    if (c.kind === 'reconnecting' && this.countdown === undefined) {
      this.countdown = setInterval(() => {
        const now = this.store.state.connection;
        this.header.render(now, bareJid(this.accountJid), this.demo, Date.now());
        if (now.kind !== 'reconnecting' || now.at < Date.now() - 1000) this.syncCountdown();
      }, 1000);
    } else if (c.kind !== 'reconnecting' && this.countdown !== undefined) {
      clearInterval(this.countdown);
      this.countdown = undefined;
    }
  }

  private doneWithOffer(id: number, ok: boolean | AppError): void {
    // Answered, or gone (e.g. the sender withdrew it): the next offer shows.
    if (ok === true || (typeof ok === 'object' && ok.code === 'not-found')) {
      this.store.update((s, d) => {
        s.offers = s.offers.filter((x) => x !== id);
        d.offers = true;
      });
      this.store.flush();
    }
  }

  // ---- sending ----

  private async pickAndSend(jid: string): Promise<void> {
    let paths: string[] = [];
    try {
      paths = await this.backend.pickFiles();
    } catch (e) {
      this.toastError(e);
    }
    if (paths.length) await this.sendTo(jid, paths);
  }

  async sendTo(jid: string, paths: string[]): Promise<void> {
    try {
      const ids = await this.backend.sendFiles(jid, paths);
      const c = this.store.state.contacts.get(jid);
      this.toasts.show(sendingText(ids, paths, this.store.state, c ? displayName(c) : jid));
    } catch (e) {
      this.toastError(e);
    }
  }

  // ---- drag and drop ----

  private onDrag(e: DragDropEvent): void {
    if (!this.signedIn) return;
    if (e.type === 'leave') {
      this.endDrag();
      return;
    }
    if (e.type === 'enter') {
      this.dragPaths = e.paths;
      if (this.view !== 'transfers') this.show('transfers');
    }
    this.dragHint.hidden = false;
    document.body.classList.add('is-dragging');
    const jid = contactAt(this.contacts.list, toCssPoint(e.position, window.devicePixelRatio || 1));
    this.contacts.setDropTarget(jid);
    this.setDragHint(jid && this.contacts.uploadsTo(jid) ? 'drop.uploadHint' : 'drop.hint');
    if (e.type === 'drop') {
      const paths = e.paths.length ? e.paths : this.dragPaths;
      this.endDrag();
      if (!paths.length) return;
      if (jid) void this.sendTo(jid, paths);
      else this.toasts.show(t('toast.dropOnContact'));
    }
  }

  /** The line at the bottom while dragging: where the files will go. */
  private setDragHint(key: 'drop.hint' | 'drop.uploadHint'): void {
    const span = this.dragHint.firstElementChild as HTMLElement;
    if (span.dataset.i18n === key) return;
    span.dataset.i18n = key; // applyI18n keeps it translated
    span.textContent = t(key);
    this.dragHint.classList.toggle('is-upload', key === 'drop.uploadHint');
  }

  private endDrag(): void {
    this.dragPaths = [];
    this.dragHint.hidden = true;
    this.setDragHint('drop.hint');
    document.body.classList.remove('is-dragging');
    this.contacts.setDropTarget(null);
  }

  // ---- keyboard ----

  private onKey(e: KeyboardEvent): void {
    if (!this.signedIn || this.offer.isOpen || this.settingsDialog.isOpen || this.sendToDialog.isOpen) return;
    if (e.key === '/' && !isTyping(e.target) && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      if (this.view !== 'transfers') this.show('transfers');
      this.contacts.focusSearch();
    } else if (e.key === ',' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      this.openSettings();
    }
  }

  // ---- errors ----

  /** Runs a command; a failure becomes an error toast. True on success, else the error. */
  private async run(p: Promise<unknown>, returnError?: false): Promise<boolean>;
  private async run(p: Promise<unknown>, returnError: true): Promise<true | AppError>;
  private async run(p: Promise<unknown>, returnError = false): Promise<boolean | AppError> {
    try {
      await p;
      return true;
    } catch (e) {
      const err = toCommandError(e);
      this.toastError(err);
      return returnError ? err : false;
    }
  }

  private toastError(e: unknown): void {
    const d = describeError(toCommandError(e));
    this.toasts.show(d.detail ? `${d.title} ${d.detail}` : d.title, 'error');
  }
}

export async function start(root: HTMLElement, backend: Backend): Promise<App> {
  const app = new App(root, backend);
  await app.start();
  return app;
}
