// The one seam between the UI and the rest of Skiff.
//
// Every method maps to a Tauri command of the shell (the generated wrapper of the same
// name in `bindings/commands.ts`; its argument and result types are generated from the
// Rust ones). Events come from one subscription. Nothing else in the UI talks to Tauri: views get a `Backend`.

import type {
  AccountView,
  AppError,
  ContactView,
  DragDropEvent,
  EngineEvent,
  HistoryEntry,
  HistoryQuery,
  RememberedView,
  Settings,
  SignedIn,
  SignInArgs,
  Untrusted,
} from './types';
import { isErrorCode } from './types';

export type Unlisten = () => void;

export interface Backend {
  /**
   * `sign_in`: resolves with the bound bare JID and, when "Remember password" was asked
   * but no keyring could keep it, `password_note` (one sentence for the user; signed in
   * all the same). Rejects with an AppError (`auth-failed`, `tls`, ...).
   */
  signIn(args: SignInArgs): Promise<SignedIn>;
  /** `sign_out`. */
  signOut(): Promise<void>;
  /** `account`: the signed-in account, or null to show the sign-in screen. */
  account(): Promise<AccountView | null>;
  /**
   * `remembered_account`: what "Remember me" kept (all but the password), or null; with
   * `passwordSaved` (the OS keyring holds its password) and `signInError` (why signing
   * in by itself at start failed).
   */
  rememberedAccount(): Promise<RememberedView | null>;
  /** `roster`: contacts with their online resources. */
  roster(): Promise<ContactView[]>;
  /**
   * `send_files`: the ids started. Several files (a folder's, or several chosen) go as
   * one batch, one id, when the contact's client takes batches; else one id per file
   * (a folder sends every file in it).
   */
  sendFiles(to: string, paths: string[]): Promise<number[]>;
  /** `accept`: `dir` overrides the download folder for this file. */
  accept(id: number, dir?: string): Promise<void>;
  /** `reject`. */
  reject(id: number): Promise<void>;
  /** `cancel`. */
  cancel(id: number): Promise<void>;
  /** `resume`: offer an interrupted transfer again; only the missing part travels. Resolves with its id. */
  resume(id: number): Promise<number>;
  /**
   * `retry`: resume where possible, else send the file afresh (declined, cancelled,
   * completed, or not resumable). Resolves with the id of the transfer that runs now,
   * a new one when sent afresh.
   */
  retry(id: number): Promise<number>;
  /**
   * `upload_instead`: send a failed outgoing transfer by HTTP File Upload (offered when
   * its `transfer_failed` said `upload_fallback`). Resolves with its id (the same one);
   * the transfer's events follow, with the route `upload`.
   */
  uploadInstead(id: number): Promise<number>;
  /**
   * `history`: the transfers matching `query`, newest first, each with the `actions`
   * the engine allows on it now (the rows offer exactly these). A batch is one record
   * (`files` set); `{ parent: id }` lists the files of batch `id` instead.
   */
  history(query: HistoryQuery): Promise<HistoryEntry[]>;
  /** `remove_from_history`. */
  removeFromHistory(id: number): Promise<void>;
  /** `open_file`. */
  openFile(id: number): Promise<void>;
  /** `show_in_folder`. */
  showInFolder(id: number): Promise<void>;
  /** `get_settings`. */
  getSettings(): Promise<Settings>;
  /** `set_settings`. */
  setSettings(settings: Settings): Promise<void>;
  /** `pick_files`: native open dialog; [] when cancelled. */
  pickFiles(): Promise<string[]>;
  /** `pick_folder`: native folder dialog; null when cancelled. */
  pickFolder(): Promise<string | null>;
  /**
   * `take_pending_files`: the files and folders a launch handed to the app to send (its
   * command line, "Open with Skiff", or a second launch the running app received).
   * Taken once: the shell's list empties.
   */
  takePendingFiles(): Promise<string[]>;
  /** The `skiff://event` stream: one engine Event per call. */
  onEvent(handler: (event: EngineEvent) => void): Promise<Unlisten>;
  /** Files dragged over / dropped on the window (positions in physical pixels). */
  onDragDrop(handler: (event: DragDropEvent) => void): Promise<Unlisten>;
  /** `skiff://focus-offer`: "Open" on an offer notification; shows that offer first. */
  onFocusOffer(handler: (id: number) => void): Promise<Unlisten>;
  /**
   * `skiff://open-files`: a launch handed files over while the app runs (the shell
   * focused the window); the payload is the whole pending list, still to be taken
   * with `takePendingFiles`.
   */
  onOpenFiles(handler: (paths: string[]) => void): Promise<Unlisten>;
}

/**
 * Normalises whatever a command rejected with into `{ code, message }`, keeping
 * `untrusted` (the refused server certificate of `certificate-untrusted` /
 * `certificate-changed`) when it is there.
 */
export function toCommandError(e: unknown): AppError {
  if (e && typeof e === 'object' && 'message' in e) {
    const o = e as { code?: unknown; message?: unknown; untrusted?: unknown };
    const err: AppError = {
      // Anything that is not the shell's AppError (a bridge failure) is "internal".
      code: isErrorCode(o.code) ? o.code : 'internal',
      message: String(o.message),
    };
    if (isUntrusted(o.untrusted)) err.untrusted = o.untrusted;
    return err;
  }
  if (typeof e === 'string') return { code: 'internal', message: e };
  return { code: 'internal', message: String(e) };
}

/** Enough of an `Untrusted` to show it: a certificate with its fingerprint. */
function isUntrusted(u: unknown): u is Untrusted {
  if (!u || typeof u !== 'object') return false;
  const c = (u as { certificate?: unknown }).certificate;
  return !!c && typeof c === 'object' && typeof (c as { fingerprint?: unknown }).fingerprint === 'string';
}

/** True when running inside the Tauri webview. */
export function inTauri(w: unknown = globalThis): boolean {
  return !!w && typeof w === 'object' && '__TAURI_INTERNALS__' in w;
}

/** `?mock` forces the in-memory backend; so does a plain browser. */
export function wantsMock(search: string, tauri: boolean): boolean {
  return new URLSearchParams(search).has('mock') || !tauri;
}

export async function createBackend(search: string = location.search): Promise<Backend> {
  if (wantsMock(search, inTauri())) {
    const { MockBackend, mockOptionsFromQuery } = await import('./mock-backend');
    return new MockBackend(mockOptionsFromQuery(search));
  }
  const { TauriBackend } = await import('./tauri-backend');
  return new TauriBackend();
}
