// The server-certificate dialog of a sign-in refused with `certificate-untrusted` or
// `certificate-changed`: what the certificate is (server, subject, issuer, validity,
// names, SHA-256 fingerprint) and why it is not trusted; "Trust …" or Cancel.
// Cancel is the default: it has the focus, Esc and Enter on it cancel. A changed
// certificate is a warning (a band in the warning colour, `data-changed="true"`): the
// server changed it, or someone is in the middle.

import { h } from '../dom';
import { formatDateTime } from '../format';
import { icon } from '../icons';
import { language, t, type Key } from '../i18n';
import type { Untrusted, UntrustedReason } from '../types';
import { Modal } from './modal';

/** One sentence per reason. */
const REASONS: Record<UntrustedReason, Key> = {
  'self-signed': 'cert.reason.self-signed',
  'unknown-issuer': 'cert.reason.unknown-issuer',
  'wrong-name': 'cert.reason.wrong-name',
  expired: 'cert.reason.expired',
  'not-yet-valid': 'cert.reason.not-yet-valid',
  revoked: 'cert.reason.revoked',
  invalid: 'cert.reason.invalid',
};

/** Why the certificate is not trusted, in the UI language (the shell's words for a reason it does not know). */
export function reasonText(u: Untrusted): string {
  const key = REASONS[u.reason];
  return key ? t(key, { host: u.host }) : u.detail;
}

/**
 * `SHA256:AB:CD:…` as groups of four pairs for reading: each group but the last keeps
 * its trailing colon, so that selecting and copying the groups gives `AB:CD:…` as
 * `openssl x509 -fingerprint -sha256` prints it.
 */
export function fingerprintGroups(fingerprint: string, pairsPerGroup = 4): string[] {
  const body = fingerprint.replace(/^sha-?256[:/ ]/i, '');
  const pairs = body.split(':').filter(Boolean);
  // Not in pairs (an unexpected format): show it as it came.
  if (pairs.length < 2) return [body];
  const groups: string[] = [];
  for (let i = 0; i < pairs.length; i += pairsPerGroup) {
    const last = i + pairsPerGroup >= pairs.length;
    groups.push(pairs.slice(i, i + pairsPerGroup).join(':') + (last ? '' : ':'));
  }
  return groups;
}

/** Where `now` (Unix ms) stands in the certificate's validity; `unknown` when it has none. */
export function validity(u: Untrusted, now: number): 'valid' | 'expired' | 'not-yet-valid' | 'unknown' {
  const { not_before, not_after } = u.certificate;
  if (!not_before && !not_after) return 'unknown';
  if (not_after && now > not_after * 1000) return 'expired';
  if (not_before && now < not_before * 1000) return 'not-yet-valid';
  return 'valid';
}

export class CertificateDialog {
  private readonly modal: Modal;
  private readonly band: HTMLElement;
  private readonly headIcon: HTMLElement;
  private readonly title: HTMLElement;
  private readonly desc: HTMLElement;
  private readonly details: HTMLElement;
  private readonly fingerprint: HTMLElement;
  private readonly advice: HTMLElement;
  private readonly trust: HTMLButtonElement;
  private readonly cancel: HTMLButtonElement;
  private current: Untrusted | null = null;
  private resolve: ((trust: boolean) => void) | null = null;

  constructor(
    host: HTMLElement,
    background: () => HTMLElement[],
    private readonly now: () => number = Date.now,
  ) {
    this.modal = new Modal(host, background, {
      labelledBy: 'cert-title',
      describedBy: 'cert-desc',
      testid: 'cert-dialog',
      className: 'cert-modal',
      onEscape: () => this.answer(false),
    });
    this.band = h('div', { class: 'cert-band', hidden: true }, icon('alert'), h('span', { i18n: 'cert.band' }));
    this.headIcon = h('span', { class: 'modal-icon cert-icon' });
    this.title = h('h2', { id: 'cert-title', class: 'modal-title' });
    this.desc = h('div', { id: 'cert-desc', class: 'cert-desc' });
    this.details = h('dl', { class: 'cert-details' });
    this.fingerprint = h('div', { class: 'cert-fingerprint', testid: 'cert-fingerprint' });
    this.advice = h('p', { class: 'cert-advice' });
    this.trust = h('button', { type: 'button', class: 'btn btn-secondary cert-trust', testid: 'cert-trust' });
    this.trust.addEventListener('click', () => this.answer(true));
    this.cancel = h('button', { type: 'button', class: 'btn btn-primary', i18n: 'common.cancel', testid: 'cert-cancel' });
    this.cancel.addEventListener('click', () => this.answer(false));
    this.modal.box.append(
      this.band,
      h(
        'div',
        { class: 'cert-body' },
        h('div', { class: 'modal-head' }, this.headIcon, this.title),
        this.desc,
        this.details,
        h('div', { class: 'cert-fingerprint-block' }, h('div', { class: 'cert-fingerprint-label', id: 'cert-fingerprint-label', i18n: 'cert.fingerprint' }), this.fingerprint),
        this.advice,
        h('div', { class: 'modal-foot' }, h('span', { class: 'spacer' }), this.trust, this.cancel),
      ),
    );
    this.fingerprint.setAttribute('aria-labelledby', 'cert-fingerprint-label');
  }

