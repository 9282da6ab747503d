// Settings: download folder, auto-accept size, files from strangers (ask / refuse),
// methods and their order, HTTP upload and HTTP links, proxy JID, language, theme,
// streamhost addresses. Language and theme preview live; Cancel
// puts back what was saved.

import { h } from '../dom';
import { icon } from '../icons';
import { LANGUAGES, t, type Key } from '../i18n';
import type { Language, Method, Settings, StrangerPolicy, Theme } from '../types';
import { Modal } from './modal';

export interface SettingsActions {
  pickFolder(): Promise<string | null>;
  save(s: Settings): Promise<boolean>;
  /** Live preview of language and theme. */
  preview(lang: Language, theme: Theme): void;
}

const ALL_METHODS: Method[] = ['s5b', 'ibb'];
const STRANGER_POLICIES: [StrangerPolicy, Key][] = [
  ['ask', 'settings.strangersAsk'],
  ['refuse', 'settings.strangersRefuse'],
];
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Splits a byte count into the number and unit the form shows. */
export function sizeToForm(bytes: number): { value: number; unit: 'MiB' | 'GiB' } {
  if (bytes >= GIB && bytes % GIB === 0) return { value: bytes / GIB, unit: 'GiB' };
  return { value: Math.round((bytes / MIB) * 100) / 100, unit: 'MiB' };
}

export function formToSize(value: number, unit: 'MiB' | 'GiB'): number {
  if (!Number.isFinite(value) || value <= 0) return 0;
  return Math.round(value * (unit === 'GiB' ? GIB : MIB));
}

/** IPv4 or IPv6 literal (no brackets, no port). */
export function isIpAddress(s: string): boolean {
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
  if (v4.test(s)) return true;
  if (!s.includes(':') || !/^[0-9a-fA-F:.]+$/.test(s)) return false;
  const double = s.split('::').length - 1;
  if (double > 1) return false;
  const groups = s.split(':').filter((g) => g !== '');
  return groups.length <= 8 && groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g) || v4.test(g)) && (double === 1 || groups.length === 8);
}

export class SettingsDialog {
  private readonly modal: Modal;
  private saved: Settings | null = null;
  private draft: Settings | null = null;
  private readonly folder: HTMLElement;
  private readonly autoOn: HTMLInputElement;
  private readonly autoValue: HTMLInputElement;
  private readonly autoUnit: HTMLSelectElement;
  private readonly methods: HTMLOListElement;
  private readonly allowUpload: HTMLInputElement;
  private readonly serveHttp: HTMLInputElement;
  private readonly strangers: HTMLSelectElement;
  private readonly proxy: HTMLInputElement;
  private readonly lang: HTMLSelectElement;
  private readonly theme: HTMLSelectElement;
  private readonly hosts: HTMLTextAreaElement;
  private readonly error: HTMLElement;
  private readonly saveBtn: HTMLButtonElement;

