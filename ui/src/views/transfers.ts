// Right pane: one card per transfer. Cards are made once and then patched field by field
// for the transfers the store marked dirty, so 100 busy transfers cost 100 small updates
// per frame at most.

import { h, keyed, setAttr, setHidden, setText } from '../dom';
import { bareJid, formatBytes, formatDuration, formatEta, formatProgressBytes, formatSpeed, percent } from '../format';
import { icon, type IconName } from '../icons';
import { language, t, tDynamic, type Key } from '../i18n';
import { displayName, isFinal, isLive, type AppState, type Dirty, type TransferView } from '../store';
import type { Direction, HistoryEntry, Protocol, Verification } from '../types';
import { BatchFileList, filesText } from './batchfiles';

export interface TransferActions {
  cancel(id: number): void;
  accept(id: number): void;
  decline(id: number): void;
  open(id: number): void;
  showInFolder(id: number): void;
  resume(id: number): void;
  retry(id: number): void;
  /** Send the failed transfer by HTTP upload instead. */
  uploadInstead(id: number): void;
  dismiss(id: number): void;
  clearFinished(): void;
  /** The files of batch `id` (`history({parent: id})`). */
  listFiles(id: number): Promise<HistoryEntry[]>;
}

type ActionName = 'accept' | 'decline' | 'cancel' | 'open' | 'showInFolder' | 'resume' | 'retry' | 'upload' | 'dismiss';

interface CardParts {
  dir: HTMLElement;
  name: HTMLElement;
  protocol: HTMLElement;
  route: HTMLElement;
  state: HTMLElement;
  stateIcon: HTMLElement;
  stateText: HTMLElement;
  peer: HTMLElement;
  bar: HTMLElement;
  fill: HTMLElement;
  bytes: HTMLElement;
  speed: HTMLElement;
  eta: HTMLElement;
  pct: HTMLElement;
  verified: HTMLElement;
  verifiedIcon: HTMLElement;
  verifiedText: HTMLElement;
  notices: HTMLElement;
  error: HTMLElement;
  buttons: Record<ActionName, HTMLButtonElement>;
  /** Made when the transfer turns out to be a batch. */
  batch: BatchParts | null;
}

/** What a batch card has besides a file's: the file count and the expandable file list. */
interface BatchParts {
  files: HTMLElement;
  toggle: HTMLButtonElement;
  toggleText: HTMLElement;
  region: HTMLElement;
  /** Made when first expanded. */
  list: BatchFileList | null;
  /** The files done and state last shown: a change reloads an open list. */
  seen: string;
  /** The language the list was labelled in. */
  lang: string;
}

const BUTTON_LABELS: Record<ActionName, Parameters<typeof t>[0]> = {
  accept: 'transfer.accept',
  decline: 'transfer.decline',
  cancel: 'transfer.cancel',
  open: 'transfer.open',
  showInFolder: 'transfer.showInFolder',
  resume: 'transfer.resume',
  retry: 'transfer.retry',
  upload: 'transfer.uploadInstead',
  dismiss: 'transfer.dismiss',
};

/** Tooltips of the buttons whose label needs explaining. */
const BUTTON_TIPS: Partial<Record<ActionName, Parameters<typeof t>[0]>> = {
  upload: 'transfer.uploadInsteadTip',
};

/** Route badge text: Direct / Proxy / In-band / Upload. */
export function routeLabel(route: string | null): string {
  if (!route) return '';
  return tDynamic(`route.${route}`, route);
}

export function routeTip(route: string | null, streamhost: string | null): string {
  if (!route) return '';
  if (route === 's5b-proxy' && streamhost) return t('route.tip.s5b-proxyVia', { host: streamhost });
  return tDynamic(`route.tip.${route}`, route);
}

const PROTOCOL_KEYS: Record<Protocol, { label: Key; tip: Key }> = {
  si: { label: 'protocol.si', tip: 'protocol.tip.si' },
  jingle: { label: 'protocol.jingle', tip: 'protocol.tip.jingle' },
};

/** Protocol badge text: SI / Jingle (names, the same in every language); '' for none. */
export function protocolLabel(protocol: Protocol | null): string {
  if (!protocol) return '';
  const keys = PROTOCOL_KEYS[protocol] as (typeof PROTOCOL_KEYS)[Protocol] | undefined;
  return keys ? t(keys.label) : protocol;
}

