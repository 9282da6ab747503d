// An in-memory backend for developing and screenshotting the UI in a plain browser:
// a demo roster (bob online, carol offline, ...), transfers that progress over time, an
// incoming offer after a few seconds. It emits the same events the engine would.
//
// Routes like the engine's `send_files`: SI to a contact whose client takes SI offers;
// HTTP upload (route `upload`, the completion's path is the download URL) to an offline
// contact or one whose client takes none (李雷's phone runs Conversations) while the
// settings allow uploads, else the `offline` / `no-file-transfer` error. Sends to Erin
// fail on every SI route, with `upload_fallback` while uploads are allowed, so the
// "Send by upload" action (`upload_instead`) can be tried.
//
// Completed transfers are checked like the engine checks them (`verified`): SHA-256
// between the demo's Skiffs (both ways), the offer's MD5 only for a file from 李雷's
// other app, nothing ("not verified" / "not confirmed") for uploads, links and people
// outside the roster.
//
// URL parameters (with `?mock`): signin=1 (start signed out), offer=N (N offers at
// once), lang=en|zh-CN, theme=system|light|dark, quiet=1 (no timed offer),
// many=N (N extra running transfers, for load testing), drag=X,Y (files held over that
// point, in CSS pixels, for screenshots of the drop highlight), noupload=1 (start with
// HTTP upload turned off in the settings), stranger=1 (an offer from someone not in the
// contacts, with markup in its name, at start; refused like the engine does, with no
// record and no event, while the setting says "Refuse"), open=PATH,PATH (files handed
// over by the launch, as with "Open with Skiff": `take_pending_files` returns them once;
// `openFiles()` hands more over while running, like a second launch), burst=N (Bob sends
// a folder of N files at start, N = 3 when not given, at most 300: one offer per file,
// each described by its path inside the folder, as the engine sent a folder before
// batches; the desktop asks about them in one prompt. `offerBurst()` sends more),
// batch=N (Bob offers the folder `photos` as one batch of N files, 312 when not given,
// about 1.4 GiB for 312: the batch prompt. `offerBatch()` offers more).
//
// Batches (a folder, or several files offered together as one offer): sending a path
// that looks like a folder (a trailing separator, or no extension) or several paths at
// once to a contact that takes SI offers makes one outgoing batch, named like the
// engine names it (one folder: its name, its files by their paths inside it; else
// `Files <date>`), of made-up files (a folder's are the same every time). Its progress
// counts the files done (`batch_progress`) as the bytes pass their ends, and it
// completes with the folder's path. To a contact reached by HTTP upload each path is
// still one upload. Accepted, an incoming batch lands as a new folder in the folder
// chosen (`name (1)` when that is taken). The history lists a batch as one row;
// `history({parent})` its files, each with its path inside the batch and its own
// state. The seeded history holds a folder Carol sent twelve days ago.
//
// Server certificates at sign-in (the trust dialog), by the address's domain:
// - `selfsigned.example` presents a self-signed certificate: `certificate-untrusted`
//   (reason `self-signed`) until the account trusts it (sign-in again with its
//   `trustFingerprint`; the pin is kept per account like the shell does) or a CA file
//   is given (any path but `bad`: the server's own certificate in it).
// - With the server `mitm.selfsigned.example:5222` (Advanced), another machine answers
//   for selfsigned.example with its own certificate (issuer not trusted): after the
//   account trusted the first one that is `certificate-changed`, the warning; before,
//   `certificate-untrusted`. Trusting it replaces the account's pin.
// - `expired.example` presents a self-signed certificate that expired a month ago
//   (reason `expired`).
//
// The remembered account and the OS keyring ("Remember password"), in memory only:
// `sign_in` with `remember` keeps the account (`remembered`), and with `rememberPassword`
// its password in `keyring` (bare JID → password), which `remembered_account` reports as
// `passwordSaved`; without `rememberPassword` a kept password is forgotten. There is no
// keyring service with nokeyring=1, nor ever for addresses at `nokeyring.example`: then
// sign-in succeeds with the shell's `password_note` sentence and keeps no password.
// remembered=1 starts with alice@localhost remembered (the form filled in, with signin=1);
// remembered=saved with her password in the keyring too. starterror=CODE (with signin=1)
// is signing in by itself at start having failed with that code (`signInError`: connect,
// auth-failed, certificate-changed, ...); `auth-failed` forgets the kept password, as the
// shell does.

import { type Backend, type Unlisten } from './backend';
import { bareJid, baseName } from './format';
import { isFinal as isFinalState } from './store';
import { isErrorCode } from './types';
import type {
  AccountView,
  AppError,
  CertificateInfo,
  ContactView,
  Direction,
  DragDropEvent,
  EngineEvent,
  ErrorCode,
  HistoryEntry,
  HistoryQuery,
  Language,
  Protocol,
  RecordActions,
  RememberedView,
  Route,
  Settings,
  SignedIn,
  SignInArgs,
  Theme,
  TransferRecord,
  TransferState,
  Untrusted,
  UntrustedReason,
  Verification,
} from './types';

export interface MockOptions {
  signedIn: boolean;
  offers: number;
  /** Send one offer after this many ms (0 = none). */
  offerAfterMs: number;
  language?: Language;
  theme?: Theme;
  many: number;
  /** Multiplier for simulated speeds. */
  speed: number;
  /** Progress tick interval; tests can use 0 to drive ticks by hand. */
  tickMs: number;
  /** Simulated drag position (CSS pixels), or null. */
  drag: { x: number; y: number } | null;
  /** The initial `allowUpload` setting. */
  allowUpload: boolean;
  /** An offer from a stranger at start. */
  strangerOffer?: boolean;
  /** False: no keyring service answers ("Remember password" keeps nothing). */
  keyring?: boolean;
  /** alice@localhost remembered at start; `saved`: with her password in the keyring. */
  remembered?: 'account' | 'saved';
  /** The code signing in by itself at start failed with (`signInError`). */
  startError?: string;
  /** Files handed over by the launch (`take_pending_files`). */
  open?: string[];
  /** Bob sends a folder of this many files at start (0 = none). */
  burst?: number;
  /** Bob offers a folder as one batch of this many files at start (0 = none). */
  batch?: number;
}

