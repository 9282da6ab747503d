// Hand-written TypeScript mirror of the Rust contract types.
//
// TEMPORARY: this file will be replaced by types generated from the Rust definitions
// (ts-rs / tauri-specta) that the shell exports into `src/bindings/`. Until then keep it
// in step with:
//   crates/skiff-engine/src/event.rs  (Event, Contact, ResourcePresence)
//   crates/skiff-engine/src/store.rs  (TransferRecord, Direction, TransferState, Route)
//   src-tauri/ commands              (SignInArgs, Account, Settings, HistoryQuery, ...)
// Field names are exactly the serde output (snake_case for engine structs).

/** `show` of a resource: `available`, `away`, `chat`, `dnd` or `xa`. */
export type Show = 'available' | 'away' | 'chat' | 'dnd' | 'xa';

/** One online resource of a contact (event.rs `ResourcePresence`). */
export interface ResourcePresence {
  resource: string;
  show: Show | string;
  status: string | null;
  priority: number;
}

/** One roster entry (event.rs `Contact`). The `roster()` command adds `resources`. */
export interface RosterContact {
  jid: string;
  name: string | null;
  /** `none`, `to`, `from` or `both`. */
  subscription: string;
  pending_out: boolean;
  groups: string[];
}

/** A contact as returned by the `roster()` command: the roster entry plus its online resources. */
export interface Contact extends RosterContact {
  resources: ResourcePresence[];
}

export type Direction = 'incoming' | 'outgoing';

export type TransferState =
  | 'offered'
  | 'accepted'
  | 'active'
  | 'completed'
  | 'failed'
  | 'rejected'
  | 'cancelled'
  | 'interrupted';

export const TRANSFER_STATES: readonly TransferState[] = [
  'offered',
  'accepted',
  'active',
  'completed',
  'failed',
  'rejected',
  'cancelled',
  'interrupted',
];

/** How the bytes travel (store.rs `Route`, kebab-case). */
export type Route = 's5b-direct' | 's5b-proxy' | 'ibb' | 'oob' | 'upload';

/** The engine's events (event.rs `Event`), tagged by `type` in snake_case. */
export type EngineEvent =
  | { type: 'connecting'; attempt: number }
  | { type: 'online'; jid: string; tls: boolean; mechanism: string }
  | { type: 'offline'; reason: string; will_retry: boolean }
  | { type: 'reconnecting'; attempt: number; delay_ms: number }
  | { type: 'roster'; contacts: RosterContact[] }
  | { type: 'contact_changed'; contact: RosterContact }
  | { type: 'contact_removed'; jid: string }
  | {
      type: 'presence';
      jid: string;
      resource: string;
      available: boolean;
      show: string;
      status: string | null;
      priority: number;
    }
  | { type: 'subscription_request'; from: string }
  | {
      type: 'transfer_offered';
      id: number;
      direction: Direction;
      peer: string;
      name: string;
      size: number;
      description: string | null;
      resume_from: number;
    }
  | { type: 'transfer_started'; id: number; route: Route | string; streamhost: string | null; offset: number }
  | { type: 'transfer_progress'; id: number; bytes: number; total: number; bytes_per_sec: number }
  | {
      type: 'transfer_completed';
      id: number;
      name: string;
      path: string;
      size: number;
      bytes: number;
      sha256: string;
      route: Route | string;
      seconds: number;
    }
  | { type: 'transfer_failed'; id: number; name: string; error: string; resumable: boolean }
  | { type: 'transfer_notice'; id: number; message: string }
  | { type: 'transfer_rejected'; id: number; name: string; reason: string }
  | { type: 'fatal'; code: string; message: string };

export type EventType = EngineEvent['type'];

/** One transfer as stored in the history (store.rs `TransferRecord`). */
export interface TransferRecord {
  id: number;
  sid: string;
  direction: Direction;
  account: string;
  /** Full JID of the peer used by the current attempt. */
  peer_jid: string;
  file_name: string;
  /** Source file for outgoing; the `.part` or final file for incoming. */
  local_path: string | null;
  size: number;
  md5: string | null;
  sha256: string | null;
  date: string | null;
  description: string | null;
  route: Route | null;
  streamhost: string | null;
  state: TransferState;
  bytes_done: number;
  error: string | null;
  /** Unix milliseconds. */
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  offset: number;
  attempts: number;
}

// ---- Shell command payloads (src-tauri) ----

export type TlsMode = 'starttls' | 'direct' | 'plaintext';

export interface SignInArgs {
  jid: string;
  password: string;
  /** `host:port`; omitted = DNS SRV / the JID's domain. */
  server?: string;
  tls: TlsMode;
  caFile?: string;
  remember: boolean;
}

export interface Account {
  jid: string;
  online: boolean;
  /** The shell runs against the local demo server. */
  demo: boolean;
}

export interface HistoryQuery {
  peer?: string;
  direction?: Direction;
  state?: TransferState;
  nameContains?: string;
  sinceMs?: number;
  untilMs?: number;
  limit?: number;
}

export type Method = 's5b' | 'ibb';
export type Language = 'en' | 'zh-CN';
export type Theme = 'system' | 'light' | 'dark';

export interface Settings {
  downloadDir: string;
  /** '' = discover the server's proxy. */
  proxyJid: string;
  /** Allowed stream methods in preference order. */
  methods: Method[];
  /** 0 = always ask. */
  autoAcceptMaxBytes: number;
  language: Language;
  theme: Theme;
  /** Addresses our own SOCKS5 streamhost offers; empty = every usable local address. */
  streamhostAddrs: string[];
}

/** What every failed command rejects with. */
export interface CommandError {
  code: string;
  message: string;
}

/** `getCurrentWebview().onDragDropEvent` payloads, reduced to what the UI uses. */
export type DragDropEvent =
  | { type: 'enter'; paths: string[]; position: { x: number; y: number } }
  | { type: 'over'; position: { x: number; y: number } }
  | { type: 'drop'; paths: string[]; position: { x: number; y: number } }
  | { type: 'leave' };
