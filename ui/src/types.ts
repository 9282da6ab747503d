// The UI's types. Everything that crosses the bridge to the shell (events, contacts,
// transfer records, settings, account, errors, command arguments) is generated from the
// Rust types into `./bindings/` by `cargo test -p skiff-desktop` and only re-exported
// here; this file adds the UI's own types and a few names.

import type { ErrorCode, Event, TransferState } from './bindings';

export type {
  AcceptArgs,
  AccountView,
  AppError,
  CertificateInfo,
  Contact,
  ContactView,
  Direction,
  ErrorCode,
  FatalCode,
  HistoryEntry,
  HistoryQuery,
  IdArgs,
  Language,
  Method,
  Protocol,
  RecordActions,
  RememberedView,
  ResourcePresence,
  Route,
  Settings,
  SignedIn,
  SignInArgs,
  StrangerPolicy,
  Theme,
  TlsMode,
  FailReason,
  TransferRecord,
  TransferState,
  Untrusted,
  UntrustedReason,
  Verification,
} from './bindings';

/** An engine event (the payload of `skiff://event`); named apart from the DOM's `Event`. */
export type EngineEvent = Event;

/** Every transfer state, in the order the history filter lists them. */
export const TRANSFER_STATES = [
  'offered',
  'accepted',
  'active',
  'completed',
  'failed',
  'rejected',
  'cancelled',
  'interrupted',
] as const satisfies readonly TransferState[];

// Fails to compile when the engine gains a state the list above lacks.
type MissingStates = Exclude<TransferState, (typeof TRANSFER_STATES)[number]>;
const allStatesListed: [MissingStates] extends [never] ? true : MissingStates = true;
void allStatesListed;

/** Every error code a command can reject with (`AppError.code`). */
export const ERROR_CODES = [
  'auth-failed', 'tls', 'connect', 'timeout', 'resolve', 'ca-file', 'plaintext-refused',
  'certificate-untrusted', 'certificate-changed', 'plain-downgrade', 'server-auth-invalid',
  'conflict', 'protocol', 'offline', 'contact-offline', 'no-file-transfer', 'not-found',
  'not-pending', 'already-active', 'not-resumable', 'invalid', 'io', 'store', 'internal', 'demo',
] as const satisfies readonly ErrorCode[];

// Fails to compile when the shell gains a code the list above lacks.
type MissingCodes = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>;
const allCodesListed: [MissingCodes] extends [never] ? true : MissingCodes = true;
void allCodesListed;

/** Whether `c` is one of the shell's error codes. */
export function isErrorCode(c: unknown): c is ErrorCode {
  return typeof c === 'string' && (ERROR_CODES as readonly string[]).includes(c);
}

/** `getCurrentWebview().onDragDropEvent` payloads, reduced to what the UI uses. */
export type DragDropEvent =
  | { type: 'enter'; paths: string[]; position: { x: number; y: number } }
  | { type: 'over'; position: { x: number; y: number } }
  | { type: 'drop'; paths: string[]; position: { x: number; y: number } }
  | { type: 'leave' };
