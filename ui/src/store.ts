// Application state, driven only by engine events (plus the initial loads).
//
// `applyEvent` is the reducer: it mutates the state in place (cheap with 100 transfers x
// many progress events) and records what changed in `Dirty`, so the renderer touches
// only the cards and panes that changed. Progress is thereby coalesced per transfer:
// a thousand progress events between two frames cost one card update.

import { bareJid } from './format';
import type {
  Contact,
  ContactView,
  Direction,
  EngineEvent,
  Protocol,
  ResourcePresence,
  TransferRecord,
  TransferState,
  Verification,
} from './types';

export type Presence = 'available' | 'away' | 'dnd' | 'offline';

export type Connection =
  | { kind: 'signed-out' }
  | { kind: 'connecting'; attempt: number }
  | { kind: 'online'; jid: string; tls: boolean; mechanism: string }
  | { kind: 'offline'; reason: string; willRetry: boolean }
  | { kind: 'reconnecting'; attempt: number; at: number }
  /** The line dropped; the server keeps the session and it is being resumed: contacts,
   * transfers and offers stay as they are. */
  | { kind: 'resuming'; reason: string };

export interface TransferView {
  id: number;
  direction: Direction;
  /** Peer as the engine gave it (bare or full JID). */
  peer: string;
  name: string;
  size: number;
  description: string | null;
  state: TransferState;
  /** Bytes the receiver holds (includes the resumed offset). */
  bytes: number;
  total: number;
  bytesPerSec: number;
  route: string | null;
  /** The signalling that set it up (SI or Jingle); null for links, uploads, and before it started. */
  protocol: Protocol | null;
  streamhost: string | null;
  /** Where this attempt started (resume). */
  offset: number;
  path: string | null;
  error: string | null;
  resumable: boolean;
  /**
   * The failed outgoing transfer can be sent by HTTP upload instead (`upload_instead`):
   * from the `transfer_failed` event; cleared when the transfer runs again.
   */
  uploadFallback: boolean;
  /** Latest notices, oldest first, at most MAX_NOTICES. */
  notices: string[];
  /** Seconds the completed attempt took. */
  seconds: number | null;
  /**
   * How the completed transfer's content was checked (`none` before it completes, and
   * when it could not be: "received, not verified" / "sent, not confirmed").
   */
  verified: Verification;
  createdAt: number;
  finishedAt: number | null;
  /**
   * A batch (a folder, or several files offered together as one offer) of this many
   * files, or null for a single file. Its `name` is the folder's, `size` and the
   * progress are the files' together.
   */
  files: number | null;
  /**
   * Files of the batch verified and named so far (`batch_progress`); null when not
   * known (a single file, or a batch loaded from the history before it completed).
   */
  filesDone: number | null;
}

export const MAX_NOTICES = 3;

export interface AppState {
  connection: Connection;
  contacts: Map<string, ContactView>;
  transfers: Map<number, TransferView>;
  /** Transfer ids, newest first. */
  order: number[];
  /** Incoming offers waiting for the user, oldest first. */
  offers: number[];
  /** Why the session ended for good (`fatal` event), until the next sign-in. */
  fatal: { code: string; message: string } | null;
  subscriptionRequests: string[];
}

export interface Dirty {
  transfers: Set<number>;
  order: boolean;
  contacts: boolean;
  connection: boolean;
  offers: boolean;
  fatal: boolean;
}

export function emptyDirty(): Dirty {
  return { transfers: new Set(), order: false, contacts: false, connection: false, offers: false, fatal: false };
}

export function initialState(): AppState {
  return {
    connection: { kind: 'signed-out' },
    contacts: new Map(),
    transfers: new Map(),
    order: [],
    offers: [],
    fatal: null,
    subscriptionRequests: [],
  };
}

/** Decides whether an incoming offer needs the user (false: a policy answers it). */
export type OfferPolicy = (offer: TransferView, state: AppState) => boolean;

export const alwaysAsk: OfferPolicy = () => true;

/**
 * The engine's verification as the UI takes it. The wire spells SHA-256 `sha256` (the
 * store and the CLI say `sha-256`: both are taken); anything else, or nothing, is
 * `none`: the UI never claims a check it was not told about.
 */
export function asVerification(v: unknown): Verification {
  if (v === 'sha256' || v === 'sha-256') return 'sha256';
  if (v === 'md5') return 'md5';
  return 'none';
}