/** What set the transfer up, for the protocol badge's tooltip and accessible name. */
export function protocolTip(protocol: Protocol | null): string {
  if (!protocol) return '';
  const keys = PROTOCOL_KEYS[protocol] as (typeof PROTOCOL_KEYS)[Protocol] | undefined;
  return keys ? t(keys.tip) : protocol;
}

/**
 * The protocol badge (`protocolLabel`) with its tooltip and accessible name, for `protocol`
 * (hidden for none). Shown just before the route badge, the two reading as one:
 * "Jingle | Direct".
 */
export function setProtocolBadge(el: HTMLElement, protocol: Protocol | null): void {
  setText(el, protocolLabel(protocol));
  const tip = protocolTip(protocol) || null;
  setAttr(el, 'title', tip);
  setAttr(el, 'aria-label', tip);
  setAttr(el, 'data-protocol', protocol);
  setHidden(el, !protocol);
}

/** What a completed transfer says about its check: incoming `Verification`s, or for a sent file whether the receiver confirmed it. */
type VerifyKind = Verification | 'confirmed' | 'unconfirmed';

const VERIFY_KEYS: Record<VerifyKind, { badge: Key; line: Key; tip: Key }> = {
  sha256: { badge: 'verify.badge.sha256', line: 'verify.line.sha256', tip: 'verify.tip.sha256' },
  md5: { badge: 'verify.badge.md5', line: 'verify.line.md5', tip: 'verify.tip.md5' },
  none: { badge: 'verify.badge.none', line: 'verify.line.none', tip: 'verify.tip.none' },
  confirmed: { badge: 'verify.badge.confirmed', line: 'verify.line.confirmed', tip: 'verify.tip.confirmed' },
  unconfirmed: { badge: 'verify.badge.unconfirmed', line: 'verify.line.unconfirmed', tip: 'verify.tip.unconfirmed' },
};

export interface VerificationText {
  /** Short, for the state badge: "Verified", "Not confirmed", … */
  badge: string;
  /** "Received · verified (SHA-256)", "Sent · not confirmed", … */
  line: string;
  /** Why: what was checked (or not), for the tooltip. */
  tip: string;
  /** The content was checked (false: only the size; say so as a warning). */
  ok: boolean;
  icon: IconName;
}

/**
 * How a completed transfer is labelled, never a plain "Completed": received files say
 * what checked them (SHA-256, MD5, or only the size: "not verified"); sent files whether
 * the receiver confirmed them.
 */
export function verificationText(direction: Direction, verified: Verification): VerificationText {
  const ok = verified !== 'none';
  const kind: VerifyKind = direction === 'incoming' ? verified : ok ? 'confirmed' : 'unconfirmed';
  const keys = VERIFY_KEYS[kind];
  return { badge: t(keys.badge), line: t(keys.line), tip: t(keys.tip), ok, icon: ok ? 'shieldCheck' : 'alert' };
}

/** Puts icon `name` (or none) in `slot`, only when it changes. */
function setIcon(slot: HTMLElement, name: IconName | ''): void {
  if ((slot.dataset.icon ?? '') === name) return;
  slot.dataset.icon = name;
  slot.replaceChildren(...(name ? [icon(name)] : []));
}

/** Which buttons a card shows in its state. */
export function cardButtons(v: TransferView): ActionName[] {
  switch (v.state) {
    case 'offered':
      return v.direction === 'incoming' ? ['accept', 'decline'] : ['cancel'];
    case 'accepted':
    case 'active':
      return ['cancel'];
    case 'completed':
      return v.path ? ['open', 'showInFolder', 'dismiss'] : ['dismiss'];
    case 'interrupted':
    case 'failed':
      // A link that broke off is fetched again from where it stopped.
      if (v.direction !== 'outgoing') return v.resumable && v.route === 'oob' ? ['resume', 'dismiss'] : ['dismiss'];
      // SI failed for good: HTTP upload (when allowed) can still deliver the file.
      return v.uploadFallback ? [v.resumable ? 'resume' : 'retry', 'upload', 'dismiss'] : [v.resumable ? 'resume' : 'retry', 'dismiss'];
    case 'rejected':
    case 'cancelled':
      return v.direction === 'outgoing' ? ['retry', 'dismiss'] : ['dismiss'];
  }
}

