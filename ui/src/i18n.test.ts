import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dictionaries, hasKey, pickLanguage, t, tn, type Key } from './i18n';

const en = dictionaries.en;
const zh = dictionaries['zh-CN'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('dictionaries', () => {
  it('have the same keys in English and Simplified Chinese', () => {
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
  });

  it('have no empty strings', () => {
    for (const [lang, dict] of Object.entries(dictionaries)) {
      for (const [k, v] of Object.entries(dict)) expect(v.trim(), `${lang} ${k}`).not.toBe('');
    }
  });

  it('use the same placeholders in both languages', () => {
    for (const k of Object.keys(en) as Key[]) expect(placeholders(zh[k]), k).toEqual(placeholders(en[k]));
  });

  it('translate into Chinese (everything except names and examples)', () => {
    // Product and protocol names are not translated.
    const sameOk = new Set<Key>(['app.name', 'lang.en', 'lang.zh-CN', 'signin.jidPlaceholder', 'signin.caFilePlaceholder', 'protocol.si', 'protocol.jingle']);
    for (const k of Object.keys(en) as Key[]) {
      if (sameOk.has(k)) continue;
      expect(zh[k], k).not.toBe(en[k]);
      expect(/[\u4e00-\u9fff]/.test(zh[k]), `${k}: ${zh[k]}`).toBe(true);
    }
  });

  it('use Chinese punctuation, not ASCII, next to Chinese text', () => {
    for (const [k, v] of Object.entries(zh)) {
      expect(/[\u4e00-\u9fff][,;!?]|[\u4e00-\u9fff]\.$/.test(v), `${k}: ${v}`).toBe(false);
    }
  });

  it('name every key the code uses', () => {
    // Every quoted literal in the sources that starts with a dictionary namespace
    // ('signin.', 'transfer.', ...) must be a key (or a plural base with .other).
    const namespaces = new Set(Object.keys(en).map((k) => k.split('.')[0]));
    const used = new Set<string>();
    for (const file of sourceFiles(__dirname)) {
      if (file.endsWith('i18n.ts')) continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/'([a-z][\w-]*)\.([\w.-]+)'/g)) {
        if (namespaces.has(m[1]!)) used.add(`${m[1]}.${m[2]}`);
      }
    }
    expect(used.size).toBeGreaterThan(150);
    const missing = [...used].filter((k) => !hasKey(k) && !hasKey(`${k}.other`));
    expect(missing).toEqual([]);
  });

  it('leave no key unused', () => {
    const all = sourceFiles(__dirname)
      .filter((f) => !f.endsWith('i18n.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    // Keys built at run time from a prefix.
    const dynamicPrefixes = ['state.', 'route.', 'presence.', 'theme.', 'method.', 'signin.tls.', 'error.', 'lang.', 'toast.sending.', 'toast.offersRefused.', 'history.count.', 'sendTo.title.', 'offer.groupTitle.', 'batch.files.', 'batch.filesOf.', 'offer.batchWants.', 'offer.batchShow.'];
    const unused = (Object.keys(en) as Key[]).filter(
      (k) => !all.includes(`'${k}'`) && !dynamicPrefixes.some((p) => k.startsWith(p)),
    );
    expect(unused).toEqual([]);
  });

  it('cover the run-time built keys (states, routes, presence, themes, methods)', () => {
    const dynamic = [
      ...['offered', 'accepted', 'active', 'completed', 'failed', 'rejected', 'cancelled', 'interrupted'].map((s) => `state.${s}`),
      ...['s5b-direct', 's5b-proxy', 'ibb', 'upload', 'oob'].flatMap((r) => [`route.${r}`, `route.tip.${r}`]),
      ...['available', 'away', 'dnd', 'offline'].map((p) => `presence.${p}`),
      ...['system', 'light', 'dark'].map((x) => `theme.${x}`),
      ...['s5b', 'ibb'].map((m) => `method.${m}`),
      ...['starttls', 'direct', 'plaintext'].map((m) => `signin.tls.${m}`),
      ...['auth-failed', 'tls', 'offline'].map((c) => `error.${c}`),
    ];
    expect(dynamic.filter((k) => !hasKey(k))).toEqual([]);
  });
});

describe('upload and link strings', () => {
  const keys: Key[] = [
    'transfer.uploadInstead',
    'transfer.uploadInsteadTip',
    'history.uploadInstead',
    'contacts.dropToUpload',
    'contacts.sendFileToUpload',
    'drop.uploadHint',
    'settings.allowUpload',
    'settings.allowUploadHelp',
    'settings.serveHttp',
    'settings.serveHttpHelp',
  ];

  it('exist in English and Simplified Chinese', () => {
    for (const k of keys) {
      expect(hasKey(k), k).toBe(true);
      expect(en[k].trim(), k).not.toBe('');
      expect(/[\u4e00-\u9fff]/.test(zh[k]), `${k}: ${zh[k]}`).toBe(true);
    }
    expect(t('transfer.uploadInstead')).toBe('Send by upload');
    expect(t('transfer.uploadInstead', undefined, 'zh-CN')).toBe('改用上传发送');
    expect(t('drop.uploadHint')).toBe('Offline — the file will be uploaded to your server and sent as a link');
    expect(t('contacts.dropToUpload', { name: '李雷' }, 'zh-CN')).toBe('松开即可上传并发送给 李雷');
    expect(t('settings.serveHttpHelp', undefined, 'zh-CN')).toContain('jabber:iq:oob');
  });
});

describe('"Send N files" strings', () => {
  it('count the files and say which contacts can take them, in both languages', () => {
    expect(tn('sendTo.title', 1)).toBe('Send a file');
    expect(tn('sendTo.title', 3)).toBe('Send 3 files');
    expect(tn('sendTo.title', 1, {}, 'zh-CN')).toBe('发送 1 个文件');
    expect(tn('sendTo.title', 3, {}, 'zh-CN')).toBe('发送 3 个文件');
    for (const k of ['sendTo.files', 'sendTo.choose', 'sendTo.list', 'sendTo.upload', 'sendTo.unavailable', 'sendTo.hint'] as Key[]) {
      expect(en[k].trim(), k).not.toBe('');
      expect(/[\u4e00-\u9fff]/.test(zh[k]), `${k}: ${zh[k]}`).toBe(true);
    }
  });
});

describe('grouped offer strings', () => {
  it('exist in English and Simplified Chinese', () => {
    const keys: Key[] = [
      'offer.groupTitle.one',
      'offer.groupTitle.other',
      'offer.groupWants',
      'offer.total',
      'offer.totalAtLeast',
      'offer.files',
      'offer.selectAll',
      'offer.chosen',
      'offer.acceptAll',
      'offer.acceptSome',
      'offer.declineAll',
      'offer.groupHint',
    ];
    for (const k of keys) {
      expect(hasKey(k), k).toBe(true);
      expect(en[k].trim(), k).not.toBe('');
      expect(/[\u4e00-\u9fff]/.test(zh[k]), `${k}: ${zh[k]}`).toBe(true);
    }
    expect(tn('offer.groupTitle', 3, { name: 'bob' })).toBe('bob wants to send 3 files');
    expect(tn('offer.groupTitle', 1, { name: 'bob' })).toBe('bob wants to send 1 file');
    expect(tn('offer.groupTitle', 3, { name: 'bob' }, 'zh-CN')).toBe('bob 想发送 3 个文件');
    expect(t('offer.acceptAll')).toBe('Accept all');
    expect(t('offer.acceptSome', { n: 2 })).toBe('Accept 2');
    expect(t('offer.declineAll')).toBe('Decline all');
    expect(t('offer.acceptAll', undefined, 'zh-CN')).toBe('全部接受');
    expect(t('offer.acceptSome', { n: 2 }, 'zh-CN')).toBe('接受 2 个');
    expect(t('offer.declineAll', undefined, 'zh-CN')).toBe('全部拒绝');
  });
});

describe('verification strings', () => {
  it('say verified or not, received or sent, in both languages, never a plain "Completed"', () => {
    const kinds = ['sha256', 'md5', 'none', 'confirmed', 'unconfirmed'];
    for (const part of ['badge', 'line', 'tip']) {
      for (const kind of kinds) {
        const k = `verify.${part}.${kind}`;
        expect(hasKey(k), k).toBe(true);
        expect(/[\u4e00-\u9fff]/.test(zh[k as Key]), `${k}: ${zh[k as Key]}`).toBe(true);
        expect(en[k as Key]).not.toMatch(/^Completed$/);
      }
    }
    expect(t('verify.line.none')).toBe('Received · not verified');
    expect(t('verify.line.unconfirmed')).toBe('Sent · not confirmed');
    expect(t('verify.tip.none')).toContain('the sender did not provide a checksum');
    expect(t('verify.line.sha256', undefined, 'zh-CN')).toBe('已接收 · 已校验（SHA-256）');
    expect(t('verify.badge.none', undefined, 'zh-CN')).toBe('未校验');
  });
});

describe('protocol strings', () => {
  it('name SI and Jingle as they are and explain them in both languages', () => {
    for (const p of ['si', 'jingle']) {
      for (const k of [`protocol.${p}`, `protocol.tip.${p}`]) expect(hasKey(k), k).toBe(true);
      expect(/[\u4e00-\u9fff]/.test(zh[`protocol.tip.${p}` as Key]), p).toBe(true);
    }
    expect(t('protocol.jingle')).toBe('Jingle');
    expect(t('protocol.si', undefined, 'zh-CN')).toBe('SI');
    expect(t('protocol.tip.jingle')).toBe('Set up by Jingle file transfer (XEP-0234)');
    expect(t('protocol.tip.si')).toContain('XEP-0096');
    expect(t('protocol.tip.jingle', undefined, 'zh-CN')).toBe('由 Jingle 文件传输协议（XEP-0234）建立');
  });
});

describe('sign-in security strings', () => {
  it('translate the new sign-in error codes in both languages', () => {
    for (const code of ['certificate-untrusted', 'certificate-changed', 'plain-downgrade', 'server-auth-invalid']) {
      const k = `error.${code}`;
      expect(hasKey(k), k).toBe(true);
      expect(en[k as Key].trim(), k).not.toBe('');
      expect(/[\u4e00-\u9fff]/.test(zh[k as Key]), `${k}: ${zh[k as Key]}`).toBe(true);
    }
    expect(t('error.certificate-changed', undefined, 'zh-CN')).toBe('服务器的证书不是你之前信任的那一个。');
    expect(t('error.plain-downgrade')).toContain('Nothing was sent');
  });

  it('have the certificate dialog in both languages, with a sentence per reason', () => {
    const reasons = ['self-signed', 'unknown-issuer', 'wrong-name', 'expired', 'not-yet-valid', 'revoked', 'invalid'];
    for (const r of reasons) expect(hasKey(`cert.reason.${r}`), r).toBe(true);
    expect(t('cert.trust')).toBe('Trust this certificate for this account');
    expect(t('cert.trustNew')).toBe('Trust the new certificate');
    expect(t('cert.trustNew', undefined, 'zh-CN')).toBe('信任新证书');
    expect(t('cert.changedWarning', { host: 'example.org' }, 'zh-CN')).toContain('有人正在拦截');
  });
});

describe('t and tn', () => {
  it('fills placeholders and leaves unknown ones', () => {
    expect(t('contacts.sendFileTo', { name: 'Bob' })).toBe('Send a file to Bob');
    expect(t('contacts.sendFileTo', { name: 'Bob' }, 'zh-CN')).toBe('给 Bob 发送文件');
    expect(t('contacts.sendFileTo')).toBe('Send a file to {name}');
  });

  it('picks plural forms', () => {
    expect(tn('toast.sending', 1, { name: 'Bob' })).toBe('Sending a file to Bob');
    expect(tn('toast.sending', 3, { name: 'Bob' })).toBe('Sending 3 files to Bob');
    expect(tn('history.count', 1)).toBe('1 transfer');
    expect(tn('history.count', 0)).toBe('0 transfers');
    expect(tn('toast.sending', 3, { name: 'Bob' }, 'zh-CN')).toBe('正在给 Bob 发送 3 个文件');
  });

  it('picks the UI language from the system preferences', () => {
    expect(pickLanguage(['zh-CN', 'en'])).toBe('zh-CN');
    expect(pickLanguage(['zh-Hans-CN'])).toBe('zh-CN');
    expect(pickLanguage(['zh'])).toBe('zh-CN');
    expect(pickLanguage(['de-DE', 'en-GB'])).toBe('en');
    expect(pickLanguage(['fr'])).toBe('en');
    expect(pickLanguage([])).toBe('en');
  });
});
