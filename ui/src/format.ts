// Formatting of sizes, speeds, durations and dates.
//
// Sizes use the BINARY base everywhere (1 KiB = 1024 B) and say so in the unit:
// B, KiB, MiB, GiB, TiB. That matches the engine, the CLI and file managers that show
// IEC units, and the labels are the same in every language. One decimal below 100 in a
// unit ("1.5 MiB", "15.2 MiB"), none from 100 up ("152 MiB"), never "1024 KiB".

import type { Language } from './types';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** The unit index and scaled value for `bytes`, after rounding. */
function scale(bytes: number): { value: number; unit: number } {
  let unit = 0;
  let value = bytes;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // Rounding may reach 1024 ("1023.96 KiB" -> "1024.0"): move up one unit then.
  if (unit > 0 && round(value, unit) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return { value, unit };
}

function round(value: number, unit: number): number {
  if (unit === 0 || value >= 100) return Math.round(value);
  return Math.round(value * 10) / 10;
}

function show(value: number, unit: number): string {
  const r = round(value, unit);
  return unit === 0 || r >= 100 ? String(Math.round(r)) : r.toFixed(1);
}

/** "0 B", "512 B", "1.5 KiB", "15.2 MiB", "152 MiB", "1.0 GiB"; "—" for nonsense. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  const { value, unit } = scale(bytes);
  return `${show(value, unit)} ${UNITS[unit]}`;
}

/**
 * Bytes done of a total: "1.5 / 10.0 MiB" when both use the same unit,
 * "512 KiB / 10.0 MiB" otherwise; just the done part when the total is unknown (0).
 */
export function formatProgressBytes(done: number, total: number): string {
  if (!(total > 0)) return formatBytes(done);
  const a = scale(Math.max(0, done));
  const b = scale(total);
  if (a.unit === b.unit) return `${show(a.value, a.unit)} / ${show(b.value, b.unit)} ${UNITS[b.unit]}`;
  return `${formatBytes(done)} / ${formatBytes(total)}`;
}

/** "1.5 MiB/s"; "—" when unknown (negative or not a number). */
export function formatSpeed(bytesPerSec: number): string {
  if (!Number.isFinite(bytesPerSec) || bytesPerSec < 0) return '—';
  return `${formatBytes(bytesPerSec)}/s`;
}

/** Whole percent, 0..100, floored so that 100 % only shows when done. */
export function percent(done: number, total: number): number {
  if (!(total > 0) || !(done > 0)) return 0;
  return Math.min(100, Math.floor((done / total) * 100));
}

/** Seconds left at the current speed, or null when it cannot be known. */
export function etaSeconds(done: number, total: number, bytesPerSec: number): number | null {
  if (!(total > 0) || !(bytesPerSec > 0) || !Number.isFinite(bytesPerSec)) return null;
  const left = Math.max(0, total - done);
  return left / bytesPerSec;
}

const DURATION_UNITS: Record<Language, { d: string; h: string; min: string; s: string; sep: string }> = {
  en: { d: 'd', h: 'h', min: 'min', s: 's', sep: ' ' },
  'zh-CN': { d: '天', h: '小时', min: '分', s: '秒', sep: ' ' },
};

/**
 * A duration for people: "0 s", "3 s", "2 min 5 s", "2 min", "1 h 2 min", "1 h",
 * "2 d 3 h"; Chinese "3 秒", "2 分 5 秒", "1 小时 2 分". Rounds seconds up (0.2 s left
 * shows "1 s"). "—" when unknown (null, negative, not finite).
 */
export function formatDuration(seconds: number | null | undefined, lang: Language = 'en'): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '—';
  const u = DURATION_UNITS[lang] ?? DURATION_UNITS.en;
  const total = Math.ceil(seconds - 1e-9);
  const part = (n: number, unit: string) => `${n}${u.sep}${unit}`;
  if (total < 60) return part(total, u.s);
  if (total < 3600) {
    const m = Math.floor(total / 60);
    const s = total % 60;
    return s ? `${part(m, u.min)} ${part(s, u.s)}` : part(m, u.min);
  }
  if (total < 86400) {
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    return m ? `${part(h, u.h)} ${part(m, u.min)}` : part(h, u.h);
  }
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  return h ? `${part(d, u.d)} ${part(h, u.h)}` : part(d, u.d);
}

/** ETA text for a running transfer. */
export function formatEta(done: number, total: number, bytesPerSec: number, lang: Language = 'en'): string {
  return formatDuration(etaSeconds(done, total, bytesPerSec), lang);
}

const REL: Record<Language, { now: string; min: string; h: string; yesterday: string }> = {
  en: { now: 'just now', min: '{n} min ago', h: '{n} h ago', yesterday: 'yesterday {time}' },
  'zh-CN': { now: '刚刚', min: '{n} 分钟前', h: '{n} 小时前', yesterday: '昨天 {time}' },
};

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** "14:05" in the local time zone, 24-hour clock. */
export function formatTime(ms: number, lang: Language = 'en'): string {
  return new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(ms);
}

/** Full local date and time, for tooltips and the history table. */
export function formatDateTime(ms: number, lang: Language = 'en'): string {
  return new Intl.DateTimeFormat(lang, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(ms);
}

/**
 * A date relative to `now`: "just now" (under a minute, or slightly in the future),
 * "5 min ago", "3 h ago" (same calendar day or under 6 h), "yesterday 14:05",
 * "Mar 5" (this year), "Mar 5, 2023". Chinese: 刚刚, 5 分钟前, 3 小时前, 昨天 14:05,
 * 3月5日, 2023年3月5日.
 */
export function formatRelative(ms: number, now: number, lang: Language = 'en'): string {
  const r = REL[lang] ?? REL.en;
  const diff = now - ms;
  if (diff < 60_000) return r.now;
  if (diff < 3_600_000) return r.min.replace('{n}', String(Math.floor(diff / 60_000)));
  const today = startOfDay(now);
  if (ms >= today || diff < 6 * 3_600_000) return r.h.replace('{n}', String(Math.floor(diff / 3_600_000)));
  const yesterday = startOfDay(today - 1);
  if (ms >= yesterday) return r.yesterday.replace('{time}', formatTime(ms, lang));
  const sameYear = new Date(ms).getFullYear() === new Date(now).getFullYear();
  const opts: Intl.DateTimeFormatOptions = sameYear
    ? { month: 'short', day: 'numeric' }
    : { year: 'numeric', month: 'short', day: 'numeric' };
  return new Intl.DateTimeFormat(lang, opts).format(ms);
}

/** The bare JID of a full JID ("bob@localhost/pc" -> "bob@localhost"). */
export function bareJid(jid: string): string {
  const slash = jid.indexOf('/');
  return slash < 0 ? jid : jid.slice(0, slash);
}

/** The last path component, for either separator. */
export function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1]! : path;
}

/** `yyyy-mm-dd` (local) of a Unix-ms time, for `<input type=date>`. */
export function toDateInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** Local midnight of a `yyyy-mm-dd` value, or null when empty or invalid. */
export function fromDateInput(value: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(d.getTime()) ? null : d.getTime();
}
