import { describe, expect, it } from 'vitest';
import {
  applyEvent,
  asVerification,
  bestResource,
  clearFinished,
  contactPresence,
  emptyDirty,
  FrameScheduler,
  initialState,
  seedTransfers,
  setContacts,
  Store,
  visibleContacts,
  type AppState,
  type SchedulerDeps,
} from './store';
import type { ContactView, EngineEvent, TransferRecord } from './types';

function reduce(events: EngineEvent[], state: AppState = initialState(), now = 1000) {
  const dirty = emptyDirty();
  for (const e of events) applyEvent(state, e, dirty, now);
  return { state, dirty };
}

const offered = (id: number, direction: 'incoming' | 'outgoing' = 'outgoing', extra: Partial<EngineEvent & { type: 'transfer_offered' }> = {}): EngineEvent => ({
  type: 'transfer_offered',
  id,
  direction,
  peer: 'bob@localhost/pc',
  name: `file-${id}.bin`,
  size: 1000,
  description: null,
  resume_from: 0,
  files: null,
  ...extra,
});

/** A fake clock + frame queue: frames run only when the test says so. */
function fakeDeps() {
  let now = 0;
  const frames: (() => void)[] = [];
  const timers: { at: number; cb: () => void }[] = [];
  const deps: SchedulerDeps = {
    now: () => now,
    requestFrame: (cb) => void frames.push(cb),
    setTimer: (cb, ms) => void timers.push({ at: now + ms, cb }),
  };
  return {
    deps,
    advance(ms: number) {
      now += ms;
      for (const t of timers.filter((t) => t.at <= now)) {
        timers.splice(timers.indexOf(t), 1);
        t.cb();
      }
    },
    /** Runs the pending animation frames (one display refresh). */
    frame() {
      const run = frames.splice(0);
      for (const f of run) f();
      return run.length;
    },
    get pendingFrames() {
      return frames.length;
    },
  };
}