  constructor(
    host: HTMLElement,
    background: () => HTMLElement[],
    private readonly actions: SettingsActions,
  ) {
    this.modal = new Modal(host, background, {
      labelledBy: 'settings-title',
      testid: 'settings-dialog',
      className: 'settings-modal',
      onEscape: () => this.cancel(),
    });
    this.folder = h('span', { class: 'folder-path', testid: 'settings-download-dir' });
    const change = h('button', { type: 'button', class: 'btn btn-small btn-secondary', i18n: 'common.change', testid: 'settings-change-dir' });
    change.addEventListener('click', async () => {
      const dir = await this.actions.pickFolder();
      if (dir && this.draft) {
        this.draft.downloadDir = dir;
        this.fill();
      }
      change.focus();
    });
    this.autoOn = h('input', { type: 'checkbox', id: 'settings-auto', testid: 'settings-auto-accept' });
    this.autoValue = h('input', { type: 'number', class: 'input input-num', min: '1', step: '1', testid: 'settings-auto-size', 'i18n-aria-label': 'settings.autoAcceptUpTo' });
    this.autoUnit = h('select', { class: 'input input-unit', testid: 'settings-auto-unit', 'i18n-aria-label': 'settings.autoAcceptUpTo' }, h('option', { value: 'MiB' }, 'MiB'), h('option', { value: 'GiB' }, 'GiB'));
    this.autoOn.addEventListener('change', () => {
      this.autoValue.disabled = this.autoUnit.disabled = !this.autoOn.checked;
      if (this.autoOn.checked && !(Number(this.autoValue.value) > 0)) this.autoValue.value = '100';
    });
    this.methods = h('ol', { class: 'method-list', testid: 'settings-methods' });
    this.allowUpload = h('input', { type: 'checkbox', id: 'settings-allow-upload', testid: 'settings-allow-upload', 'aria-describedby': 'settings-allow-upload-help' });
    this.serveHttp = h('input', { type: 'checkbox', id: 'settings-serve-http', testid: 'settings-serve-http', 'aria-describedby': 'settings-serve-http-help' });
    this.strangers = h(
      'select',
      { class: 'input', id: 'settings-strangers', testid: 'settings-strangers', 'aria-describedby': 'settings-strangers-help' },
      ...STRANGER_POLICIES.map(([p, key]) => h('option', { value: p, i18n: key })),
    );
    this.proxy = h('input', { type: 'text', class: 'input', id: 'settings-proxy', 'i18n-placeholder': 'settings.proxyPlaceholder', testid: 'settings-proxy', spellcheck: 'false', autocomplete: 'off' });
    this.lang = h('select', { class: 'input', id: 'settings-lang', testid: 'language-select' }, ...LANGUAGES.map((l) => h('option', { value: l, lang: l }, t(`lang.${l}`))));
    this.theme = h('select', { class: 'input', id: 'settings-theme', testid: 'theme-select' });
    const preview = () => this.actions.preview(this.lang.value as Language, this.theme.value as Theme);
    this.lang.addEventListener('change', () => {
      preview();
      this.fillThemeOptions();
      this.renderMethods();
    });
    this.theme.addEventListener('change', preview);
    this.hosts = h('textarea', { class: 'input', id: 'settings-hosts', rows: '3', 'i18n-placeholder': 'settings.streamhostsPlaceholder', testid: 'settings-streamhosts', spellcheck: 'false' });
    this.error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    this.saveBtn = h('button', { type: 'button', class: 'btn btn-primary', i18n: 'common.save', testid: 'settings-save' });
    this.saveBtn.addEventListener('click', () => void this.save());
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', i18n: 'common.cancel', testid: 'settings-cancel' });
    cancel.addEventListener('click', () => this.cancel());
    const close = h('button', { type: 'button', class: 'btn btn-icon btn-ghost', 'i18n-aria-label': 'common.close', 'i18n-title': 'common.close' }, icon('x'));
    close.addEventListener('click', () => this.cancel());

    const section = (title: Key, ...body: (HTMLElement | null)[]) =>
      h('section', { class: 'settings-section' }, h('h3', { class: 'section-title', i18n: title }), ...body);
    const check = (box: HTMLInputElement, labelKey: Key, help: Key) =>
      h(
        'div',
        { class: 'field' },
        h('div', { class: 'check-row' }, box, h('label', { for: box.id, i18n: labelKey })),
        h('p', { class: 'field-help indent', id: `${box.id}-help`, i18n: help }),
      );
    const field = (labelKey: Key, forId: string, control: HTMLElement, help?: Key) =>
      h(
        'div',
        { class: 'field' },
        h('label', { class: 'field-label', for: forId, i18n: labelKey }),
        control,
        help ? h('p', { class: 'field-help', i18n: help }) : null,
      );

    this.modal.box.append(
      h('div', { class: 'modal-head' }, h('h2', { id: 'settings-title', class: 'modal-title', i18n: 'settings.title' }), h('span', { class: 'spacer' }), close),
      h(
        'div',
        { class: 'modal-body settings-body' },
        section(
          'settings.receiving',
          h('div', { class: 'field' }, h('span', { class: 'field-label', i18n: 'settings.downloadDir' }), h('div', { class: 'folder-row' }, icon('folder'), this.folder, change)),
          h(
            'div',
            { class: 'field' },
            h('div', { class: 'check-row' }, this.autoOn, h('label', { for: 'settings-auto', i18n: 'settings.autoAccept' })),
            h('div', { class: 'inline-row indent' }, h('span', { class: 'muted', i18n: 'settings.autoAcceptUpTo' }), this.autoValue, this.autoUnit),
            h('p', { class: 'field-help indent', i18n: 'settings.autoAcceptHelp' }),
          ),
          h(
            'div',
            { class: 'field' },
            h('label', { class: 'field-label', for: 'settings-strangers', i18n: 'settings.strangers' }),
            this.strangers,
            h('p', { class: 'field-help', id: 'settings-strangers-help', i18n: 'settings.strangersHelp' }),
          ),
        ),
        section(
          'settings.appearance',
          h('div', { class: 'field-grid' }, field('settings.language', 'settings-lang', this.lang), field('settings.theme', 'settings-theme', this.theme)),
        ),
        section(
          'settings.network',
          h('div', { class: 'field' }, h('span', { class: 'field-label', i18n: 'settings.methods' }), this.methods, h('p', { class: 'field-help', i18n: 'settings.methodsHelp' })),
          check(this.allowUpload, 'settings.allowUpload', 'settings.allowUploadHelp'),
          check(this.serveHttp, 'settings.serveHttp', 'settings.serveHttpHelp'),
          field('settings.proxy', 'settings-proxy', this.proxy, 'settings.proxyHelp'),
          h(
            'details',
            { class: 'disclosure' },
            h('summary', { i18n: 'settings.advanced' }),
            field('settings.streamhosts', 'settings-hosts', this.hosts, 'settings.streamhostsHelp'),
          ),
        ),
      ),
      h('div', { class: 'modal-foot' }, this.error, h('span', { class: 'spacer' }), cancel, this.saveBtn),
    );
  }