export function isFinal(state: TransferState): boolean {
  return state === 'completed' || state === 'failed' || state === 'rejected' || state === 'cancelled';
}

/** Running or about to: shows Cancel. */
export function isLive(state: TransferState): boolean {
  return state === 'offered' || state === 'accepted' || state === 'active';
}

function blankTransfer(id: number, now: number): TransferView {
  return {
    id,
    direction: 'outgoing',
    peer: '',
    name: '',
    size: 0,
    description: null,
    state: 'active',
    bytes: 0,
    total: 0,
    bytesPerSec: 0,
    route: null,
    protocol: null,
    streamhost: null,
    offset: 0,
    path: null,
    error: null,
    resumable: false,
    uploadFallback: false,
    notices: [],
    seconds: null,
    verified: 'none',
    createdAt: now,
    finishedAt: null,
    files: null,
    filesDone: null,
  };
}

/** A history record as a card (the initial load). */
export function transferFromRecord(r: TransferRecord): TransferView {
  // The record's times run from the offer (including the wait for the receiver's
  // answer), so they say nothing about how fast the data moved: no duration, no speed.
  const seconds = null;
  const resumable = r.state === 'interrupted' || (r.state === 'failed' && r.bytes_done > 0 && r.direction === 'outgoing');
  return {
    id: r.id,
    direction: r.direction,
    peer: r.peer_jid,
    name: r.file_name,
    size: r.size,
    description: r.description,
    state: r.state,
    bytes: r.state === 'completed' ? r.size : r.bytes_done,
    total: r.size,
    bytesPerSec: 0,
    route: r.route,
    protocol: r.protocol ?? null,
    streamhost: r.streamhost,
    offset: r.offset,
    path: r.local_path,
    error: r.error,
    resumable,
    // Only the failure event says whether an upload can take over.
    uploadFallback: false,
    notices: [],
    seconds,
    verified: r.state === 'completed' ? asVerification(r.verified) : 'none',
    createdAt: r.created_at,
    finishedAt: r.finished_at,
    files: r.files,
    // The record does not count the files done; a completed batch has them all.
    filesDone: r.files != null && r.state === 'completed' ? r.files : null,
  };
}

/** Adds history records the state does not know yet (events already seen win). */
export function seedTransfers(state: AppState, records: TransferRecord[], dirty: Dirty): void {
  let added = false;
  for (const r of records) {
    if (state.transfers.has(r.id)) continue;
    state.transfers.set(r.id, transferFromRecord(r));
    dirty.transfers.add(r.id);
    added = true;
  }
  if (added) {
    sortOrder(state);
    dirty.order = true;
  }
}

function sortOrder(state: AppState): void {
  state.order = [...state.transfers.values()]
    .sort((a, b) => b.createdAt - a.createdAt || b.id - a.id)
    .map((t) => t.id);
}

/** Removes finished cards from the transfers pane (the history keeps them). */
export function clearFinished(state: AppState, dirty: Dirty): number {
  let removed = 0;
  for (const [id, t] of state.transfers) {
    if (isFinal(t.state)) {
      state.transfers.delete(id);
      removed++;
    }
  }
  if (removed) {
    state.order = state.order.filter((id) => state.transfers.has(id));
    dirty.order = true;
  }
  return removed;
}

export function setContacts(state: AppState, contacts: ContactView[], dirty: Dirty): void {
  state.contacts = new Map(contacts.map((c) => [c.jid, { ...c, resources: [...(c.resources ?? [])] }]));
  dirty.contacts = true;
}

function upsertContact(state: AppState, c: Contact): void {
  const old = state.contacts.get(c.jid);
  state.contacts.set(c.jid, { ...c, resources: old?.resources ?? [] });
}

/** Puts waiting offer `id` first in line (a notification's "Open" asked for it). */
export function focusOffer(state: AppState, id: number, dirty: Dirty): void {
  const i = state.offers.indexOf(id);
  if (i > 0) {
    state.offers.splice(i, 1);
    state.offers.unshift(id);
    dirty.offers = true;
  }
}

function dropOffer(state: AppState, id: number, dirty: Dirty): void {
  const i = state.offers.indexOf(id);
  if (i >= 0) {
    state.offers.splice(i, 1);
    dirty.offers = true;
  }
}