describe('transfer reducer', () => {
  it('follows an outgoing transfer from offer to completion', () => {
    const { state, dirty } = reduce([
      offered(1),
      { type: 'transfer_started', id: 1, route: 's5b-direct', protocol: 'si', streamhost: null, offset: 0 },
      { type: 'transfer_progress', id: 1, bytes: 400, total: 1000, bytes_per_sec: 200 },
    ]);
    const t = state.transfers.get(1)!;
    expect(t).toMatchObject({ state: 'active', route: 's5b-direct', bytes: 400, total: 1000, bytesPerSec: 200, name: 'file-1.bin' });
    expect(state.order).toEqual([1]);
    expect(state.offers).toEqual([]);
    expect([...dirty.transfers]).toEqual([1]);
    expect(dirty.order).toBe(true);

    reduce(
      [
        {
          type: 'transfer_completed',
          id: 1,
          name: 'file-1.bin',
          path: '/tmp/file-1.bin',
          size: 1000,
          bytes: 1000,
          sha256: 'ab',
          route: 's5b-direct',
          seconds: 2,
          verified: 'sha256',
        },
      ],
      state,
    );
    expect(state.transfers.get(1)).toMatchObject({ state: 'completed', path: '/tmp/file-1.bin', bytes: 1000, seconds: 2, bytesPerSec: 500, verified: 'sha256' });
  });

  it('queues incoming offers in order and drops them when answered', () => {
    const { state, dirty } = reduce([offered(1, 'incoming'), offered(2, 'incoming'), offered(3, 'outgoing')]);
    expect(state.offers).toEqual([1, 2]);
    expect(dirty.offers).toBe(true);
    expect(state.order).toEqual([3, 2, 1]);
    reduce([{ type: 'transfer_started', id: 1, route: 'ibb', protocol: 'si', streamhost: null, offset: 0 }], state);
    expect(state.offers).toEqual([2]);
    reduce([{ type: 'transfer_rejected', id: 2, name: 'file-2.bin', reason: 'declined' }], state);
    expect(state.offers).toEqual([]);
    expect(state.transfers.get(2)).toMatchObject({ state: 'rejected', error: 'declined' });
  });

  it('does not ask again for a resumption (resume_from > 0)', () => {
    const { state } = reduce([offered(7, 'incoming', { resume_from: 500 })]);
    expect(state.offers).toEqual([]);
    expect(state.transfers.get(7)).toMatchObject({ state: 'offered', bytes: 500, offset: 500 });
  });

  it('lets a policy answer an offer (auto-accept) without the dialog', () => {
    const state = initialState();
    const dirty = emptyDirty();
    applyEvent(state, offered(1, 'incoming'), dirty, 0, (o) => o.size > 500);
    applyEvent(state, offered(2, 'incoming', { size: 100 }), dirty, 0, (o) => o.size > 500);
    expect(state.offers).toEqual([1]);
  });

  it('withdraws the offer when the sender gives up', () => {
    const { state } = reduce([offered(1, 'incoming'), { type: 'transfer_failed', id: 1, name: 'file-1.bin', reason: 'network', error: 'the sender cancelled', resumable: false, upload_fallback: false }]);
    expect(state.offers).toEqual([]);
    expect(state.transfers.get(1)!.state).toBe('failed');
  });

  it('maps failures: cancelled, interrupted (resumable), failed', () => {
    const { state } = reduce([
      offered(1),
      offered(2),
      offered(3),
      { type: 'transfer_failed', id: 1, name: 'a', reason: 'cancelled', error: 'cancelled', resumable: true, upload_fallback: false },
      { type: 'transfer_failed', id: 2, name: 'b', reason: 'network', error: 'connection lost', resumable: true, upload_fallback: false },
      { type: 'transfer_failed', id: 3, name: 'c', reason: 'network', error: 'file changed', resumable: false, upload_fallback: false },
    ]);
    expect(state.transfers.get(1)).toMatchObject({ state: 'cancelled', name: 'a' });
    expect(state.transfers.get(2)).toMatchObject({ state: 'interrupted', resumable: true, error: 'connection lost' });
    expect(state.transfers.get(3)).toMatchObject({ state: 'failed', resumable: false, error: 'file changed' });
  });

  it('records upload_fallback from the failure and clears it when the transfer runs again', () => {
    const { state, dirty } = reduce([
      offered(1),
      offered(2),
      offered(3, 'incoming'),
      { type: 'transfer_failed', id: 1, name: 'a', reason: 'network', error: 'no method worked', resumable: false, upload_fallback: true },
      { type: 'transfer_failed', id: 2, name: 'b', reason: 'network', error: 'no method worked', resumable: false, upload_fallback: false },
      // Only an outgoing transfer can be uploaded instead; a cancel is no failure to answer.
      { type: 'transfer_failed', id: 3, name: 'c', reason: 'network', error: 'lost', resumable: false, upload_fallback: true },
    ]);
    expect(state.transfers.get(1)).toMatchObject({ state: 'failed', uploadFallback: true });
    expect(state.transfers.get(2)!.uploadFallback).toBe(false);
    expect(state.transfers.get(3)!.uploadFallback).toBe(false);
    expect(dirty.transfers.has(1)).toBe(true);
    // The card goes; the history asks the engine what can be done.
    clearFinished(state, emptyDirty());
    expect(state.transfers.has(1)).toBe(false);
    // upload_instead: the engine offers it again (same id) and starts the upload.
    reduce([offered(1)], state);
    expect(state.transfers.get(1)!.uploadFallback).toBe(false);
    reduce([{ type: 'transfer_failed', id: 1, name: 'a', reason: 'network', error: 'x', resumable: false, upload_fallback: true }], state);
    reduce([{ type: 'transfer_started', id: 1, route: 'upload', protocol: null, streamhost: null, offset: 0 }], state);
    expect(state.transfers.get(1)).toMatchObject({ state: 'active', route: 'upload', uploadFallback: false });
    reduce([{ type: 'transfer_failed', id: 1, name: 'a', reason: 'cancelled', error: 'cancelled', resumable: false, upload_fallback: true }], state);
    expect(state.transfers.get(1)).toMatchObject({ state: 'cancelled', uploadFallback: false });
  });

  it('ignores progress that arrives after the end', () => {
    const { state } = reduce([
      offered(1),
      { type: 'transfer_failed', id: 1, name: 'x', reason: 'network', error: 'boom', resumable: false, upload_fallback: false },
      { type: 'transfer_progress', id: 1, bytes: 999, total: 1000, bytes_per_sec: 5 },
    ]);
    expect(state.transfers.get(1)).toMatchObject({ state: 'failed', bytes: 0 });
  });

  it('creates a placeholder for a transfer it never saw offered', () => {
    const { state } = reduce([{ type: 'transfer_progress', id: 42, bytes: 10, total: 100, bytes_per_sec: 1 }]);
    expect(state.transfers.get(42)).toMatchObject({ name: '#42', state: 'active', bytes: 10, total: 100 });
    expect(state.order).toEqual([42]);
  });

  it('keeps the last notices only', () => {
    const events: EngineEvent[] = [offered(1)];
    for (let i = 0; i < 5; i++) events.push({ type: 'transfer_notice', id: 1, message: `n${i}` });
    const { state } = reduce(events);
    expect(state.transfers.get(1)!.notices).toEqual(['n2', 'n3', 'n4']);
  });

  it('brings a resumed transfer back to the top with a fresh attempt', () => {
    const { state } = reduce([
      offered(1),
      offered(2),
      { type: 'transfer_failed', id: 1, name: 'file-1.bin', reason: 'network', error: 'lost', resumable: true, upload_fallback: false },
    ]);
    expect(state.order).toEqual([2, 1]);
    reduce([offered(1, 'outgoing', { resume_from: 300 })], state, 5000);
    expect(state.order).toEqual([1, 2]);
    expect(state.transfers.get(1)).toMatchObject({ state: 'offered', error: null, offset: 300, bytes: 300 });
  });

  it('seeds from history without overriding what events said', () => {
    const rec = (id: number, extra: Partial<TransferRecord> = {}): TransferRecord => ({
      id,
      sid: 's',
      direction: 'outgoing',
      account: 'a@b',
      peer_jid: 'bob@localhost/pc',
      file_name: `r${id}`,
      local_path: '/x',
      size: 100,
      md5: null,
      sha256: null,
      date: null,
      description: null,
      route: 'ibb',
      streamhost: null,
      state: 'completed',
      bytes_done: 100,
      error: null,
      fail_reason: null,
      created_at: id * 1000,
      updated_at: id * 1000,
      finished_at: id * 1000 + 4000,
      offset: 0,
      attempts: 1,
      url: null,
      verified: 'sha256',
      parent: null,
      files: null,
      rel_path: null,
      protocol: null,
      ...extra,
    });
    const { state } = reduce([{ type: 'transfer_progress', id: 2, bytes: 50, total: 100, bytes_per_sec: 10 }]);
    const dirty = emptyDirty();
    seedTransfers(state, [rec(1), rec(2, { state: 'interrupted', bytes_done: 20 }), rec(3)], dirty);
    expect(state.transfers.get(2)!.bytes).toBe(50);
    // A record's times include the wait for the receiver's answer: no speed is made up from them.
    expect(state.transfers.get(1)).toMatchObject({ state: 'completed', seconds: null, bytesPerSec: 0 });
    expect(state.order[0]).toBe(3);
    const removed = clearFinished(state, emptyDirty());
    expect(removed).toBe(2);
    expect(state.order).toEqual([2]);
  });

  it('keeps how a completed transfer was checked, from the event or the record', () => {
    const completed = (id: number, verified: 'sha256' | 'md5' | 'none'): EngineEvent => ({
      type: 'transfer_completed',
      id,
      name: `file-${id}.bin`,
      path: `/tmp/file-${id}.bin`,
      size: 1000,
      bytes: 1000,
      sha256: 'ab',
      route: 'oob',
      seconds: 1,
      verified,
    });
    const { state } = reduce([offered(1, 'incoming'), offered(2, 'incoming'), offered(3), completed(1, 'sha256'), completed(2, 'md5'), completed(3, 'none')]);
    expect(state.transfers.get(1)!.verified).toBe('sha256');
    expect(state.transfers.get(2)!.verified).toBe('md5');
    expect(state.transfers.get(3)!.verified).toBe('none');
    // Sent again (resume, retry, upload instead): nothing is known about the new attempt yet.
    reduce([offered(1, 'incoming', { resume_from: 10 })], state);
    expect(state.transfers.get(1)).toMatchObject({ state: 'offered', verified: 'none' });

    const rec = (id: number, extra: Partial<TransferRecord>): TransferRecord => ({
      id, sid: 's', direction: 'incoming', account: 'a@b', peer_jid: 'bob@localhost/pc', file_name: `r${id}`, local_path: '/x', size: 10,
      md5: null, sha256: null, date: null, description: null, route: 'ibb', streamhost: null, state: 'completed', bytes_done: 10, error: null,
      fail_reason: null, created_at: id, updated_at: id, finished_at: id, offset: 0, attempts: 1, url: null, verified: 'sha256', parent: null, files: null, rel_path: null, protocol: null, ...extra,
    });
    const seeded = initialState();
    seedTransfers(seeded, [rec(10, {}), rec(11, { verified: 'md5' }), rec(12, { verified: 'none', route: 'oob' }), rec(13, { state: 'interrupted', verified: 'sha256' })], emptyDirty());
    expect([10, 11, 12, 13].map((id) => seeded.transfers.get(id)!.verified)).toEqual(['sha256', 'md5', 'none', 'none']);
  });

  it('keeps the protocol that set a transfer up, from transfer_started or the record', () => {
    const { state } = reduce([
      offered(1, 'incoming'),
      { type: 'transfer_started', id: 1, route: 's5b-direct', protocol: 'jingle', streamhost: null, offset: 0 },
      offered(2),
      { type: 'transfer_started', id: 2, route: 'upload', protocol: null, streamhost: null, offset: 0 },
      offered(3),
    ]);
    expect([1, 2, 3].map((id) => state.transfers.get(id)!.protocol)).toEqual(['jingle', null, null]);
    // Started again over another protocol: the new one.
    reduce([{ type: 'transfer_started', id: 1, route: 'ibb', protocol: 'si', streamhost: null, offset: 10 }], state);
    expect(state.transfers.get(1)).toMatchObject({ route: 'ibb', protocol: 'si' });

    const rec = (id: number, protocol: TransferRecord['protocol']): TransferRecord => ({
      id, sid: 's', direction: 'outgoing', account: 'a@b', peer_jid: 'bob@localhost/pc', file_name: `r${id}`, local_path: '/x', size: 10,
      md5: null, sha256: null, date: null, description: null, route: protocol ? 's5b-proxy' : 'upload', streamhost: null, state: 'completed', bytes_done: 10,
      error: null, fail_reason: null, created_at: id, updated_at: id, finished_at: id, offset: 0, attempts: 1, url: null, verified: 'sha256', parent: null,
      files: null, rel_path: null, protocol,
    });
    const seeded = initialState();
    seedTransfers(seeded, [rec(10, 'jingle'), rec(11, 'si'), rec(12, null)], emptyDirty());
    expect([10, 11, 12].map((id) => seeded.transfers.get(id)!.protocol)).toEqual(['jingle', 'si', null]);
  });

  it('reads the verification as checked only when the engine said so', () => {
    expect(asVerification('sha256')).toBe('sha256');
    expect(asVerification('sha-256')).toBe('sha256'); // the store's and the CLI's spelling
    expect(asVerification('md5')).toBe('md5');
    for (const v of ['none', undefined, null, '', 'SHA256', 'sha512', 1]) expect(asVerification(v)).toBe('none');
  });
});