/** The line under the progress bar: what is happening now. */
function statusLine(v: TransferView): { bytes: string; speed: string; eta: string } {
  const lang = language();
  switch (v.state) {
    case 'offered':
      return {
        bytes: formatBytes(v.size),
        speed: v.direction === 'outgoing' ? t('transfer.waitingPeer', { peer: v.peer }) : t('transfer.waitingYou'),
        eta: '',
      };
    case 'accepted':
      return { bytes: formatProgressBytes(v.bytes, v.total), speed: t('transfer.connecting'), eta: '' };
    case 'active':
      return {
        bytes: formatProgressBytes(v.bytes, v.total),
        speed: formatSpeed(v.bytesPerSec),
        eta: t('transfer.left', { eta: formatEta(v.bytes, v.total, v.bytesPerSec, lang) }),
      };
    case 'completed':
      // How it was checked has its own line (verificationText).
      return {
        bytes: formatBytes(v.size),
        speed: v.seconds != null ? t('transfer.doneIn', { duration: formatDuration(v.seconds, lang), speed: formatSpeed(v.bytesPerSec) }) : '',
        eta: '',
      };
    default:
      return { bytes: formatProgressBytes(v.bytes, v.total), speed: '', eta: '' };
  }
}

export class TransfersPane {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly meta: HTMLElement;
  private readonly clear: HTMLButtonElement;
  private readonly empty: HTMLElement;
  private readonly cards = new Map<number, HTMLElement>();
  private readonly parts = new Map<number, CardParts>();
  /** Cards patched since creation (tests bound the rendering work with it). */
  cardUpdates = 0;

  constructor(private readonly actions: TransferActions) {
    this.meta = h('span', { class: 'pane-meta' });
    this.clear = h('button', {
      type: 'button',
      class: 'btn btn-small btn-ghost',
      i18n: 'transfers.clearFinished',
      testid: 'clear-finished',
    });
    this.clear.addEventListener('click', () => this.actions.clearFinished());
    this.list = h('div', { class: 'transfer-list', role: 'list', testid: 'transfer-list' });
    this.empty = h(
      'div',
      { class: 'transfers-empty', hidden: true },
      icon('inbox', 'icon empty-icon'),
      h('p', { class: 'empty-title', i18n: 'transfers.emptyTitle' }),
      h('p', { class: 'empty-body', i18n: 'transfers.emptyBody' }),
    );
    this.list.addEventListener('click', (e) => this.onClick(e));
    this.el = h(
      'section',
      { class: 'transfers-pane', 'i18n-aria-label': 'transfers.title' },
      h('div', { class: 'pane-head' }, h('h2', { class: 'pane-title', i18n: 'transfers.title' }), this.meta, h('span', { class: 'spacer' }), this.clear),
      this.list,
      this.empty,
    );
  }

  /** Applies the changes in `dirty` (everything when `all`). */
  render(state: AppState, dirty: Dirty, all = false): void {
    if (all || dirty.order) {
      keyed(this.list, this.cards, state.order, (id) => this.createCard(id));
      for (const [id, p] of this.parts) {
        if (this.cards.has(id)) continue;
        p.batch?.list?.dispose();
        this.parts.delete(id);
      }
    }
    // Peer names come from the roster: a roster change re-labels every card.
    const ids = all || dirty.order || dirty.contacts ? state.order : dirty.transfers;
    for (const id of ids) {
      const v = state.transfers.get(id);
      if (v && this.cards.has(id)) this.update(v, state);
    }
    let active = 0;
    let finished = 0;
    for (const v of state.transfers.values()) {
      if (isLive(v.state)) active++;
      else if (isFinal(v.state)) finished++;
    }
    setText(this.meta, active ? t('transfers.active', { n: active }) : '');
    this.clear.hidden = finished === 0;
    setHidden(this.empty, state.order.length > 0);
  }

