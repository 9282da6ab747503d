// First run: sign in with an XMPP address and password; advanced server, TLS mode and
// CA file. Enter submits; errors from the shell come back as { code, message }.
// A server certificate that is not trusted (`certificate-untrusted`) or not the one
// trusted before (`certificate-changed`) comes with `untrusted`: the user is shown it
// (`confirmCertificate`) and may trust it, which signs in again with the same values
// and its fingerprint (`trustFingerprint`), pinned for the account from then on.
// "Remember password" (only with "Remember me") asks the shell to keep the password in
// the OS keyring, never in a file (`rememberPassword`); unticked, a kept one is forgotten.
// The remembered account fills the form, ticks it when the keyring holds the password,
// and brings why signing in by itself at start failed (`signInError`).

import { toCommandError } from '../backend';
import { h } from '../dom';
import { hasKey, LANGUAGES, t } from '../i18n';
import type { AppError, Language, RememberedView, SignInArgs, TlsMode, Untrusted } from '../types';

export interface SignInActions {
  signIn(args: SignInArgs): Promise<void>;
  setLanguage(lang: Language): void;
  language(): Language;
  /** Shows a refused server certificate; true when the user trusts it. */
  confirmCertificate(untrusted: Untrusted): Promise<boolean>;
}

/** The codes of a refused server certificate, which come with `untrusted`. */
export const CERTIFICATE_CODES: readonly string[] = ['certificate-untrusted', 'certificate-changed'];

/**
 * The certificate to ask the user about after a failed sign-in with `args`, or null:
 * only for the certificate codes with `untrusted`, and not for the certificate the
 * user just trusted (the shell refusing it again would ask for ever).
 */
export function certificateQuestion(e: AppError, args: SignInArgs): Untrusted | null {
  const u = e.untrusted;
  if (!u || !CERTIFICATE_CODES.includes(e.code)) return null;
  if (args.trustFingerprint && sameFingerprint(args.trustFingerprint, u.certificate.fingerprint)) return null;
  return u;
}

function sameFingerprint(a: string, b: string): boolean {
  const norm = (s: string) => s.trim().toUpperCase().replace(/^SHA-?256[:/ ]/, '').replace(/[: ]/g, '');
  return norm(a) === norm(b);
}

/** Local checks before asking the server; returns an i18n key or null. */
export function validateSignIn(jid: string, password: string): 'signin.missingJid' | 'signin.badJid' | 'signin.missingPassword' | null {
  const j = jid.trim();
  if (!j) return 'signin.missingJid';
  const at = j.indexOf('@');
  if (at <= 0 || at === j.length - 1 || /\s/.test(j)) return 'signin.badJid';
  if (!password) return 'signin.missingPassword';
  return null;
}

/** The headline for an error code (localised), the shell's message under it. */
export function describeError(e: AppError): { title: string; detail: string } {
  const key = `error.${e.code}`;
  if (hasKey(key)) {
    const title = t(key);
    return { title, detail: e.message && e.message !== title ? e.message : '' };
  }
  return { title: e.message || t('error.generic'), detail: '' };
}

/**
 * `SignedIn.password_note` for the user: a localised headline, and the shell's sentence
 * under it (capitalised, ending with a full stop).
 */
export function describePasswordNote(note: string): { title: string; detail: string } {
  let detail = note.trim();
  if (detail) detail = detail[0]!.toUpperCase() + detail.slice(1);
  if (detail && !/[.!?。！？]$/.test(detail)) detail += '.';
  return { title: t('signin.passwordNotSaved'), detail };
}

export class SignInView {
  readonly el: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly jid: HTMLInputElement;
  private readonly password: HTMLInputElement;
  private readonly remember: HTMLInputElement;
  private readonly rememberPassword: HTMLInputElement;
  private readonly rememberPasswordRow: HTMLElement;
  /** "Remember password" as the user left it, restored when "Remember me" is ticked again. */
  private wantsPasswordKept = false;
  private readonly advanced: HTMLDetailsElement;
  private readonly server: HTMLInputElement;
  private readonly tls: HTMLSelectElement;
  private readonly caFile: HTMLInputElement;
  private readonly submit: HTMLButtonElement;
  private readonly error: HTMLElement;
  private readonly errorTitle: HTMLElement;
  private readonly errorDetail: HTMLElement;
  private readonly lang: HTMLSelectElement;
  private busy = false;
  /** The certificate dialog is open for this form. */
  private asking = false;