  get isOpen(): boolean {
    return this.modal.isOpen;
  }

  open(current: Settings): void {
    this.saved = structuredClone(current);
    this.draft = structuredClone(current);
    this.error.hidden = true;
    this.fill();
    this.modal.show(this.modal.box.querySelector<HTMLElement>('[data-testid="settings-change-dir"]'));
  }

  /** Re-labels texts built from t() (language switch). */
  relabel(): void {
    if (!this.draft) return;
    this.fillThemeOptions();
    this.renderMethods();
    this.folder.textContent = this.draft.downloadDir || t('settings.downloadDirNone');
  }

  private fillThemeOptions(): void {
    const v = this.theme.value || this.draft?.theme || 'system';
    this.theme.replaceChildren(...(['system', 'light', 'dark'] as Theme[]).map((th) => h('option', { value: th }, t(`theme.${th}`))));
    this.theme.value = v;
  }

  private fill(): void {
    const s = this.draft!;
    this.folder.textContent = s.downloadDir || t('settings.downloadDirNone');
    this.folder.title = s.downloadDir;
    const auto = s.autoAcceptMaxBytes > 0;
    this.autoOn.checked = auto;
    const f = sizeToForm(auto ? s.autoAcceptMaxBytes : 100 * MIB);
    this.autoValue.value = String(f.value);
    this.autoUnit.value = f.unit;
    this.autoValue.disabled = this.autoUnit.disabled = !auto;
    this.allowUpload.checked = s.allowUpload;
    this.serveHttp.checked = s.serveHttp;
    this.strangers.value = s.strangers;
    this.proxy.value = s.proxyJid ?? '';
    this.lang.value = s.language;
    this.theme.value = s.theme;
    this.fillThemeOptions();
    this.theme.value = s.theme;
    this.hosts.value = s.streamhostAddrs.join('\n');
    this.renderMethods();
  }