export function mockOptionsFromQuery(search: string): MockOptions {
  const q = new URLSearchParams(search);
  const lang = q.get('lang');
  const theme = q.get('theme');
  return {
    signedIn: !q.has('signin'),
    offers: Number(q.get('offer') ?? 0) || 0,
    offerAfterMs: q.has('quiet') || q.has('offer') ? 0 : 4000,
    language: lang === 'en' || lang === 'zh-CN' ? lang : undefined,
    theme: theme === 'light' || theme === 'dark' || theme === 'system' ? theme : undefined,
    many: Math.min(500, Number(q.get('many') ?? 0) || 0),
    speed: Number(q.get('speed') ?? 1) || 1,
    tickMs: 100,
    drag: parsePoint(q.get('drag')),
    allowUpload: !q.has('noupload'),
    strangerOffer: q.has('stranger'),
    keyring: !q.has('nokeyring'),
    remembered: q.get('remembered') === 'saved' ? 'saved' : q.has('remembered') ? 'account' : undefined,
    startError: q.get('starterror') || undefined,
    open: (q.get('open') ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
    burst: q.has('burst') ? Math.min(300, Math.max(1, Number(q.get('burst')) || 3)) : 0,
    batch: q.has('batch') ? Math.min(20_000, Math.max(1, Number(q.get('batch')) || 312)) : 0,
  };
}

function parsePoint(v: string | null): { x: number; y: number } | null {
  const m = v ? /^(\d+),(\d+)$/.exec(v) : null;
  return m ? { x: Number(m[1]), y: Number(m[2]) } : null;
}

/** A file of a made-up batch: its path inside the batch, its size, and (sent) where it is. */
export interface MockBatchEntry {
  rel: string;
  size: number;
  path?: string;
}

/** Looks like a folder to the mock: a trailing separator, or a last name without an extension. */
export function mockLooksLikeFolder(path: string): boolean {
  if (/[\\/]$/.test(path)) return true;
  return !/\.[^.]+$/.test(baseName(path));
}

/** A small deterministic generator: the same seed, the same numbers. */
function seeded(seed: string): () => number {
  let x = 2166136261;
  for (let i = 0; i < seed.length; i++) x = Math.imul(x ^ seed.charCodeAt(i), 16777619);
  return () => {
    x = Math.imul(x ^ (x >>> 15), 2246822507);
    x = Math.imul(x ^ (x >>> 13), 3266489909);
    x ^= x >>> 16;
    return (x >>> 0) / 4294967296;
  };
}

/**
 * `n` made-up files of folder `folder`, by their paths inside it (`2024/IMG_1003.jpg`),
 * about `avg` bytes each, in name order. The same folder and count make the same files.
 */
export function madeUpFiles(folder: string, n: number, avg: number): MockBatchEntry[] {
  const rnd = seeded(`${folder}:${n}`);
  const subs = ['', '', '', '2023/', '2024/', '2024/edited/', 'raw/', 'notes/'];
  const out: MockBatchEntry[] = [];
  for (let i = 0; i < n; i++) {
    const sub = subs[Math.floor(rnd() * subs.length)]!;
    const jitter = 0.4 + rnd() * 1.2;
    let name: string;
    let size: number;
    if (sub === 'notes/') {
      name = `note-${String(i + 1).padStart(3, '0')}.txt`;
      size = Math.round(2048 + rnd() * 30_000);
    } else if (sub === 'raw/') {
      name = `DSC_${5000 + i}.arw`;
      size = Math.round(avg * jitter * 1.6);
    } else {
      name = `IMG_${String(1000 + i).padStart(4, '0')}.jpg`;
      size = Math.round(avg * jitter);
    }
    out.push({ rel: `${sub}${name}`, size });
  }
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

const ME = 'alice@localhost';
/** Contacts whose clients take no SI offers (files go by HTTP upload). */
const NO_SI_OFFERS = new Set(['lilei@jabber.example.cn']);
/** Contacts with whom every SI route fails (the demo of "Send by upload"). */
const SI_FAILS = new Set(['erin@localhost']);
/**
 * Contacts whose clients take Jingle file transfer and are not Skiff: a single file to
 * or from them goes by Jingle, as the engine picks it (`--protocol auto`); between Skiffs
 * SI. Dave's desktop client; 李雷's phone sends by Jingle too (it takes no offers).
 */
const JINGLE_PEERS = new Set(['dave.from.the.research.department@conference-and-files.example.org', 'lilei@jabber.example.cn']);
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

function err(code: ErrorCode, message: string): AppError {
  return { code, message };
}

/** What "Remember me" keeps: the remembered account without what the shell adds to it. */
export type RememberedAccount = Omit<RememberedView, 'passwordSaved' | 'signInError'>;

/** Addresses at this domain never find a keyring service. */
export const NO_KEYRING_DOMAIN = 'nokeyring.example';

/** The shell's `password_note` when no keyring service answers (`secrets::KeyringError`). */
export const NO_KEYRING_NOTE =
  'your password was not saved: no keyring service is available on this computer (on Linux, a Secret Service ' +
  'such as GNOME Keyring or KWallet); you will be asked for it next time. Nothing was written to disk';

/** A failed sign-in at start with `code`, as `remembered_account` reports it. */
function startError(given: string): AppError {
  // From the page's query string: an unknown code stands for any other failure.
  const code: ErrorCode = isErrorCode(given) ? given : 'internal';
  switch (code) {
    case 'connect':
      return err(code, 'Could not connect to localhost:5222: connection refused.');
    case 'auth-failed':
      return err(code, 'The server refused the password for this account (SCRAM-SHA-256).');
    case 'certificate-changed':
      return err(code, 'The server presented another certificate than the one trusted for this account.');
    default:
      return err(code, `Signing in at start failed (${given}).`);
  }
}

const DAY = 86_400;

/** A fake server certificate for the sign-in rules above, or null when the server's is trusted. */
function presentedCertificate(domain: string, server: string | undefined, nowMs: number): { certificate: CertificateInfo; reason: UntrustedReason; detail: string } | null {
  const today = Math.floor(nowMs / 1000 / DAY) * DAY;
  if (domain === 'selfsigned.example' && server === 'mitm.selfsigned.example:5222') {
    return {
      certificate: {
        subject: 'CN=selfsigned.example',
        issuer: 'CN=Inspection Proxy CA, O=Example Networks',
        self_signed: false,
        not_before: today - DAY,
        not_after: today + 89 * DAY,
        names: ['selfsigned.example'],
        fingerprint: 'SHA256:C3:A7:B5:1D:D0:9B:BF:74:84:43:22:C4:26:3B:6E:B6:77:77:79:F9:2B:3E:49:60:62:74:9B:35:8D:86:12:A1',
      },
      reason: 'unknown-issuer',
      detail: 'invalid peer certificate: UnknownIssuer',
    };
  }
  if (domain === 'selfsigned.example') {
    return {
      certificate: {
        subject: 'CN=selfsigned.example, O=Prosody XMPP Server',
        issuer: 'CN=selfsigned.example, O=Prosody XMPP Server',
        self_signed: true,
        not_before: today - 40 * DAY,
        not_after: today + 325 * DAY,
        names: ['selfsigned.example', 'upload.selfsigned.example', 'proxy.selfsigned.example'],
        fingerprint: 'SHA256:FE:6D:FB:85:A8:78:90:E7:B6:72:EE:72:3E:F3:D8:5C:14:B1:75:CA:52:42:A2:05:5B:EA:5B:30:57:61:A6:3F',
      },
      reason: 'self-signed',
      detail: 'invalid peer certificate: UnknownIssuer',
    };
  }
  if (domain === 'expired.example') {
    return {
      certificate: {
        subject: 'CN=expired.example',
        issuer: 'CN=expired.example',
        self_signed: true,
        not_before: today - 395 * DAY,
        not_after: today - 30 * DAY,
        names: ['expired.example'],
        fingerprint: 'SHA256:6F:E4:23:6A:63:A5:4B:3D:DC:3A:72:C7:D4:3A:FF:D9:19:8C:CA:D4:D1:BC:AF:79:94:3B:7F:5B:FE:37:75:0F',
      },
      reason: 'expired',
      detail: 'invalid peer certificate: Expired',
    };
  }
  return null;
}

/** `SHA256:AB:CD:…`, `ab cd …`, … compared as the shell does: the 64 hex digits. */
function fingerprintDigits(s: string): string {
  return s.trim().toUpperCase().replace(/^SHA-?256[:/ ]/, '').replace(/[: ]/g, '');
}

/** The words of the engine's `Untrusted` display, for the error's message. */
const REASON_WORDS: Record<UntrustedReason, string> = {
  'self-signed': 'it is self-signed: no authority this computer trusts vouches for it',
  'unknown-issuer': 'it is not signed by an authority this computer trusts',
  'wrong-name': "it is not valid for this server's domain",
  expired: 'it has expired',
  'not-yet-valid': 'it is not valid yet',
  revoked: 'it has been revoked',
  invalid: 'it is not a valid server certificate',
};

function certificateError(u: Untrusted): AppError {
  const message = u.changed
    ? `the certificate of ${u.host} is not the one you trusted before (the server changed it, or someone is impersonating it); ${REASON_WORDS[u.reason]}; its SHA-256 fingerprint is ${u.certificate.fingerprint}`
    : `the certificate of ${u.host} is not trusted: ${REASON_WORDS[u.reason]}; its SHA-256 fingerprint is ${u.certificate.fingerprint}`;
  return { code: u.changed ? 'certificate-changed' : 'certificate-untrusted', message, untrusted: u };
}

/** How the engine would have checked completed transfer `r` (the header comment). */
function mockVerification(r: TransferRecord): Verification {
  if (r.route === 'upload' || r.route === 'oob') return 'none';
  const bare = bareJid(r.peer_jid);
  if (!DEMO_ROSTER.some((c) => c.jid === bare)) return 'none';
  // Another app: its offers carry an MD5 at best, and it confirms nothing it receives.
  if (NO_SI_OFFERS.has(bare)) return r.direction === 'incoming' ? 'md5' : 'none';
  return 'sha256';
}

/**
 * The signalling that set transfer `r` up over `route`, as the engine records it: none for
 * links and uploads, Jingle for a single file with a client that prefers it, else SI
 * (batches are Skiff's own, over SI).
 */
export function mockProtocol(r: TransferRecord, route: Route | null = r.route): Protocol | null {
  if (route == null || route === 'upload' || route === 'oob') return null;
  return r.files == null && r.parent == null && JINGLE_PEERS.has(bareJid(r.peer_jid)) ? 'jingle' : 'si';
}

/** The engine's sid prefix of an upload (`upload::SID_PREFIX`). */
const UPLOAD_SID_PREFIX = 'upload-';

/** What the mock knows about a record beyond the record itself (the engine's `Circumstances`). */
export interface MockCircumstances {
  /** It is running now. */
  running: boolean;
  /** Signed in, with HTTP upload allowed in the settings. */
  uploadAllowed: boolean;
  /** Its local file (our source, for outgoing) is there. */
  fileExists: boolean;
}

/**
 * The actions record `r` allows, mirroring the engine's `RecordActions::of`
 * (crates/skiff-engine/src/transfer/history.rs) rule for rule; keep the two alike.
 */
export function mockRecordActions(r: TransferRecord, c: MockCircumstances): RecordActions {
  const outgoing = r.direction === 'outgoing';
  const hasPath = r.local_path != null;
  const done = r.state === 'completed';
  const idle = !c.running;
  // `TransferState::is_resumable`.
  const brokeOff = r.state === 'failed' || r.state === 'interrupted' || r.state === 'active' || r.state === 'accepted';
  // A batch is sent, continued and removed as a whole; its files are only looked at.
  const batch = r.files != null;
  const whole = r.parent == null;
  const sendable = hasPath || batch;
  return {
    open: done && hasPath,
    show: hasPath && (done || outgoing),
    resend: outgoing && sendable && idle && whole,
    resume: idle && brokeOff && whole && ((outgoing && sendable) || (!outgoing && r.url != null)),
    upload:
      c.uploadAllowed &&
      outgoing &&
      hasPath &&
      idle &&
      whole &&
      !batch &&
      c.fileExists &&
      r.route !== 'upload' &&
      !r.sid.startsWith(UPLOAD_SID_PREFIX) &&
      r.state !== 'completed' &&
      r.state !== 'rejected',
    remove: idle && whole,
  };
}

/** Where the mock's uploads end up (the completion's `path`). */
function uploadUrl(r: TransferRecord): string {
  return `https://upload.localhost/mock/${r.sid}/${encodeURIComponent(r.file_name)}`;
}

const DEMO_ROSTER: ContactView[] = [
  {
    jid: 'bob@localhost',
    name: 'Bob',
    subscription: 'both',
    pending_out: false,
    groups: ['Friends'],
    resources: [
      { resource: 'laptop', show: 'available', status: 'Ready to receive', priority: 5 },
      { resource: 'phone', show: 'away', status: null, priority: 0 },
    ],
  },
  { jid: 'carol@localhost', name: 'Carol', subscription: 'both', pending_out: false, groups: [], resources: [] },
  {
    jid: 'dave.from.the.research.department@conference-and-files.example.org',
    name: 'Dave Okonkwo-Villanueva (Research, Building 7)',
    subscription: 'both',
    pending_out: false,
    groups: ['Work'],
    resources: [{ resource: 'desk', show: 'dnd', status: 'In a meeting until 15:00', priority: 1 }],
  },
  {
    jid: 'erin@localhost',
    name: 'Erin',
    subscription: 'both',
    pending_out: false,
    groups: [],
    resources: [{ resource: 'pc', show: 'xa', status: 'Back tomorrow', priority: 0 }],
  },
  {
    jid: 'lilei@jabber.example.cn',
    name: '李雷',
    subscription: 'both',
    pending_out: false,
    groups: [],
    resources: [{ resource: 'mobile', show: 'chat', status: null, priority: 3 }],
  },
  { jid: 'frank@localhost', name: null, subscription: 'to', pending_out: true, groups: [], resources: [] },
];

interface Running {
  timer: ReturnType<typeof setInterval> | null;
  bytesPerSec: number;
}

export class MockBackend implements Backend {
  private handlers = new Set<(e: EngineEvent) => void>();
  private account_: AccountView | null;
  private roster_: ContactView[] = structuredClone(DEMO_ROSTER);
  private records = new Map<number, TransferRecord>();
  private running = new Map<number, Running>();
  private nextId = 1;
  private started = false;
  private settings: Settings;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** The server certificate each account trusted (bare JID → `SHA256:…`), as the shell keeps it. */
  readonly certificatePins = new Map<string, string>();
  /** The OS keyring of "Remember password" (lowercase bare JID → password), in memory only. */
  readonly keyring = new Map<string, string>();
  /** False: no keyring service answers (nokeyring=1). */
  keyringAvailable: boolean;
  /** What "Remember me" kept: set by `sign_in`, by a test, or with remembered=1. */
  remembered: RememberedAccount | null = null;
  /** Why signing in by itself at start failed: set by a test or with starterror=CODE. */
  startError: AppError | null = null;
  /** Files handed over by launches and not taken yet (open=…, `openFiles()`). */
  pendingFiles: string[];
  /** Files done last said of each running batch (`batch_progress`). */
  private readonly batchDone = new Map<number, number>();
  /** Folders incoming batches landed as (a new one with the same name gets ` (1)`). */
  private readonly landed = new Set<string>();

  constructor(private readonly opts: MockOptions = mockOptionsFromQuery('')) {
    this.account_ = opts.signedIn ? { jid: ME, online: true, demo: true } : null;
    this.keyringAvailable = opts.keyring ?? true;
    this.pendingFiles = [...(opts.open ?? [])];
    if (opts.remembered || opts.startError) this.remembered = { jid: ME, server: null, tls: 'starttls', caFile: null };
    // The shell signs in by itself only with a kept password; a refused one it forgets.
    if (opts.remembered === 'saved' || opts.startError) this.keyring.set(ME, 'alice-demo');
    if (opts.startError) {
      this.startError = startError(opts.startError);
      if (opts.startError === 'auth-failed') this.keyring.delete(ME);
    }
    this.settings = {
      downloadDir: '/home/alice/Downloads',
      proxyJid: null,
      methods: ['s5b', 'ibb'],
      autoAcceptMaxBytes: 0,
      language: opts.language ?? 'en',
      theme: opts.theme ?? 'system',
      streamhostAddrs: [],
      allowUpload: opts.allowUpload ?? true,
      serveHttp: false,
      strangers: 'ask',
    };
    this.seedHistory();
  }

  // ---- helpers ----

  private emit(e: EngineEvent): void {
    for (const h of this.handlers) h(e);
  }

  private later(ms: number, fn: () => void): void {
    const id = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.add(id);
  }

  /** Stops every timer (tests). */
  dispose(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const r of this.running.values()) if (r.timer) clearInterval(r.timer);
    this.running.clear();
  }

  private record(
    direction: Direction,
    peer: string,
    name: string,
    size: number,
    state: TransferState,
    extra: Partial<TransferRecord> = {},
  ): TransferRecord {
    const now = Date.now();
    const id = this.nextId++;
    const r: TransferRecord = {
      id,
      sid: `mock${id}`,
      direction,
      account: ME,
      peer_jid: peer,
      file_name: name,
      local_path: direction === 'outgoing' ? `/home/alice/Documents/${name}` : `/home/alice/Downloads/${name}`,
      size,
      md5: null,
      sha256: null,
      date: null,
      description: null,
      route: null,
      streamhost: null,
      state,
      bytes_done: state === 'completed' ? size : 0,
      error: null,
      fail_reason: null,
      created_at: now,
      updated_at: now,
      finished_at: state === 'completed' || state === 'failed' || state === 'rejected' || state === 'cancelled' ? now : null,
      offset: 0,
      attempts: 1,
      url: null,
      verified: 'none',
      parent: null,
      files: null,
      rel_path: null,
      protocol: null,
      ...extra,
    };
    if (extra.protocol === undefined) r.protocol = mockProtocol(r);
    if (state === 'completed' && extra.verified === undefined) r.verified = mockVerification(r);
    this.records.set(id, r);
    return r;
  }

  /**
   * A batch record and one record per file under it (`parent`, `rel_path`), as the
   * engine keeps them. `folder`: the batch's folder (the one sent, or the one it
   * landed as), its files at their paths inside it unless an entry says where it is;
   * null when there is none (loose files, an offer not accepted yet).
   */
  private batch(
    direction: Direction,
    peer: string,
    name: string,
    entries: MockBatchEntry[],
    state: TransferState,
    folder: string | null,
    extra: Partial<TransferRecord> = {},
  ): TransferRecord {
    const size = entries.reduce((sum, e) => sum + e.size, 0);
    const b = this.record(direction, peer, name, size, state, { local_path: folder, files: entries.length, ...extra });
    for (const e of entries) {
      this.record(direction, peer, baseName(e.rel), e.size, state, {
        parent: b.id,
        rel_path: e.rel,
        local_path: e.path ?? (folder == null ? null : `${folder}/${e.rel}`),
        route: b.route,
        streamhost: b.streamhost,
        protocol: b.protocol,
        created_at: b.created_at,
        updated_at: b.updated_at,
        finished_at: b.finished_at,
      });
    }
    return b;
  }

  /** The files of batch `id`, in the batch's order. */
  private filesOf(id: number): TransferRecord[] {
    return [...this.records.values()].filter((r) => r.parent === id).sort((a, b) => a.id - b.id);
  }

  /** Moves the files of batch `id` that are not completed to `state`. */
  private setOpenFiles(id: number, state: TransferState, extra: Partial<TransferRecord> = {}): void {
    const now = Date.now();
    for (const f of this.filesOf(id)) {
      if (f.state === 'completed') continue;
      Object.assign(f, { state, updated_at: now, finished_at: isFinalState(state) ? now : null, ...extra });
    }
  }

  /**
   * Batch `r`'s files as its bytes pass their ends: done ones completed (and checked
   * like the batch), the one under way active; `batch_progress` when the count moved.
   */
  private batchTick(r: TransferRecord): void {
    const now = Date.now();
    let end = 0;
    let done = 0;
    const files = this.filesOf(r.id);
    for (const f of files) {
      const start = end;
      end += f.size;
      if (f.state === 'completed') {
        done++;
        continue;
      }
      f.route = r.route;
      f.streamhost = r.streamhost;
      f.protocol = r.protocol;
      f.updated_at = now;
      if (end <= r.bytes_done) {
        f.state = 'completed';
        f.bytes_done = f.size;
        f.finished_at = now;
        f.error = null;
        f.fail_reason = null;
        f.verified = mockVerification(f);
        done++;
      } else {
        f.state = 'active';
        f.bytes_done = Math.max(0, Math.min(f.size, r.bytes_done - start));
      }
    }
    if (this.batchDone.get(r.id) !== done) {
      this.batchDone.set(r.id, done);
      this.emit({ type: 'batch_progress', id: r.id, files_done: done, files: files.length });
    }
  }

  private seedHistory(): void {
    const day = 24 * 3600 * 1000;
    const now = Date.now();
    const old = (ago: number, secs = 20) => ({ created_at: now - ago, updated_at: now - ago + secs * 1000, finished_at: now - ago + secs * 1000 });
    this.record('outgoing', 'bob@localhost/laptop', 'thesis-draft-v7.pdf', 4.2 * MIB, 'completed', { route: 's5b-direct', ...old(9 * day, 2) });
    this.record('incoming', 'carol@localhost/home', 'Family photos 2023 — summer holidays in the mountains.zip', 1.6 * GIB, 'completed', { route: 's5b-proxy', streamhost: 'proxy.localhost', ...old(40 * day, 95) });
    this.record('outgoing', 'erin@localhost/pc', 'budget.xlsx', 88 * 1024, 'rejected', { error: 'declined', fail_reason: 'declined', ...old(3 * day, 5) });
    this.record('incoming', 'lilei@jabber.example.cn/mobile', '会议纪要-第三季度.docx', 356 * 1024, 'completed', { route: 'ibb', ...old(2 * day, 4) });
    this.record('outgoing', 'carol@localhost', 'slides-final.pdf', 6.1 * MIB, 'completed', { route: 'upload', ...old(5 * day, 3) });
    this.record('incoming', 'lilei@jabber.example.cn/mobile', 'IMG_20240611_0932.jpg', 3.4 * MIB, 'completed', { route: 'oob', url: 'https://upload.jabber.example.cn/share/8f2c/IMG_20240611_0932.jpg', ...old(4 * day, 2) });
    this.record('outgoing', 'dave.from.the.research.department@conference-and-files.example.org/desk', 'measurements-2024-raw.csv', 230 * MIB, 'cancelled', { error: 'cancelled', fail_reason: 'cancelled', bytes_done: 12 * MIB, route: 's5b-direct', ...old(30 * 3600 * 1000, 9) });
    this.record('incoming', 'bob@localhost/laptop', 'render-final.mov', 840 * MIB, 'failed', {
      route: 's5b-direct',
      local_path: null,
      bytes_done: 840 * MIB,
      error: "The file arrived damaged: its SHA-256 does not match the sender's. The partial file was removed.",
      fail_reason: 'integrity',
      ...old(6 * day, 70),
    });
    // A folder Carol sent as one batch: one row, its files under it.
    const wedding = madeUpFiles('wedding-photos', 36, 3.2 * MIB);
    this.batch('incoming', 'carol@localhost/home', 'wedding-photos', wedding, 'completed', '/home/alice/Downloads/wedding-photos', { route: 's5b-direct', ...old(12 * day, 48) });
    this.landed.add('/home/alice/Downloads/wedding-photos');
    // Recent ones: these start on the transfers pane.
    this.record('incoming', 'lilei@jabber.example.cn/mobile', 'boarding-pass.pdf', 412 * 1024, 'completed', { route: 'oob', url: 'https://upload.jabber.example.cn/share/c41d/boarding-pass.pdf', ...old(2 * 3600 * 1000, 2) });
    this.record('outgoing', 'erin@localhost/pc', 'notes.txt', 12_345, 'completed', { route: 'ibb', ...old(25 * 60 * 1000, 1) });
    this.record('outgoing', 'dave.from.the.research.department@conference-and-files.example.org/desk', 'dataset.tar.gz', 2.4 * GIB, 'interrupted', {
      route: 's5b-proxy',
      streamhost: 'proxy.localhost',
      bytes_done: 310 * MIB,
      error: 'The connection to the proxy was lost',
      fail_reason: 'network',
      ...old(12 * 60 * 1000, 40),
      finished_at: null,
    });
  }

  /** Live transfers, started once the UI listens. */
  private startDemo(): void {
    if (this.started || !this.account_) return;
    this.started = true;
    this.later(0, () => {
      const a = this.startOutgoing('bob@localhost/laptop', 'Quarterly report – final (v3).pdf', 48 * MIB, 's5b-direct', 0.62, 3.1 * MIB);
      const b = this.startIncoming('bob@localhost/laptop', 'holiday-video-4k.mp4', 1.2 * GIB, 's5b-proxy', 0.23, 7.8 * MIB);
      this.emit({ type: 'transfer_notice', id: b, message: 'Direct connection failed; relaying through proxy.localhost.' });
      void a;
      for (let i = 0; i < this.opts.many; i++) {
        this.startOutgoing('bob@localhost/laptop', `load-test-${String(i + 1).padStart(3, '0')}.bin`, (20 + (i % 50)) * MIB, i % 3 ? 's5b-direct' : 'ibb', 0, (1 + (i % 7)) * MIB);
      }
      for (let i = 0; i < this.opts.offers; i++) this.offerIncoming(i);
      if (this.opts.strangerOffer) this.offerFromStranger();
      if (this.opts.burst) this.offerBurst(this.opts.burst);
      if (this.opts.batch) this.offerBatch(this.opts.batch);
    });
    if (this.opts.offerAfterMs > 0) this.later(this.opts.offerAfterMs, () => this.offerIncoming(0));
  }

  private offerIncoming(i: number): number {
    const samples: [string, string, number, string | null][] = [
      ['bob@localhost/laptop', 'holiday-photos-2024 (edited, full resolution).zip', 486 * MIB, 'The edited ones from the lake trip. The originals follow tomorrow.'],
      ['lilei@jabber.example.cn/mobile', '项目计划书_最终版.pdf', 2.7 * MIB, '请查收，有问题随时联系。'],
      ['erin@localhost/pc', 'recipe.txt', 2048, null],
    ];
    const [peer, name, size, description] = samples[i % samples.length]!;
    const r = this.record('incoming', peer, name, Math.round(size), 'offered', { description, local_path: null });
    this.emit({ type: 'transfer_offered', id: r.id, direction: 'incoming', peer, name, size: r.size, description, resume_from: 0, files: null });
    return r.id;
  }

  /**
   * A folder from `peer` (Bob's laptop): `n` offers at once, one per file, each described
   * by its path inside the folder like the engine describes a folder's files. Returns
   * the ids, in the order offered.
   */
  offerBurst(n = 3, peer = 'bob@localhost/laptop', folder = 'lake-trip'): number[] {
    const first: [string, number][] = [
      ['IMG_4102.jpg', 4.8 * MIB],
      ['IMG_4107.jpg', 5.3 * MIB],
      ['notes/route.gpx', 184 * 1024],
      ['2024/sunset over the lake (edited).heic', 3.1 * MIB],
    ];
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const [rel, size] = first[i] ?? [`more/IMG_${4200 + i}.jpg`, (2 + ((i * 7) % 10) * 0.35) * MIB];
      const description = `${folder}/${rel}`;
      const name = baseName(rel);
      const r = this.record('incoming', peer, name, Math.round(size), 'offered', { description, local_path: null });
      this.emit({ type: 'transfer_offered', id: r.id, direction: 'incoming', peer, name, size: r.size, description, resume_from: 0, files: null });
      ids.push(r.id);
    }
    return ids;
  }

  /**
   * A folder from `peer` (Bob's laptop) offered as one batch of `n` made-up files,
   * about 1.4 GiB for the 312 of the default, as the engine announces a batch: one
   * `transfer_offered` with `files`. Returns its id.
   */
  offerBatch(n = 312, peer = 'bob@localhost/laptop', folder = 'photos'): number {
    const entries = madeUpFiles(folder, n, (1.4 * GIB) / 312);
    const r = this.batch('incoming', peer, folder, entries, 'offered', null);
    this.emit({ type: 'transfer_offered', id: r.id, direction: 'incoming', peer, name: folder, size: r.size, description: null, resume_from: 0, files: n });
    return r.id;
  }

  /**
   * An offer from someone not in the roster, as the engine treats it: asked about, or
   * with the setting on "refuse" refused at once (no record, no event). Returns the
   * id, or null when refused.
   */
  offerFromStranger(name = 'invoice <b>urgent</b>.pdf.exe', peer = 'mallory@evil.example/bot'): number | null {
    if (this.settings.strangers === 'refuse') return null;
    const description = 'Open <i>now</i> & see';
    const r = this.record('incoming', peer, name, 73_728, 'offered', { description, local_path: null });
    this.emit({ type: 'transfer_offered', id: r.id, direction: 'incoming', peer, name, size: r.size, description, resume_from: 0, files: null });
    return r.id;
  }

  private startOutgoing(peer: string, name: string, size: number, route: Route, at: number, bps: number): number {
    const r = this.record('outgoing', peer, name, Math.round(size), 'active', { route, created_at: Date.now(), local_path: `/home/alice/Documents/${name}` });
    r.bytes_done = Math.round(r.size * at);
    this.emit({ type: 'transfer_offered', id: r.id, direction: 'outgoing', peer, name, size: r.size, description: null, resume_from: 0, files: null });
    this.emit({ type: 'transfer_started', id: r.id, route, protocol: r.protocol, streamhost: route === 's5b-proxy' ? 'proxy.localhost' : null, offset: 0 });
    this.run(r.id, bps);
    return r.id;
  }

  private startIncoming(peer: string, name: string, size: number, route: Route, at: number, bps: number): number {
    const r = this.record('incoming', peer, name, Math.round(size), 'active', { route, streamhost: route === 's5b-proxy' ? 'proxy.localhost' : null });
    r.bytes_done = Math.round(r.size * at);
    this.emit({ type: 'transfer_offered', id: r.id, direction: 'incoming', peer, name, size: r.size, description: null, resume_from: 0, files: null });
    this.emit({ type: 'transfer_started', id: r.id, route, protocol: r.protocol, streamhost: r.streamhost, offset: 0 });
    this.run(r.id, bps);
    return r.id;
  }

  /** Progress ticks until done; a little jitter so speeds look alive. */
  private run(id: number, bps: number): void {
    const r = this.records.get(id)!;
    r.state = 'active';
    const run: Running = { timer: null, bytesPerSec: bps * this.opts.speed };
    this.running.set(id, run);
    const tick = () => {
      const jitter = 0.85 + Math.random() * 0.3;
      const rate = Math.round(run.bytesPerSec * jitter);
      r.bytes_done = Math.min(r.size, r.bytes_done + Math.round((rate * this.opts.tickMs) / 1000));
      r.updated_at = Date.now();
      this.emit({ type: 'transfer_progress', id, bytes: r.bytes_done, total: r.size, bytes_per_sec: rate });
      if (r.files != null) this.batchTick(r);
      if (r.bytes_done >= r.size) this.complete(id);
    };
    this.emit({ type: 'transfer_progress', id, bytes: r.bytes_done, total: r.size, bytes_per_sec: run.bytesPerSec });
    if (this.opts.tickMs > 0) run.timer = setInterval(tick, this.opts.tickMs);
  }

  private stop(id: number): void {
    const run = this.running.get(id);
    if (run?.timer) clearInterval(run.timer);
    this.running.delete(id);
  }

  private complete(id: number): void {
    this.stop(id);
    const r = this.records.get(id)!;
    if (r.files != null) {
      // Every file done; the batch's path is its folder (where it was accepted into).
      r.bytes_done = r.size;
      this.batchTick(r);
      this.batchDone.delete(id);
    }
    r.state = 'completed';
    r.finished_at = Date.now();
    if (r.direction === 'incoming' && r.files == null) r.local_path = `${this.settings.downloadDir}/${r.file_name}`;
    r.verified = mockVerification(r);
    this.emit({
      type: 'transfer_completed',
      id,
      name: r.file_name,
      // An upload's path is the download URL the contact got.
      path: r.route === 'upload' ? uploadUrl(r) : (r.local_path ?? ''),
      size: r.size,
      bytes: r.size - r.offset,
      sha256: '0'.repeat(64),
      route: r.route ?? 's5b-direct',
      seconds: Math.max(0.1, (r.finished_at - r.created_at) / 1000),
      verified: r.verified,
    });
  }

  /** An upload after the (simulated) slot request: started, then progress. */
  private startUpload(r: TransferRecord, delayMs: number): void {
    r.route = 'upload';
    r.streamhost = null;
    r.protocol = null;
    this.later(delayMs, () => {
      if (r.state !== 'offered') return;
      this.emit({ type: 'transfer_started', id: r.id, route: 'upload', protocol: null, streamhost: null, offset: 0 });
      this.run(r.id, (2 + Math.random() * 6) * MIB);
    });
  }

  /** Every SI route fails (Erin): the engine offers the upload when it is allowed. */
  private failSi(r: TransferRecord): void {
    this.stop(r.id);
    r.state = 'failed';
    r.error = 'No transfer method worked: the direct connection, the proxy and in-band were all refused.';
    r.fail_reason = 'network';
    r.finished_at = Date.now();
    if (r.files != null) this.setOpenFiles(r.id, 'failed', { error: r.error, fail_reason: 'network' });
    // A folder is not uploaded as one: no upload is offered for a batch.
    const upload = this.settings.allowUpload && r.files == null;
    this.emit({ type: 'transfer_failed', id: r.id, name: r.file_name, reason: 'network', error: r.error, resumable: false, upload_fallback: upload });
  }

  private need(id: number): TransferRecord {
    const r = this.records.get(id);
    if (!r) throw err('not-found', `No transfer with id ${id}.`);
    return r;
  }

  private requireOnline(): void {
    if (!this.account_) throw err('offline', 'You are not signed in.');
  }

  // ---- Backend ----

  async signIn(args: SignInArgs): Promise<SignedIn> {
    await new Promise((r) => setTimeout(r, 500));
    if (args.caFile === 'bad') throw err('tls', 'The server certificate is not trusted: unknown issuer.');
    if (args.server === 'nowhere:5222') throw err('connect', 'Could not connect to nowhere:5222: connection refused.');
    const jid = bareJid(args.jid.trim());
    // TLS comes before the password: the certificate rules of the header comment.
    const account = jid.toLowerCase();
    const domain = account.slice(account.indexOf('@') + 1);
    const presented = presentedCertificate(domain, args.server, Date.now());
    const trustNow = args.trustFingerprint?.trim() || undefined;
    if (presented && !(args.caFile && presented.certificate.self_signed)) {
      // A fingerprint given now replaces the stored pin for this sign-in.
      const pin = trustNow ?? this.certificatePins.get(account);
      if (!pin || fingerprintDigits(pin) !== fingerprintDigits(presented.certificate.fingerprint)) {
        throw certificateError({ host: domain, ...presented, changed: !!pin });
      }
    }
    if (args.password === 'wrong') throw err('auth-failed', 'The server refused the password for this account (SCRAM-SHA-256).');
    if (presented && trustNow) this.certificatePins.set(account, presented.certificate.fingerprint);
    if (args.remember) {
      this.remembered = { jid, server: args.server?.trim() || null, tls: args.tls || 'starttls', caFile: args.caFile?.trim() || null };
    }
    // The password goes to the keyring only, and only when asked to; else it is forgotten.
    let password_note: string | null = null;
    if (args.remember && args.rememberPassword) {
      if (this.keyringAvailable && domain !== NO_KEYRING_DOMAIN) this.keyring.set(account, args.password);
      else password_note = NO_KEYRING_NOTE;
    } else {
      this.keyring.delete(account);
    }
    this.account_ = { jid, online: true, demo: true };
    this.emit({ type: 'connecting', attempt: 1 });
    this.emit({ type: 'online', jid: `${jid}/skiff`, tls: args.tls !== 'plaintext', mechanism: 'SCRAM-SHA-256' });
    this.emit({ type: 'roster', contacts: this.roster_.map(({ resources: _r, ...c }) => c) });
    this.startDemo();
    return { jid, password_note };
  }

  async signOut(): Promise<void> {
    this.account_ = null;
    for (const id of [...this.running.keys()]) this.stop(id);
    this.started = false;
  }

  async rememberedAccount(): Promise<RememberedView | null> {
    if (!this.remembered) return null;
    const passwordSaved = this.keyring.has(this.remembered.jid.toLowerCase());
    return { ...this.remembered, passwordSaved, signInError: this.startError ? { ...this.startError } : null };
  }

  async account(): Promise<AccountView | null> {
    if (this.account_) this.startDemo();
    return this.account_ ? { ...this.account_ } : null;
  }

  async roster(): Promise<ContactView[]> {
    this.requireOnline();
    return structuredClone(this.roster_);
  }

  async sendFiles(to: string, paths: string[]): Promise<number[]> {
    this.requireOnline();
    const bare = bareJid(to);
    const c = this.roster_.find((x) => x.jid === bare);
    const offline = !c || c.resources.length === 0;
    const bySi = !offline && !NO_SI_OFFERS.has(bare);
    if (!bySi && !this.settings.allowUpload) {
      if (offline) throw err('contact-offline', `${bare} is offline: nobody to send the file to.`);
      throw err('no-file-transfer', `${bare} uses an app that cannot take direct transfers, and HTTP upload is turned off.`);
    }
    // A link goes to the bare JID; an SI offer to the best resource.
    const res = offline ? null : [...c!.resources].sort((a, b) => b.priority - a.priority)[0]!;
    const peer = bySi && res ? `${bare}/${res.resource}` : bare;
    // A folder, or several files at once, go as one batch (by SI; an upload is per file).
    if (bySi && (paths.length > 1 || paths.some(mockLooksLikeFolder))) return [this.sendBatch(peer, bare, paths)];
    return paths.map((path) => {
      const name = baseName(path);
      const size = Math.round((3 + Math.random() * 120) * MIB);
      const r = this.record('outgoing', peer, name, size, 'offered', { local_path: path });
      this.emit({ type: 'transfer_offered', id: r.id, direction: 'outgoing', peer, name, size, description: null, resume_from: 0, files: null });
      if (!bySi) {
        this.startUpload(r, 500);
        return r.id;
      }
      this.later(900, () => {
        if (r.state !== 'offered') return;
        if (SI_FAILS.has(bare)) return this.failSi(r);
        const route: Route = bare === 'dave.from.the.research.department@conference-and-files.example.org' ? 's5b-proxy' : 's5b-direct';
        r.route = route;
        r.protocol = mockProtocol(r);
        this.emit({ type: 'transfer_started', id: r.id, route, protocol: r.protocol, streamhost: route === 's5b-proxy' ? 'proxy.localhost' : null, offset: 0 });
        this.run(r.id, (4 + Math.random() * 20) * MIB);
      });
      return r.id;
    });
  }

  /**
   * `paths` to `peer` as one outgoing batch, named as the engine names it: one folder,
   * its name and its (made-up) files by their paths inside it; anything else
   * `Files <date>`, each file by its name and a folder's files by their path from the
   * folder's name on. Started and run like a file.
   */
  private sendBatch(peer: string, bare: string, paths: string[]): number {
    const folderFiles = (p: string) => {
      const name = baseName(p);
      const dir = p.replace(/[\\/]+$/, '');
      return madeUpFiles(name, 8 + Math.floor(seeded(name)() * 40), 2.5 * MIB).map((e) => ({ ...e, path: `${dir}/${e.rel}` }));
    };
    const one = paths.length === 1 ? paths[0]! : null;
    let r: TransferRecord;
    let name: string;
    if (one) {
      name = baseName(one);
      r = this.batch('outgoing', peer, name, folderFiles(one), 'offered', one.replace(/[\\/]+$/, ''));
    } else {
      name = `Files ${new Date().toISOString().slice(0, 10)}`;
      const entries: MockBatchEntry[] = [];
      for (const p of paths) {
        if (mockLooksLikeFolder(p)) entries.push(...folderFiles(p).map((e) => ({ ...e, rel: `${baseName(p)}/${e.rel}` })));
        else entries.push({ rel: baseName(p), size: Math.round((0.3 + seeded(p)() * 9) * MIB), path: p });
      }
      r = this.batch('outgoing', peer, name, entries, 'offered', null);
    }
    this.emit({ type: 'transfer_offered', id: r.id, direction: 'outgoing', peer, name, size: r.size, description: null, resume_from: 0, files: r.files });
    this.later(900, () => {
      if (r.state !== 'offered') return;
      if (SI_FAILS.has(bare)) return this.failSi(r);
      r.route = 's5b-direct';
      r.protocol = mockProtocol(r);
      this.setOpenFiles(r.id, 'active', { protocol: r.protocol });
      this.emit({ type: 'transfer_started', id: r.id, route: 's5b-direct', protocol: r.protocol, streamhost: null, offset: 0 });
      this.run(r.id, (20 + Math.random() * 30) * MIB);
    });
    return r.id;
  }

  /** The folder incoming batch `name` lands as in `dir`: `name`, else `name (1)`, `name (2)`, … */
  private landingFolder(dir: string, name: string): string {
    let path = `${dir}/${name}`;
    for (let n = 1; this.landed.has(path); n++) path = `${dir}/${name} (${n})`;
    this.landed.add(path);
    return path;
  }

  async accept(id: number, dir?: string): Promise<void> {
    const r = this.need(id);
    if (r.state !== 'offered') throw err('not-found', 'This offer was withdrawn.');
    if (r.files != null) return this.acceptBatch(r, dir || this.settings.downloadDir);
    r.state = 'accepted';
    r.local_path = `${dir ?? this.settings.downloadDir}/${r.file_name}.part`;
    this.later(400, () => {
      r.route = 's5b-direct';
      r.protocol = mockProtocol(r);
      this.emit({ type: 'transfer_started', id, route: 's5b-direct', protocol: r.protocol, streamhost: null, offset: 0 });
      this.run(id, 9 * MIB);
    });
  }

  /** A batch lands as a new folder in `dir`, each file at its path inside it. */
  private acceptBatch(r: TransferRecord, dir: string): void {
    const id = r.id;
    const folder = this.landingFolder(dir, r.file_name);
    r.state = 'accepted';
    r.local_path = folder;
    for (const f of this.filesOf(id)) {
      f.local_path = `${folder}/${f.rel_path ?? f.file_name}`;
      f.state = 'accepted';
    }
    this.later(400, () => {
      if (r.state !== 'accepted') return;
      r.route = 's5b-direct';
      r.protocol = mockProtocol(r);
      this.setOpenFiles(id, 'active', { protocol: r.protocol });
      this.emit({ type: 'transfer_started', id, route: 's5b-direct', protocol: r.protocol, streamhost: null, offset: 0 });
      this.run(id, 48 * MIB);
    });
  }

  async reject(id: number): Promise<void> {
    const r = this.need(id);
    if (r.files != null) this.setOpenFiles(id, 'rejected', { error: 'declined', fail_reason: 'declined' });
    r.state = 'rejected';
    r.fail_reason = 'declined';
    r.error = 'declined';
    r.finished_at = Date.now();
    this.emit({ type: 'transfer_rejected', id, name: r.file_name, reason: 'declined' });
  }

  async cancel(id: number): Promise<void> {
    const r = this.need(id);
    this.stop(id);
    r.state = 'cancelled';
    r.error = 'cancelled';
    r.fail_reason = 'cancelled';
    r.finished_at = Date.now();
    if (r.files != null) {
      this.setOpenFiles(id, 'cancelled', { error: 'cancelled', fail_reason: 'cancelled' });
      this.batchDone.delete(id);
    }
    this.emit({ type: 'transfer_failed', id, name: r.file_name, reason: 'cancelled', error: 'cancelled', resumable: r.direction === 'outgoing', upload_fallback: false });
  }

  async resume(id: number): Promise<number> {
    const r = this.need(id);
    if (r.direction !== 'outgoing' || !r.local_path) throw err('not-resumable', 'Only a file you sent can be resumed from here.');
    r.state = 'offered';
    r.verified = 'none';
    r.offset = r.bytes_done;
    r.attempts++;
    r.error = null;
    r.finished_at = null;
    if (r.files != null) {
      // Sent afresh from byte 0: every file again; resumed: the files not done yet.
      if (r.offset === 0) for (const f of this.filesOf(id)) Object.assign(f, { state: 'offered', bytes_done: 0, verified: 'none', finished_at: null });
      this.setOpenFiles(id, 'offered', { error: null, fail_reason: null });
      this.batchDone.delete(id);
    }
    this.emit({ type: 'transfer_offered', id, direction: 'outgoing', peer: r.peer_jid, name: r.file_name, size: r.size, description: r.description, resume_from: r.bytes_done, files: r.files });
    this.later(700, () => {
      if (r.files != null) this.setOpenFiles(id, 'active');
      const route = r.route ?? 's5b-direct';
      r.protocol = mockProtocol(r, route);
      this.emit({ type: 'transfer_started', id, route, protocol: r.protocol, streamhost: r.streamhost, offset: r.offset });
      this.run(id, 11 * MIB);
    });
    return id;
  }

  /** Starts over from byte 0 under the same id (the shell may give a fresh send a new id). */
  async retry(id: number): Promise<number> {
    const r = this.need(id);
    r.bytes_done = 0;
    r.offset = 0;
    return this.resume(id);
  }

  /** Sends a failed outgoing transfer again by HTTP upload, under the same id. */
  async uploadInstead(id: number): Promise<number> {
    this.requireOnline();
    const r = this.need(id);
    if (r.direction !== 'outgoing' || !r.local_path) throw err('invalid', 'Only a file you sent can be uploaded instead.');
    if (r.state !== 'failed' && r.state !== 'interrupted') throw err('already-active', 'This transfer has not failed.');
    if (!this.settings.allowUpload) throw err('invalid', 'Sending by HTTP upload is turned off in the settings.');
    r.state = 'offered';
    r.verified = 'none';
    r.bytes_done = 0;
    r.offset = 0;
    r.attempts++;
    r.error = null;
    r.finished_at = null;
    this.emit({ type: 'transfer_offered', id, direction: 'outgoing', peer: bareJid(r.peer_jid), name: r.file_name, size: r.size, description: r.description, resume_from: 0, files: r.files });
    this.startUpload(r, 400);
    return id;
  }

  /**
   * Whether transfer `r` runs now, as the engine's `is_active` sees it: its data
   * flowing, or an offer waiting for an answer or to start. Nothing runs signed out.
   */
  private isActive(r: TransferRecord): boolean {
    return !!this.account_ && (this.running.has(r.id) || r.state === 'offered' || r.state === 'accepted');
  }

  /** `r` with the actions the engine would allow on it now (every local file is there). */
  private entry(r: TransferRecord): HistoryEntry {
    const actions = mockRecordActions(r, {
      running: this.isActive(r),
      uploadAllowed: !!this.account_ && this.settings.allowUpload,
      fileExists: r.local_path != null,
    });
    return { ...structuredClone(r), actions };
  }

  async history(q: HistoryQuery): Promise<HistoryEntry[]> {
    // The files of one batch, or the history's rows (a batch is one of them).
    let list = [...this.records.values()].filter((r) => (q.parent != null ? r.parent === q.parent : r.parent == null));
    if (q.peer) list = list.filter((r) => bareJid(r.peer_jid).toLowerCase() === q.peer!.toLowerCase());
    if (q.direction) list = list.filter((r) => r.direction === q.direction);
    if (q.state) list = list.filter((r) => r.state === q.state);
    if (q.nameContains) list = list.filter((r) => r.file_name.toLowerCase().includes(q.nameContains!.toLowerCase()));
    if (q.sinceMs != null) list = list.filter((r) => r.created_at >= q.sinceMs!);
    if (q.untilMs != null) list = list.filter((r) => r.created_at < q.untilMs!);
    list.sort((a, b) => b.created_at - a.created_at || b.id - a.id);
    return list.slice(0, q.limit ?? list.length).map((r) => this.entry(r));
  }

  async removeFromHistory(id: number): Promise<void> {
    this.need(id);
    // A batch goes with its files.
    for (const f of this.filesOf(id)) this.records.delete(f.id);
    this.records.delete(id);
  }

  async openFile(id: number): Promise<void> {
    console.info('[mock] open', this.need(id).local_path);
  }

  async showInFolder(id: number): Promise<void> {
    console.info('[mock] show in folder', this.need(id).local_path);
  }

  async getSettings(): Promise<Settings> {
    return structuredClone(this.settings);
  }

  async setSettings(settings: Settings): Promise<void> {
    this.settings = structuredClone(settings);
  }

  async pickFiles(): Promise<string[]> {
    return ['/home/alice/Documents/report.pdf', '/home/alice/Pictures/diagram.png'];
  }

  async pickFolder(): Promise<string | null> {
    return '/home/alice/Downloads/Skiff';
  }

  async takePendingFiles(): Promise<string[]> {
    const paths = this.pendingFiles;
    this.pendingFiles = [];
    return paths;
  }

  async onEvent(handler: (event: EngineEvent) => void): Promise<Unlisten> {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  private readonly focusHandlers = new Set<(id: number) => void>();

  async onFocusOffer(handler: (id: number) => void): Promise<Unlisten> {
    this.focusHandlers.add(handler);
    return () => this.focusHandlers.delete(handler);
  }

  /** What the shell does on a notification's "Open" (there are no notifications here). */
  focusOffer(id: number): void {
    for (const h of this.focusHandlers) h(id);
  }

  private readonly openFilesHandlers = new Set<(paths: string[]) => void>();

  async onOpenFiles(handler: (paths: string[]) => void): Promise<Unlisten> {
    this.openFilesHandlers.add(handler);
    return () => this.openFilesHandlers.delete(handler);
  }

  /**
   * What the shell does when a launch hands files over while the app runs: adds them
   * to the pending list and announces the whole list (`skiff://open-files`).
   */
  openFiles(paths: string[]): void {
    if (paths.length === 0) return;
    this.pendingFiles.push(...paths);
    for (const h of this.openFilesHandlers) h([...this.pendingFiles]);
  }

  /** In a browser: HTML drag and drop of files, reported like the Tauri webview does. */
  async onDragDrop(handler: (event: DragDropEvent) => void): Promise<Unlisten> {
    if (typeof window === 'undefined') return () => {};
    const dpr = () => window.devicePixelRatio || 1;
    const held = this.opts.drag;
    if (held) {
      this.later(300, () => {
        const position = { x: held.x * dpr(), y: held.y * dpr() };
        handler({ type: 'enter', paths: ['/home/alice/Pictures/photo.jpg'], position });
        handler({ type: 'over', position });
      });
    }
    const pos = (e: DragEvent) => ({ x: e.clientX * dpr(), y: e.clientY * dpr() });
    const hasFiles = (e: DragEvent) => !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
    let inside = 0;
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      if (inside++ === 0) handler({ type: 'enter', paths: [], position: pos(e) });
    };
    const over = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      handler({ type: 'over', position: pos(e) });
    };
    const leave = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      if (--inside <= 0) {
        inside = 0;
        handler({ type: 'leave' });
      }
    };
    const drop = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      inside = 0;
      const paths = [...(e.dataTransfer?.files ?? [])].map((f) => `/home/alice/${f.name}`);
      handler({ type: 'drop', paths, position: pos(e) });
    };
    window.addEventListener('dragenter', enter);
    window.addEventListener('dragover', over);
    window.addEventListener('dragleave', leave);
    window.addEventListener('drop', drop);
    return () => {
      window.removeEventListener('dragenter', enter);
      window.removeEventListener('dragover', over);
      window.removeEventListener('dragleave', leave);
      window.removeEventListener('drop', drop);
    };
  }
}