describe('connection and roster reducer', () => {
  const contact = (jid: string, extra: Partial<ContactView> = {}): ContactView => ({
    jid,
    name: null,
    subscription: 'both',
    pending_out: false,
    groups: [],
    resources: [],
    ...extra,
  });

  it('tracks connection state', () => {
    const { state } = reduce([{ type: 'connecting', attempt: 1 }]);
    expect(state.connection).toEqual({ kind: 'connecting', attempt: 1 });
    reduce([{ type: 'online', jid: 'a@b/r', tls: true, mechanism: 'SCRAM-SHA-256' }], state);
    expect(state.connection).toMatchObject({ kind: 'online', tls: true });
    reduce([{ type: 'offline', reason: 'connection reset', will_retry: true }], state);
    expect(state.connection).toEqual({ kind: 'offline', reason: 'connection reset', willRetry: true });
    reduce([{ type: 'reconnecting', attempt: 2, delay_ms: 4000 }], state, 10_000);
    expect(state.connection).toEqual({ kind: 'reconnecting', attempt: 2, at: 14_000 });
    reduce([{ type: 'fatal', code: 'auth-failed', message: 'bad password', untrusted: null }], state);
    expect(state.fatal).toEqual({ code: 'auth-failed', message: 'bad password' });
  });

  it('keeps contacts online while an interrupted session is resumed', () => {
    const state = initialState();
    const bob = contact('bob@localhost', { resources: [{ resource: 'pc', show: 'available', status: null, priority: 1 }] });
    setContacts(state, [bob], emptyDirty());
    reduce([{ type: 'online', jid: 'a@b/r', tls: true, mechanism: 'SCRAM-SHA-256' }], state);
    reduce(
      [
        { type: 'interrupted', reason: 'the server closed the connection' },
        { type: 'reconnecting', attempt: 1, delay_ms: 100 },
        { type: 'connecting', attempt: 1 },
      ],
      state,
    );
    expect(state.connection).toEqual({ kind: 'resuming', reason: 'the server closed the connection' });
    expect(state.contacts.get('bob@localhost')?.resources).toHaveLength(1);
    reduce([{ type: 'resumed', jid: 'a@b/r', tls: true, mechanism: 'SCRAM-SHA-256' }], state);
    expect(state.connection).toEqual({ kind: 'online', jid: 'a@b/r', tls: true, mechanism: 'SCRAM-SHA-256' });
    expect(state.contacts.get('bob@localhost')?.resources).toHaveLength(1);
    // Not resumed: the old session is gone, and with it everyone's presence.
    reduce([{ type: 'interrupted', reason: 'x' }, { type: 'offline', reason: 'could not be resumed', will_retry: true }], state);
    expect(state.connection).toMatchObject({ kind: 'offline' });
    expect(state.contacts.get('bob@localhost')?.resources).toHaveLength(0);
  });

  it('applies roster, pushes and presence', () => {
    const state = initialState();
    setContacts(state, [contact('bob@localhost', { resources: [{ resource: 'pc', show: 'available', status: null, priority: 1 }] })], emptyDirty());
    const { dirty } = reduce(
      [
        { type: 'roster', contacts: [{ jid: 'bob@localhost', name: 'Bob', subscription: 'both', pending_out: false, groups: [] }, { jid: 'carol@localhost', name: null, subscription: 'to', pending_out: true, groups: [] }] },
        { type: 'presence', jid: 'carol@localhost/phone', resource: 'phone', available: true, show: 'dnd', status: 'busy', priority: 0 },
        { type: 'presence', jid: 'stranger@x/y', resource: 'y', available: true, show: 'available', status: null, priority: 0 },
      ],
      state,
    );
    expect(dirty.contacts).toBe(true);
    expect(state.contacts.get('bob@localhost')!.name).toBe('Bob');
    expect(state.contacts.get('bob@localhost')!.resources).toHaveLength(1); // kept across the roster event
    expect(contactPresence(state.contacts.get('carol@localhost')!)).toBe('dnd');
    expect(state.contacts.has('stranger@x')).toBe(false);

    reduce([{ type: 'presence', jid: 'carol@localhost/phone', resource: 'phone', available: false, show: 'available', status: null, priority: 0 }], state);
    expect(contactPresence(state.contacts.get('carol@localhost')!)).toBe('offline');

    reduce([{ type: 'contact_changed', contact: { jid: 'bob@localhost', name: 'Robert', subscription: 'both', pending_out: false, groups: ['x'] } }], state);
    expect(state.contacts.get('bob@localhost')).toMatchObject({ name: 'Robert', groups: ['x'] });
    expect(state.contacts.get('bob@localhost')!.resources).toHaveLength(1);

    reduce([{ type: 'contact_removed', jid: 'carol@localhost' }], state);
    expect(state.contacts.has('carol@localhost')).toBe(false);

    reduce([{ type: 'offline', reason: 'x', will_retry: true }], state);
    expect(contactPresence(state.contacts.get('bob@localhost')!)).toBe('offline');
  });

  it('picks the best resource by priority, then availability', () => {
    expect(bestResource([])).toBeNull();
    expect(
      bestResource([
        { resource: 'a', show: 'away', status: null, priority: 5 },
        { resource: 'b', show: 'available', status: null, priority: 1 },
      ])!.resource,
    ).toBe('a');
    expect(
      bestResource([
        { resource: 'a', show: 'xa', status: null, priority: 1 },
        { resource: 'b', show: 'chat', status: null, priority: 1 },
      ])!.resource,
    ).toBe('b');
  });

  it('filters and sorts contacts: online first, then by name', () => {
    const list = [
      contact('zed@x', { name: 'Zed', resources: [{ resource: 'r', show: 'away', status: null, priority: 0 }] }),
      contact('amy@x', { name: 'Amy' }),
      contact('bob@x', { name: 'Bob', resources: [{ resource: 'r', show: 'available', status: null, priority: 0 }] }),
      contact('carl@y'),
    ];
    expect(visibleContacts(list, '').map((c) => c.jid)).toEqual(['bob@x', 'zed@x', 'amy@x', 'carl@y']);
    expect(visibleContacts(list, 'AM').map((c) => c.jid)).toEqual(['amy@x']);
    expect(visibleContacts(list, '@y').map((c) => c.jid)).toEqual(['carl@y']);
    expect(visibleContacts(list, 'nobody')).toEqual([]);
  });
});