function getOrCreate(state: AppState, id: number, now: number, dirty: Dirty): TransferView {
  let t = state.transfers.get(id);
  if (!t) {
    t = blankTransfer(id, now);
    t.name = `#${id}`;
    state.transfers.set(id, t);
    state.order.unshift(id);
    dirty.order = true;
  }
  return t;
}

/** The reducer: applies one engine event to `state`, noting what changed in `dirty`. */
export function applyEvent(
  state: AppState,
  e: EngineEvent,
  dirty: Dirty,
  now: number,
  policy: OfferPolicy = alwaysAsk,
): void {
  switch (e.type) {
    case 'connecting':
      // Attempts to resume an interrupted session show as "resuming" throughout.
      if (state.connection.kind === 'resuming') return;
      state.connection = { kind: 'connecting', attempt: e.attempt };
      dirty.connection = true;
      return;
    case 'interrupted':
      // Presence is kept: the session goes on if it is resumed.
      state.connection = { kind: 'resuming', reason: e.reason };
      dirty.connection = true;
      return;
    case 'resumed':
      state.connection = { kind: 'online', jid: e.jid, tls: e.tls, mechanism: e.mechanism };
      state.fatal = null;
      dirty.connection = true;
      return;
    case 'online':
      state.connection = { kind: 'online', jid: e.jid, tls: e.tls, mechanism: e.mechanism };
      state.fatal = null;
      dirty.connection = true;
      return;
    case 'offline':
      state.connection = { kind: 'offline', reason: e.reason, willRetry: e.will_retry };
      // Nobody is online while we are not.
      for (const c of state.contacts.values()) c.resources = [];
      dirty.connection = true;
      dirty.contacts = true;
      return;
    case 'reconnecting':
      if (state.connection.kind === 'resuming') return;
      state.connection = { kind: 'reconnecting', attempt: e.attempt, at: now + e.delay_ms };
      dirty.connection = true;
      return;
    case 'fatal':
      state.fatal = { code: e.code, message: e.message };
      dirty.fatal = true;
      return;
    case 'roster': {
      const old = state.contacts;
      state.contacts = new Map(
        e.contacts.map((c) => [c.jid, { ...c, resources: old.get(c.jid)?.resources ?? [] }]),
      );
      dirty.contacts = true;
      return;
    }
    case 'contact_changed':
      upsertContact(state, e.contact);
      dirty.contacts = true;
      return;
    case 'contact_removed':
      state.contacts.delete(e.jid);
      dirty.contacts = true;
      return;
    case 'presence': {
      const jid = bareJid(e.jid);
      const c = state.contacts.get(jid);
      if (!c) return; // Presence of someone not in the roster (or ourselves): not shown.
      const rest = c.resources.filter((r) => r.resource !== e.resource);
      if (e.available) rest.push({ resource: e.resource, show: e.show, status: e.status, priority: e.priority });
      c.resources = rest;
      dirty.contacts = true;
      return;
    }
    case 'subscription_request':
      if (!state.subscriptionRequests.includes(e.from)) state.subscriptionRequests.push(e.from);
      return;
    case 'transfer_offered': {
      const existing = state.transfers.get(e.id);
      const t = existing ?? blankTransfer(e.id, now);
      t.direction = e.direction;
      t.peer = e.peer;
      t.name = e.name;
      t.size = e.size;
      t.total = e.size;
      t.description = e.description;
      t.state = 'offered';
      t.bytes = e.resume_from;
      t.offset = e.resume_from;
      t.bytesPerSec = 0;
      t.error = null;
      t.resumable = false;
      t.uploadFallback = false;
      t.notices = [];
      t.finishedAt = null;
      t.seconds = null;
      t.verified = 'none';
      t.files = e.files ?? null;
      // A resumed batch keeps the files it had (the next batch_progress says); a new one has none yet.
      t.filesDone = t.files == null ? null : e.resume_from > 0 ? (existing?.filesDone ?? null) : 0;
      if (!existing) {
        state.transfers.set(e.id, t);
        state.order.unshift(e.id);
        dirty.order = true;
      } else if (state.order[0] !== e.id) {
        // A resumed or retried transfer comes back to the top.
        t.createdAt = now;
        state.order = [e.id, ...state.order.filter((x) => x !== e.id)];
        dirty.order = true;
      }
      dirty.transfers.add(e.id);
      // A resumption of a file we already accepted continues by itself.
      if (e.direction === 'incoming' && e.resume_from === 0 && !state.offers.includes(e.id) && policy(t, state)) {
        state.offers.push(e.id);
        dirty.offers = true;
      }
      return;
    }
    case 'transfer_started': {
      const t = getOrCreate(state, e.id, now, dirty);
      t.state = 'active';
      t.uploadFallback = false;
      t.route = e.route;
      t.protocol = e.protocol ?? null;
      t.streamhost = e.streamhost;
      t.offset = e.offset;
      t.bytes = Math.max(t.bytes, e.offset);
      dirty.transfers.add(e.id);
      dropOffer(state, e.id, dirty);
      return;
    }
    case 'transfer_progress': {
      const t = getOrCreate(state, e.id, now, dirty);
      if (isFinal(t.state)) return; // A late tick after the end changes nothing.
      t.bytes = e.bytes;
      t.total = e.total;
      if (!t.size) t.size = e.total;
      t.bytesPerSec = e.bytes_per_sec;
      if (t.state !== 'active') {
        t.state = 'active';
        dropOffer(state, e.id, dirty);
      }
      dirty.transfers.add(e.id);
      return;
    }
    case 'transfer_completed': {
      const t = getOrCreate(state, e.id, now, dirty);
      t.state = 'completed';
      t.name = e.name;
      t.path = e.path;
      t.size = e.size;
      t.total = e.size;
      t.bytes = e.size;
      t.route = e.route;
      t.seconds = e.seconds;
      t.verified = asVerification(e.verified);
      t.bytesPerSec = e.seconds > 0 ? e.bytes / e.seconds : 0;
      t.error = null;
      t.resumable = false;
      t.uploadFallback = false;
      t.finishedAt = now;
      if (t.files != null) t.filesDone = t.files;
      dirty.transfers.add(e.id);
      dropOffer(state, e.id, dirty);
      return;
    }
    case 'batch_progress': {
      const t = getOrCreate(state, e.id, now, dirty);
      if (isFinal(t.state)) return; // The end already said how it went.
      t.files = e.files;
      t.filesDone = Math.min(e.files_done, e.files);
      dirty.transfers.add(e.id);
      return;
    }
    case 'transfer_failed': {
      const t = getOrCreate(state, e.id, now, dirty);
      // A user's cancel is reported as a failure with the reason "cancelled".
      t.state = e.reason === 'cancelled' ? 'cancelled' : e.resumable ? 'interrupted' : 'failed';
      if (e.name) t.name = e.name;
      t.error = e.error;
      t.resumable = e.resumable;
      t.uploadFallback = e.upload_fallback === true && t.direction === 'outgoing' && t.state !== 'cancelled';
      t.bytesPerSec = 0;
      t.finishedAt = now;
      dirty.transfers.add(e.id);
      dropOffer(state, e.id, dirty);
      return;
    }
    case 'transfer_rejected': {
      const t = getOrCreate(state, e.id, now, dirty);
      t.state = 'rejected';
      if (e.name) t.name = e.name;
      t.error = e.reason;
      t.resumable = false;
      t.uploadFallback = false;
      t.bytesPerSec = 0;
      t.finishedAt = now;
      dirty.transfers.add(e.id);
      dropOffer(state, e.id, dirty);
      return;
    }
    case 'transfer_notice': {
      const t = getOrCreate(state, e.id, now, dirty);
      t.notices.push(e.message);
      if (t.notices.length > MAX_NOTICES) t.notices.splice(0, t.notices.length - MAX_NOTICES);
      dirty.transfers.add(e.id);
      return;
    }
  }
}