  /** Enabled methods first in their order, then the disabled ones. */
  private renderMethods(): void {
    const s = this.draft;
    if (!s) return;
    const order = [...s.methods, ...ALL_METHODS.filter((m) => !s.methods.includes(m))];
    this.methods.replaceChildren(
      ...order.map((m, i) => {
        const on = s.methods.includes(m);
        const box = h('input', { type: 'checkbox', id: `method-${m}`, checked: on, testid: `method-${m}` });
        box.addEventListener('change', () => {
          s.methods = box.checked ? [...s.methods, m] : s.methods.filter((x) => x !== m);
          this.renderMethods();
          this.methods.querySelector<HTMLElement>(`#method-${m}`)?.focus();
        });
        const move = (delta: number, ic: 'chevronUp' | 'chevronDown', key: Key) => {
          const idx = s.methods.indexOf(m);
          const can = on && idx + delta >= 0 && idx + delta < s.methods.length;
          const b = h('button', { type: 'button', class: 'btn btn-icon btn-ghost', disabled: !can, title: t(key), 'aria-label': `${t(key)}: ${t(`method.${m}`)}`, testid: `method-${m}-${delta < 0 ? 'up' : 'down'}` }, icon(ic));
          b.addEventListener('click', () => {
            const list = [...s.methods];
            [list[idx], list[idx + delta]] = [list[idx + delta]!, list[idx]!];
            s.methods = list;
            this.renderMethods();
            const again = this.methods.querySelector<HTMLButtonElement>(`[data-testid="method-${m}-${delta < 0 ? 'up' : 'down'}"]`);
            (again && !again.disabled ? again : this.methods.querySelector<HTMLElement>(`#method-${m}`))?.focus();
          });
          return b;
        };
        return h(
          'li',
          { class: `method-row${on ? '' : ' is-off'}` },
          h('span', { class: 'method-rank', 'aria-hidden': 'true' }, on ? String(i + 1) : '–'),
          box,
          h('label', { for: `method-${m}` }, t(`method.${m}`)),
          h('span', { class: 'spacer' }),
          move(-1, 'chevronUp', 'settings.moveUp'),
          move(1, 'chevronDown', 'settings.moveDown'),
        );
      }),
    );
  }

  /** The form as Settings, or an error message. */
  private collect(): Settings | string {
    const s = this.draft!;
    if (s.methods.length === 0) return t('settings.methodsRequired');
    const addrs = this.hosts.value
      .split(/[\s,]+/)
      .map((a) => a.trim())
      .filter(Boolean);
    const bad = addrs.find((a) => !isIpAddress(a));
    if (bad) return t('settings.badAddress', { addr: bad });
    return {
      ...s,
      // null: discover the server's proxy.
      proxyJid: this.proxy.value.trim() || null,
      autoAcceptMaxBytes: this.autoOn.checked ? formToSize(Number(this.autoValue.value), this.autoUnit.value as 'MiB' | 'GiB') : 0,
      language: this.lang.value as Language,
      theme: this.theme.value as Theme,
      streamhostAddrs: addrs,
      allowUpload: this.allowUpload.checked,
      serveHttp: this.serveHttp.checked,
      strangers: this.strangers.value as StrangerPolicy,
    };
  }

  private async save(): Promise<void> {
    const s = this.collect();
    if (typeof s === 'string') {
      this.error.textContent = s;
      this.error.hidden = false;
      return;
    }
    this.saveBtn.disabled = true;
    try {
      if (await this.actions.save(s)) {
        this.saved = s;
        this.modal.hide();
      }
    } finally {
      this.saveBtn.disabled = false;
    }
  }

  private cancel(): void {
    if (this.saved) this.actions.preview(this.saved.language, this.saved.theme);
    this.modal.hide();
  }
}