  get isOpen(): boolean {
    return this.modal.isOpen;
  }

  /**
   * Shows the certificate; resolves true when the user trusts it, false on Cancel or
   * Esc. A second question while one is open answers the first with false.
   */
  ask(u: Untrusted): Promise<boolean> {
    this.resolve?.(false);
    this.current = u;
    this.render();
    this.modal.show(this.cancel);
    return new Promise((resolve) => (this.resolve = resolve));
  }

  /** The texts again, in the current language. */
  relabel(): void {
    if (this.current && this.modal.isOpen) this.render();
  }

  private answer(trust: boolean): void {
    const resolve = this.resolve;
    this.resolve = null;
    this.current = null;
    this.modal.hide();
    resolve?.(trust);
  }

  private render(): void {
    const u = this.current!;
    const c = u.certificate;
    const changed = u.changed;
    const box = this.modal.box;
    box.dataset.changed = String(changed);
    box.dataset.reason = u.reason;
    box.classList.toggle('is-changed', changed);
    this.band.hidden = !changed;
    this.headIcon.replaceChildren(icon(changed ? 'alert' : 'lock'));
    this.title.textContent = t(changed ? 'cert.titleChanged' : 'cert.title');

    const why = h('p', { class: 'cert-why', testid: 'cert-reason' }, reasonText(u));
    this.desc.replaceChildren(
      changed
        ? h('p', { class: 'cert-warning', testid: 'cert-warning' }, t('cert.changedWarning', { host: u.host }), ' ', h('strong', null, t('cert.changedAdvice')))
        : h('p', { class: 'cert-intro' }, t('cert.intro', { host: u.host })),
      why,
    );

    const row = (key: Key, ...value: (Node | string)[]) => h('div', { class: 'dl-row' }, h('dt', null, t(key)), h('dd', null, ...value));
    const text = (s: string, cls = '') => h('span', { class: `cert-value ${cls}`.trim() }, s || t('cert.unknown'));
    const rows: HTMLElement[] = [
      row('cert.server', text(u.host, 'cert-host')),
      row('cert.subject', text(c.subject, 'cert-dn')),
      row('cert.issuer', c.self_signed ? text(t('cert.issuerSelf')) : text(c.issuer, 'cert-dn')),
    ];
    const when = validity(u, this.now());
    if (when !== 'unknown') {
      const date = (secs: number) => (secs ? formatDateTime(secs * 1000, language()) : '—');
      const flag =
        when === 'expired'
          ? h('span', { class: 'badge cert-flag', testid: 'cert-expired' }, t('cert.expired'))
          : when === 'not-yet-valid'
            ? h('span', { class: 'badge cert-flag', testid: 'cert-not-yet-valid' }, t('cert.notYetValid'))
            : null;
      const range = h('span', { class: 'cert-value cert-dates' }, t('cert.validRange', { from: date(c.not_before), until: date(c.not_after) }));
      const dd = flag ? [range, flag] : [range];
      const r = row('cert.validity', ...dd);
      r.dataset.validity = when;
      rows.push(r);
    }
    rows.push(
      row(
        'cert.names',
        c.names.length
          ? h('span', { class: 'cert-names' }, ...c.names.map((n) => h('span', { class: 'cert-name' }, n)))
          : text(t('cert.noNames')),
      ),
    );
    this.details.replaceChildren(...rows);

    this.fingerprint.replaceChildren(...fingerprintGroups(c.fingerprint).map((g) => h('span', { class: 'cert-fp-group' }, g)));
    this.fingerprint.dataset.fingerprint = c.fingerprint;
    this.advice.textContent = t('cert.advice');
    this.advice.hidden = changed; // the warning above says what to do then
    this.trust.textContent = t(changed ? 'cert.trustNew' : 'cert.trust');
  }
}