const SHOW_RANK: Record<Presence, number> = { available: 0, away: 1, dnd: 2, offline: 3 };

export function presenceOfShow(show: string): Presence {
  switch (show) {
    case 'available':
    case 'chat':
    case '':
      return 'available';
    case 'away':
    case 'xa':
      return 'away';
    case 'dnd':
      return 'dnd';
    default:
      return 'available';
  }
}

/** The resource that counts: highest priority, then the most available. */
export function bestResource(resources: ResourcePresence[]): ResourcePresence | null {
  let best: ResourcePresence | null = null;
  for (const r of resources) {
    if (r.priority < 0 && resources.length > 1 && resources.some((o) => o.priority >= 0)) continue;
    if (
      !best ||
      r.priority > best.priority ||
      (r.priority === best.priority && SHOW_RANK[presenceOfShow(r.show)] < SHOW_RANK[presenceOfShow(best.show)])
    ) {
      best = r;
    }
  }
  return best;
}

export function contactPresence(c: ContactView): Presence {
  const r = bestResource(c.resources);
  return r ? presenceOfShow(r.show) : 'offline';
}

export function displayName(c: ContactView): string {
  return c.name?.trim() || c.jid.split('@')[0] || c.jid;
}

/** Contacts matching `query` (name or JID, case-insensitive), online first, then by name. */
export function visibleContacts(contacts: Iterable<ContactView>, query: string): ContactView[] {
  const q = query.trim().toLowerCase();
  const list = [...contacts].filter(
    (c) => !q || c.jid.toLowerCase().includes(q) || (c.name ?? '').toLowerCase().includes(q),
  );
  return list.sort((a, b) => {
    const pa = SHOW_RANK[contactPresence(a)];
    const pb = SHOW_RANK[contactPresence(b)];
    if ((pa === 3) !== (pb === 3)) return pa === 3 ? 1 : -1;
    return displayName(a).localeCompare(displayName(b)) || a.jid.localeCompare(b.jid);
  });
}