  private createCard(id: number): HTMLElement {
    const mk = (name: ActionName, primary = false) => {
      const b = h('button', {
        type: 'button',
        class: `btn btn-small ${primary ? 'btn-primary' : name === 'dismiss' ? 'btn-icon btn-ghost' : 'btn-secondary'}`,
        testid: `transfer-${id}-${name === 'showInFolder' ? 'show' : name}`,
      });
      b.dataset.action = name;
      if (name === 'dismiss') b.append(icon('x'));
      else b.append(h('span', { class: 'btn-label' }));
      return b;
    };
    const buttons: Record<ActionName, HTMLButtonElement> = {
      accept: mk('accept', true),
      decline: mk('decline'),
      cancel: mk('cancel'),
      open: mk('open', true),
      showInFolder: mk('showInFolder'),
      resume: mk('resume', true),
      retry: mk('retry', true),
      upload: mk('upload'),
      dismiss: mk('dismiss'),
    };
    const stateIcon = h('span', { class: 'badge-icon', hidden: true });
    const stateText = h('span', { class: 'badge-text' });
    const verifiedIcon = h('span', { class: 'verified-icon' });
    const verifiedText = h('span', { class: 'verified-text' });
    const parts: CardParts = {
      dir: h('span', { class: 'dir-icon' }),
      name: h('span', { class: 'transfer-name' }),
      // role=img: its name (the tooltip) is read instead of the bare "SI" / "Jingle".
      protocol: h('span', { class: 'badge protocol-badge', role: 'img', hidden: true, testid: `transfer-${id}-protocol` }),
      route: h('span', { class: 'badge route-badge', testid: `transfer-${id}-route` }),
      state: h('span', { class: 'badge state-badge', testid: `transfer-${id}-state` }, stateIcon, stateText),
      stateIcon,
      stateText,
      peer: h('span', { class: 'transfer-peer' }),
      bar: h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }),
      fill: h('div', { class: 'bar-fill' }),
      bytes: h('span', { class: 'transfer-bytes' }),
      speed: h('span', { class: 'transfer-speed' }),
      eta: h('span', { class: 'transfer-eta' }),
      pct: h('span', { class: 'transfer-pct' }),
      verified: h('span', { class: 'transfer-verified', hidden: true, testid: `transfer-${id}-verified` }, verifiedIcon, verifiedText),
      verifiedIcon,
      verifiedText,
      notices: h('ul', { class: 'transfer-notices', hidden: true }),
      error: h('p', { class: 'transfer-error', hidden: true, role: 'status' }),
      buttons,
      batch: null,
    };
    parts.bar.append(parts.fill);
    const card = h(
      'article',
      { class: 'card transfer-card', role: 'listitem', testid: `transfer-${id}` },
      h(
        'div',
        { class: 'card-row card-top' },
        parts.dir,
        h('div', { class: 'transfer-title' }, parts.name, parts.peer),
        h('div', { class: 'badges' }, h('span', { class: 'route-pair' }, parts.protocol, parts.route), parts.state),
      ),
      parts.bar,
      h(
        'div',
        { class: 'card-row card-bottom' },
        h('div', { class: 'card-stats' }, parts.pct, parts.bytes, parts.speed, parts.eta, parts.verified),
        h('div', { class: 'card-actions' }, ...Object.values(buttons)),
      ),
      parts.notices,
      parts.error,
    );
    card.dataset.id = String(id);
    this.parts.set(id, parts);
    return card;
  }

  private update(v: TransferView, state: AppState): void {
    const card = this.cards.get(v.id)!;
    const p = this.parts.get(v.id)!;
    this.cardUpdates++;
    card.dataset.state = v.state;
    card.dataset.direction = v.direction;

    const isBatch = v.files != null;
    if (isBatch && !p.batch) this.makeBatch(card, p, v.id);
    setAttr(card, 'data-kind', isBatch ? 'batch' : null);
    const dirLabel = isBatch
      ? t(v.direction === 'incoming' ? 'batch.incoming' : 'batch.outgoing')
      : t(v.direction === 'incoming' ? 'dir.incoming' : 'dir.outgoing');
    // A batch shows a folder, coloured by its direction like the arrows of single files.
    const glyph: IconName = isBatch ? 'folder' : v.direction === 'incoming' ? 'down' : 'up';
    if (p.dir.dataset.dir !== v.direction || p.dir.dataset.icon !== glyph) {
      p.dir.dataset.dir = v.direction;
      p.dir.dataset.icon = glyph;
      p.dir.replaceChildren(icon(glyph));
    }
    setAttr(p.dir, 'title', dirLabel);
    setAttr(p.dir, 'aria-label', dirLabel);
    setAttr(p.dir, 'role', 'img');
    setText(p.name, v.name);
    setAttr(p.name, 'title', v.path ?? v.name);
    const contact = state.contacts.get(bareJid(v.peer));
    const who = contact ? displayName(contact) : bareJid(v.peer);
    const peer = t(v.direction === 'incoming' ? 'transfer.from' : 'transfer.to', { peer: who });
    setText(p.peer, peer);
    setAttr(p.peer, 'title', v.peer);

    // Only with a route: the protocol badge is the first half of the route's pill.
    setProtocolBadge(p.protocol, v.route ? v.protocol : null);
    setText(p.route, routeLabel(v.route));
    setAttr(p.route, 'title', routeTip(v.route, v.streamhost));
    setHidden(p.route, !v.route);
    if (v.route) p.route.dataset.route = v.route;
    // A completed transfer says how it was checked, never a plain "Completed".
    const check = v.state === 'completed' ? verificationText(v.direction, v.verified) : null;
    const verified = check ? v.verified : null;
    setAttr(card, 'data-verified', verified);
    setText(p.stateText, check ? check.badge : t(`state.${v.state}`));
    p.state.dataset.state = v.state;
    setAttr(p.state, 'data-verified', verified);
    setAttr(p.state, 'title', check ? check.tip : null);
    setIcon(p.stateIcon, check ? check.icon : '');
    setHidden(p.stateIcon, !check);
    setHidden(p.verified, !check);
    if (check) {
      setIcon(p.verifiedIcon, check.icon);
      setText(p.verifiedText, check.line);
      setAttr(p.verified, 'title', check.tip);
      setAttr(p.verified, 'data-verified', v.verified);
    }

    const pc = v.state === 'completed' ? 100 : percent(v.bytes, v.total);
    const width = `${pc}%`;
    if (p.fill.style.width !== width) p.fill.style.width = width;
    setAttr(p.bar, 'aria-valuenow', String(pc));
    setAttr(p.bar, 'aria-label', t('transfer.progressLabel', { name: v.name, percent: pc }));
    p.bar.dataset.state = v.state;

    const line = statusLine(v);
    setText(p.bytes, line.bytes);
    setText(p.speed, line.speed);
    setText(p.eta, line.eta);
    setHidden(p.eta, !line.eta);
    setText(p.pct, v.state === 'active' || v.state === 'interrupted' ? `${pc}%` : '');

    if (v.notices.length) {
      const want = v.notices.join('\n');
      if (p.notices.dataset.text !== want) {
        p.notices.dataset.text = want;
        p.notices.replaceChildren(...v.notices.map((n) => h('li', null, icon('info'), h('span', null, n))));
      }
    }
    setHidden(p.notices, v.notices.length === 0 || isFinal(v.state));

    let err = '';
    if (v.state === 'failed' || v.state === 'interrupted' || v.state === 'rejected') err = v.error ?? '';
    if (v.state === 'interrupted' && v.direction === 'incoming') {
      const later = v.route === 'oob' ? t('transfer.linkResume') : t('transfer.willContinue', { peer: who });
      err = err ? `${err} — ${later}` : later;
    }
    if (v.state === 'offered' && v.offset > 0) err = t('transfer.resumedFrom', { bytes: formatBytes(v.offset) });
    setText(p.error, err);
    setHidden(p.error, !err);
    p.error.classList.toggle('is-info', v.state === 'offered');

    if (p.batch) this.updateBatch(v, p.batch);

    const show = new Set(cardButtons(v));
    for (const [name, b] of Object.entries(p.buttons) as [ActionName, HTMLButtonElement][]) {
      setHidden(b, !show.has(name));
      // Opening a batch opens its folder.
      const label = t(name === 'open' && isBatch ? 'transfer.openFolder' : BUTTON_LABELS[name]);
      if (name === 'dismiss') {
        setAttr(b, 'aria-label', label);
        setAttr(b, 'title', label);
      } else setText(b.querySelector('.btn-label')!, label);
      const tip = BUTTON_TIPS[name];
      if (tip) setAttr(b, 'title', t(tip));
    }
  }

  /** The parts a batch card adds: its file count, and its files behind a button. */
  private makeBatch(card: HTMLElement, p: CardParts, id: number): void {
    const files = h('span', { class: 'transfer-files', testid: `transfer-${id}-count` });
    const toggleText = h('span', { class: 'btn-label' });
    const regionId = `transfer-${id}-files-region`;
    const toggle = h(
      'button',
      { type: 'button', class: 'btn btn-small btn-ghost batch-toggle', testid: `transfer-${id}-expand`, 'aria-expanded': 'false', 'aria-controls': regionId },
      icon('chevronDown', 'icon batch-chevron'),
      toggleText,
    );
    toggle.dataset.toggle = 'files';
    const region = h('div', { class: 'batch-region', hidden: true });
    // The count right after the bytes; the button first among the actions.
    p.bytes.after(files);
    p.buttons.accept.parentElement!.prepend(toggle);
    card.append(region);
    p.batch = { files, toggle, toggleText, region, list: null, seen: '', lang: '' };
    region.id = regionId;
  }

  private updateBatch(v: TransferView, b: BatchParts): void {
    setText(b.files, filesText(v.files ?? 0, v.filesDone, v.state === 'completed'));
    const open = b.toggle.getAttribute('aria-expanded') === 'true';
    setText(b.toggleText, t('batch.showFiles'));
    setAttr(b.toggle, 'title', t(open ? 'batch.hideFilesOf' : 'batch.showFilesOf', { name: v.name }));
    setAttr(b.toggle, 'aria-label', t(open ? 'batch.hideFilesOf' : 'batch.showFilesOf', { name: v.name }));
    // A file done or the batch's end: an open list is loaded again. Its end shows at
    // once; files done meanwhile at most once a second.
    const seen = `${v.filesDone ?? ''}:${v.state}`;
    const moved = seen !== b.seen;
    b.seen = seen;
    if (!b.list) return;
    if (b.lang !== language()) {
      b.lang = language();
      b.list.relabel();
    }
    if (moved && open) b.list.refreshSoon(isFinal(v.state));
  }

  /** Shows or hides the files of batch `id`, loading them the first time. */
  toggleFiles(id: number, open?: boolean): void {
    const p = this.parts.get(id);
    const b = p?.batch;
    if (!b) return;
    const show = open ?? b.toggle.getAttribute('aria-expanded') !== 'true';
    setAttr(b.toggle, 'aria-expanded', String(show));
    this.cards.get(id)!.classList.toggle('is-expanded', show);
    setHidden(b.region, !show);
    if (show) {
      if (!b.list) {
        b.list = new BatchFileList({
          id: `transfer-${id}-files-box`,
          testid: `transfer-${id}-files`,
          rowTestid: (f) => `transfer-${id}-file-${f}`,
          states: true,
          load: () => this.actions.listFiles(id),
        });
        b.region.replaceChildren(b.list.el);
        b.lang = language();
        void b.list.load();
      } else {
        b.list.refreshSoon();
      }
    }
    const name = this.cards.get(id)!.querySelector('.transfer-name')!.textContent ?? '';
    const label = t(show ? 'batch.hideFilesOf' : 'batch.showFilesOf', { name });
    setAttr(b.toggle, 'title', label);
    setAttr(b.toggle, 'aria-label', label);
  }

  private onClick(e: MouseEvent): void {
    const toggle = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-toggle]');
    if (toggle) {
      const card = toggle.closest<HTMLElement>('[data-id]');
      if (card) this.toggleFiles(Number(card.dataset.id));
      return;
    }
    const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-action]');
    const card = b?.closest<HTMLElement>('[data-id]');
    if (!b || !card) return;
    const id = Number(card.dataset.id);
    const a = this.actions;
    switch (b.dataset.action as ActionName) {
      case 'accept':
        return a.accept(id);
      case 'decline':
        return a.decline(id);
      case 'cancel':
        return a.cancel(id);
      case 'open':
        return a.open(id);
      case 'showInFolder':
        return a.showInFolder(id);
      case 'resume':
        return a.resume(id);
      case 'retry':
        return a.retry(id);
      case 'upload':
        return a.uploadInstead(id);
      case 'dismiss':
        return a.dismiss(id);
    }
  }
}