describe('FrameScheduler', () => {
  it('renders once per frame however many requests come', () => {
    const f = fakeDeps();
    let renders = 0;
    const s = new FrameScheduler(() => renders++, f.deps, 100);
    for (let i = 0; i < 50; i++) s.request();
    expect(f.pendingFrames).toBe(1);
    f.frame();
    expect(renders).toBe(1);
  });

  it('waits until minInterval has passed since the last render', () => {
    const f = fakeDeps();
    let renders = 0;
    const s = new FrameScheduler(() => renders++, f.deps, 100);
    s.request();
    f.frame();
    s.request();
    expect(f.pendingFrames).toBe(0); // held back by the timer
    f.advance(50);
    expect(f.pendingFrames).toBe(0);
    f.advance(50);
    expect(f.pendingFrames).toBe(1);
    f.frame();
    expect(renders).toBe(2);
  });
});

describe('100 concurrent transfers x 1000 progress events', () => {
  const N = 100;
  const STEPS = 1000;
  const SIZE = 1_000_000;

  function setup() {
    const f = fakeDeps();
    const store = new Store(f.deps, 100, () => 0);
    const updates: number[] = [];
    store.subscribe((d) => updates.push(d.transfers.size));
    return { f, store, updates };
  }

  function feedOffers(store: Store) {
    for (let id = 1; id <= N; id++) {
      store.dispatch(offered(id, 'outgoing', { size: SIZE }));
      store.dispatch({ type: 'transfer_started', id, route: id % 2 ? 's5b-direct' : 'ibb', protocol: 'si', streamhost: null, offset: 0 });
    }
  }

  it('ends in the right state and renders each card at most once per frame', () => {
    const { f, store, updates } = setup();
    feedOffers(store);
    // Interleaved like real traffic: every transfer advances one step at a time. The
    // clock moves 0.1 ms per event, so 100 000 events span 10 s of virtual time: each
    // transfer reports 100 times a second, ten times what the engine sends.
    let events = 0;
    for (let step = 1; step <= STEPS; step++) {
      for (let id = 1; id <= N; id++) {
        store.dispatch({ type: 'transfer_progress', id, bytes: (SIZE * step) / STEPS, total: SIZE, bytes_per_sec: 1000 * id });
        events++;
        f.advance(0.1);
        if (events % 160 === 0) f.frame(); // a display refresh every ~16 ms
      }
    }
    f.advance(1000);
    f.frame();

    const s = store.state;
    expect(s.transfers.size).toBe(N);
    for (let id = 1; id <= N; id++) {
      expect(s.transfers.get(id)).toMatchObject({ state: 'active', bytes: SIZE, total: SIZE, bytesPerSec: 1000 * id });
    }
    expect(s.order).toHaveLength(N);
    expect(s.order[0]).toBe(N);

    // Rendering is bounded by time, not by events: at most one render per 100 ms of
    // virtual time (10 s -> ~100 renders) and at most N card updates per render.
    expect(events).toBe(N * STEPS);
    expect(store.renders).toBeLessThanOrEqual(10_000 / 100 + 2);
    expect(Math.max(...updates)).toBeLessThanOrEqual(N);
    const cardUpdates = updates.reduce((a, b) => a + b, 0);
    expect(cardUpdates).toBeLessThanOrEqual(store.renders * N);
    expect(cardUpdates).toBeLessThanOrEqual(events / 10);
  });

  it('coalesces a burst into a single render of every card', () => {
    const { f, store, updates } = setup();
    feedOffers(store);
    for (let step = 1; step <= STEPS; step++) {
      for (let id = 1; id <= N; id++) store.dispatch({ type: 'transfer_progress', id, bytes: step, total: STEPS, bytes_per_sec: 1 });
    }
    expect(f.pendingFrames).toBe(1);
    f.frame();
    expect(store.renders).toBe(1);
    expect(updates).toEqual([N]);
    expect(store.state.transfers.get(50)!.bytes).toBe(STEPS);
  });

  it('handles 100 000 events quickly', () => {
    const { store } = setup();
    feedOffers(store);
    const t0 = performance.now();
    for (let step = 1; step <= STEPS; step++) {
      for (let id = 1; id <= N; id++) store.dispatch({ type: 'transfer_progress', id, bytes: step, total: STEPS, bytes_per_sec: 1 });
    }
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('engine typed fields', () => {
  it("takes an offer's direction as the Direction the engine sends", () => {
    const s = reduce([{ type: 'transfer_offered', id: 1, direction: 'incoming', peer: 'b@x/r', name: 'a', size: 1, description: null, resume_from: 0, files: null }]).state;
    expect(s.transfers.get(1)!.direction).toBe('incoming');
  });
});

describe('batches (a folder, or several files offered as one)', () => {
  const batch = (id: number, files: number, direction: 'incoming' | 'outgoing' = 'incoming', resume_from = 0): EngineEvent => ({
    ...offered(id, direction, { name: 'photos', size: 1_503_238_553, resume_from }),
    files,
  } as EngineEvent);

  it('counts the files done from batch_progress, under the batch id, and all of them once completed', () => {
    const { state, dirty } = reduce([batch(7, 312), offered(8)]);
    expect(state.transfers.get(7)).toMatchObject({ name: 'photos', size: 1_503_238_553, files: 312, filesDone: 0, state: 'offered' });
    // A single file is no batch.
    expect(state.transfers.get(8)).toMatchObject({ files: null, filesDone: null });
    // An incoming batch is asked about like any offer.
    expect(state.offers).toEqual([7]);
    expect(dirty.offers).toBe(true);

    const d = emptyDirty();
    applyEvent(state, { type: 'transfer_started', id: 7, route: 's5b-direct', protocol: 'si', streamhost: null, offset: 0 }, d, 2000);
    applyEvent(state, { type: 'transfer_progress', id: 7, bytes: 1024, total: 1_503_238_553, bytes_per_sec: 512 }, d, 2000);
    applyEvent(state, { type: 'batch_progress', id: 7, files_done: 12, files: 312 }, d, 2000);
    expect([...d.transfers]).toEqual([7]);
    expect(state.offers).toEqual([]);
    expect(state.transfers.get(7)).toMatchObject({ state: 'active', bytes: 1024, total: 1_503_238_553, files: 312, filesDone: 12 });

    // A count past the total is held at it.
    reduce([{ type: 'batch_progress', id: 7, files_done: 400, files: 312 }], state);
    expect(state.transfers.get(7)!.filesDone).toBe(312);
    reduce([{ type: 'batch_progress', id: 7, files_done: 100, files: 312 }], state);
    expect(state.transfers.get(7)!.filesDone).toBe(100);

    reduce([{ type: 'transfer_completed', id: 7, name: 'photos', path: '/dl/photos (1)', size: 1_503_238_553, bytes: 1_503_238_553, sha256: '', route: 's5b-direct', seconds: 30, verified: 'sha256' }], state);
    expect(state.transfers.get(7)).toMatchObject({ state: 'completed', path: '/dl/photos (1)', files: 312, filesDone: 312, verified: 'sha256' });
    // A late count after the end changes nothing.
    const late = emptyDirty();
    applyEvent(state, { type: 'batch_progress', id: 7, files_done: 3, files: 312 }, late, 3000);
    expect(state.transfers.get(7)!.filesDone).toBe(312);
    expect(late.transfers.size).toBe(0);
  });

  it('keeps the files done of a batch that is resumed, and makes a card for a count it never saw offered', () => {
    const { state } = reduce([
      batch(1, 20, 'outgoing'),
      { type: 'batch_progress', id: 1, files_done: 5, files: 20 },
      { type: 'transfer_failed', id: 1, name: 'photos', reason: 'network', error: 'lost', resumable: true, upload_fallback: false },
    ]);
    expect(state.transfers.get(1)).toMatchObject({ state: 'interrupted', filesDone: 5 });
    reduce([batch(1, 20, 'outgoing', 4096)], state, 5000);
    expect(state.transfers.get(1)).toMatchObject({ state: 'offered', files: 20, filesDone: 5, offset: 4096 });
    // Sent afresh: none done yet.
    reduce([batch(1, 20, 'outgoing', 0)], state, 6000);
    expect(state.transfers.get(1)!.filesDone).toBe(0);
    reduce([{ type: 'batch_progress', id: 9, files_done: 2, files: 3 }], state);
    expect(state.transfers.get(9)).toMatchObject({ files: 3, filesDone: 2 });
  });

  it('seeds a batch from the history: its file count, all done when completed, unknown otherwise', () => {
    const rec = (id: number, extra: Partial<TransferRecord>): TransferRecord => ({
      id, sid: 's', direction: 'incoming', account: 'a@b', peer_jid: 'bob@localhost/pc', file_name: 'photos', local_path: '/dl/photos', size: 10,
      md5: null, sha256: null, date: null, description: null, route: 'ibb', streamhost: null, state: 'completed', bytes_done: 10, error: null,
      fail_reason: null, created_at: id, updated_at: id, finished_at: id, offset: 0, attempts: 1, url: null, verified: 'sha256', parent: null, files: 312, rel_path: null, protocol: null, ...extra,
    });
    const s = initialState();
    seedTransfers(s, [rec(1, {}), rec(2, { state: 'interrupted', bytes_done: 4 }), rec(3, { files: null })], emptyDirty());
    expect(s.transfers.get(1)).toMatchObject({ files: 312, filesDone: 312 });
    expect(s.transfers.get(2)).toMatchObject({ files: 312, filesDone: null, bytes: 4 });
    expect(s.transfers.get(3)).toMatchObject({ files: null, filesDone: null });
  });
});