/**
 * The store: state + dirty set + a scheduler that renders at most every `minInterval`
 * ms, on an animation frame. Events never render synchronously.
 */
export interface SchedulerDeps {
  now: () => number;
  requestFrame: (cb: () => void) => void;
  setTimer: (cb: () => void, ms: number) => void;
}

export const browserDeps = (): SchedulerDeps => ({
  now: () => performance.now(),
  requestFrame: (cb) => requestAnimationFrame(() => cb()),
  setTimer: (cb, ms) => void setTimeout(cb, ms),
});

export class FrameScheduler {
  private pending = false;
  private last = -Infinity;
  /** Number of renders run, for tests and diagnostics. */
  renders = 0;

  constructor(
    private readonly render: () => void,
    private readonly deps: SchedulerDeps,
    readonly minInterval = 100,
  ) {}

  request(): void {
    if (this.pending) return;
    this.pending = true;
    const wait = this.last + this.minInterval - this.deps.now();
    if (wait > 0) this.deps.setTimer(() => this.deps.requestFrame(() => this.run()), wait);
    else this.deps.requestFrame(() => this.run());
  }

  /** Renders now (user actions that must show at once, tests). */
  flush(): void {
    this.pending = false;
    this.run();
  }

  private run(): void {
    this.pending = false;
    this.last = this.deps.now();
    this.renders++;
    this.render();
  }
}

export class Store {
  state = initialState();
  private dirty = emptyDirty();
  policy: OfferPolicy = alwaysAsk;
  private readonly scheduler: FrameScheduler;
  private readonly listeners = new Set<(d: Dirty) => void>();

  constructor(
    deps: SchedulerDeps = browserDeps(),
    minInterval = 100,
    private readonly clock: () => number = () => Date.now(),
  ) {
    this.scheduler = new FrameScheduler(() => this.emit(), deps, minInterval);
  }

  get renders(): number {
    return this.scheduler.renders;
  }

  dispatch(e: EngineEvent): void {
    applyEvent(this.state, e, this.dirty, this.clock(), this.policy);
    this.scheduler.request();
  }

  /** Any other change: `fn` mutates the state and marks what it changed. */
  update(fn: (state: AppState, dirty: Dirty) => void): void {
    fn(this.state, this.dirty);
    this.scheduler.request();
  }

  /** Marks everything dirty (language switch, theme switch). */
  invalidateAll(): void {
    for (const id of this.state.transfers.keys()) this.dirty.transfers.add(id);
    this.dirty.order = this.dirty.contacts = this.dirty.connection = this.dirty.offers = this.dirty.fatal = true;
    this.scheduler.request();
  }

  subscribe(fn: (d: Dirty) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  flush(): void {
    this.scheduler.flush();
  }

  reset(): void {
    this.state = initialState();
    this.invalidateAll();
  }

  private emit(): void {
    const d = this.dirty;
    this.dirty = emptyDirty();
    for (const fn of this.listeners) fn(d);
  }

  get now(): number {
    return this.clock();
  }
}