  constructor(private readonly actions: SignInActions) {
    this.jid = h('input', {
      id: 'signin-jid',
      class: 'input',
      type: 'email',
      autocomplete: 'username',
      spellcheck: 'false',
      autocapitalize: 'off',
      required: true,
      'i18n-placeholder': 'signin.jidPlaceholder',
      testid: 'signin-jid',
    });
    this.password = h('input', { id: 'signin-password', class: 'input', type: 'password', autocomplete: 'current-password', required: true, testid: 'signin-password' });
    this.remember = h('input', { id: 'signin-remember', type: 'checkbox', checked: true, testid: 'signin-remember' });
    this.rememberPassword = h('input', {
      id: 'signin-remember-password',
      type: 'checkbox',
      'aria-describedby': 'signin-remember-password-help',
      testid: 'signin-remember-password',
    });
    this.remember.addEventListener('change', () => this.syncRememberPassword());
    this.rememberPassword.addEventListener('change', () => (this.wantsPasswordKept = this.rememberPassword.checked));
    this.rememberPasswordRow = h(
      'div',
      { class: 'check-row check-sub' },
      this.rememberPassword,
      h('label', { for: 'signin-remember-password', i18n: 'signin.rememberPassword' }),
    );
    this.server = h('input', { id: 'signin-server', class: 'input', type: 'text', spellcheck: 'false', autocomplete: 'off', 'i18n-placeholder': 'signin.serverPlaceholder', testid: 'signin-server' });
    this.tls = h('select', { id: 'signin-tls', class: 'input', testid: 'signin-tls' });
    this.caFile = h('input', { id: 'signin-ca', class: 'input', type: 'text', spellcheck: 'false', autocomplete: 'off', 'i18n-placeholder': 'signin.caFilePlaceholder', testid: 'signin-ca' });
    this.submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', testid: 'signin-submit' });
    this.errorTitle = h('strong', { class: 'error-title' });
    this.errorDetail = h('span', { class: 'error-detail' });
    this.error = h('div', { class: 'form-error', role: 'alert', hidden: true, testid: 'signin-error' }, this.errorTitle, this.errorDetail);
    this.lang = h('select', { class: 'input input-compact', testid: 'signin-language', 'i18n-aria-label': 'common.language' }, ...LANGUAGES.map((l) => h('option', { value: l, lang: l }, t(`lang.${l}`))));
    this.lang.addEventListener('change', () => this.actions.setLanguage(this.lang.value as Language));

    const field = (id: string, key: Parameters<typeof t>[0], control: HTMLElement, help?: Parameters<typeof t>[0]) =>
      h('div', { class: 'field' }, h('label', { class: 'field-label', for: id, i18n: key }), control, help ? h('p', { class: 'field-help', i18n: help }) : null);

    this.advanced = h(
      'details',
      { class: 'disclosure', testid: 'signin-advanced' },
      h('summary', { i18n: 'signin.advanced' }),
      h(
        'div',
        { class: 'disclosure-body' },
        field('signin-server', 'signin.server', this.server, 'signin.serverHelp'),
        field('signin-tls', 'signin.tls', this.tls),
        field('signin-ca', 'signin.caFile', this.caFile, 'signin.caHelp'),
      ),
    );

    this.form = h(
      'form',
      { class: 'signin-form', novalidate: true, 'aria-labelledby': 'signin-title' },
      h('div', { class: 'brand-mark', 'aria-hidden': 'true' }, 'S'),
      h('h1', { id: 'signin-title', class: 'signin-title', i18n: 'signin.title' }),
      h('p', { class: 'signin-sub', i18n: 'signin.subtitle' }),
      field('signin-jid', 'signin.jid', this.jid),
      field('signin-password', 'signin.password', this.password),
      h(
        'div',
        { class: 'check-group' },
        h('div', { class: 'check-row' }, this.remember, h('label', { for: 'signin-remember', i18n: 'signin.remember' })),
        this.rememberPasswordRow,
        h('p', { id: 'signin-remember-password-help', class: 'field-help check-help', i18n: 'signin.rememberPasswordHelp' }),
      ),
      this.advanced,
      this.error,
      this.submit,
    );
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.onSubmit();
    });
    this.el = h('main', { class: 'signin', testid: 'signin' }, h('div', { class: 'signin-card' }, this.form), h('div', { class: 'signin-lang' }, this.lang));
    this.syncRememberPassword();
    this.relabel();
  }

  /** "Remember password" only with "Remember me": unticked and disabled without it. */
  private syncRememberPassword(): void {
    const on = this.remember.checked;
    this.rememberPassword.disabled = !on;
    this.rememberPassword.checked = on && this.wantsPasswordKept;
    this.rememberPasswordRow.classList.toggle('is-disabled', !on);
  }

  /** Texts built from t() at run time. */
  relabel(): void {
    const v = this.tls.value || 'starttls';
    this.tls.replaceChildren(
      ...(['starttls', 'direct', 'plaintext'] as TlsMode[]).map((m) => h('option', { value: m }, t(`signin.tls.${m}`))),
    );
    this.tls.value = v;
    this.submit.textContent = t(this.busy ? 'signin.busy' : 'signin.submit');
    this.lang.value = this.actions.language();
  }

  focus(): void {
    (this.jid.value ? this.password : this.jid).focus();
  }

  /** Shows an error that ended the session (a `fatal` event), e.g. a changed password. */
  showError(e: AppError | null): void {
    if (!e) {
      this.error.hidden = true;
      return;
    }
    const d = describeError(e);
    this.errorTitle.textContent = d.title;
    this.errorDetail.textContent = d.detail;
    this.errorDetail.hidden = !d.detail;
    this.error.dataset.code = e.code;
    this.error.hidden = false;
    // Where the fix may be: the TLS mode, or a CA file that vouches for the certificate.
    if (e.code === 'tls' || e.code === 'certificate-untrusted') this.advanced.open = true;
  }

  prefill(jid: string): void {
    if (!this.jid.value) this.jid.value = jid;
  }

  /**
   * The account "Remember me" kept: everything but the password ("Remember password"
   * ticked when the keyring holds it). The app shows its `signInError` (`showError`).
   */
  prefillAccount(r: RememberedView): void {
    this.jid.value = r.jid;
    this.server.value = r.server ?? '';
    if ((['starttls', 'direct', 'plaintext'] as string[]).includes(r.tls)) this.tls.value = r.tls;
    this.caFile.value = r.caFile ?? '';
    this.remember.checked = true;
    this.wantsPasswordKept = r.passwordSaved;
    this.syncRememberPassword();
    // Show the advanced fields when they hold something the user set.
    if (this.server.value || this.caFile.value || this.tls.value !== 'starttls') this.advanced.open = true;
  }

  private setBusy(b: boolean): void {
    this.busy = b;
    this.submit.disabled = b;
    this.submit.textContent = t(b ? 'signin.busy' : 'signin.submit');
    this.form.setAttribute('aria-busy', String(b));
  }

  private async onSubmit(): Promise<void> {
    if (this.busy || this.asking) return;
    const problem = validateSignIn(this.jid.value, this.password.value);
    if (problem) {
      this.showError({ code: 'invalid', message: t(problem) });
      (problem === 'signin.missingPassword' ? this.password : this.jid).focus();
      return;
    }
    const args: SignInArgs = {
      jid: this.jid.value.trim(),
      password: this.password.value,
      tls: this.tls.value as TlsMode,
      remember: this.remember.checked,
      // Always said: false makes the shell forget a password it kept.
      rememberPassword: this.remember.checked && this.rememberPassword.checked,
    };
    const server = this.server.value.trim();
    if (server) args.server = server;
    const ca = this.caFile.value.trim();
    if (ca) args.caFile = ca;
    await this.attempt(args);
  }

  /** Signs in with `args`; a refused certificate is shown, and trusting it tries again. */
  private async attempt(args: SignInArgs): Promise<void> {
    this.showError(null);
    this.setBusy(true);
    let err: AppError;
    try {
      await this.actions.signIn(args);
      this.password.value = '';
      return;
    } catch (e) {
      err = toCommandError(e);
    } finally {
      this.setBusy(false);
    }
    // The error stays on the form behind the dialog, and after Cancel.
    this.showError(err);
    const untrusted = certificateQuestion(err, args);
    if (untrusted) {
      this.asking = true;
      let trust = false;
      try {
        trust = await this.actions.confirmCertificate(untrusted);
      } finally {
        this.asking = false;
      }
      if (trust) return this.attempt({ ...args, trustFingerprint: untrusted.certificate.fingerprint });
      this.submit.focus();
      return;
    }
    if (err.code === 'auth-failed') {
      this.password.focus();
      this.password.select();
    } else if (err.code === 'tls') {
      this.tls.focus();
    }
  }
}
