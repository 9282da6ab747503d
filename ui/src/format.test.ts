import { describe, expect, it } from 'vitest';
import {
  bareJid,
  baseName,
  etaSeconds,
  formatBytes,
  formatDateTime,
  formatDuration,
  formatEta,
  formatProgressBytes,
  formatRelative,
  formatSpeed,
  formatTime,
  fromDateInput,
  percent,
  toDateInput,
} from './format';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

describe('formatBytes (binary units, labelled KiB/MiB/GiB)', () => {
  it.each([
    [0, '0 B'],
    [1, '1 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [10 * KiB, '10.0 KiB'],
    [99.94 * KiB, '99.9 KiB'],
    [99.96 * KiB, '100 KiB'],
    [150 * KiB, '150 KiB'],
    [1023 * KiB, '1023 KiB'],
    [MiB, '1.0 MiB'],
    [15.25 * MiB, '15.3 MiB'],
    [152 * MiB, '152 MiB'],
    [GiB, '1.0 GiB'],
    [1.2 * GiB, '1.2 GiB'],
    [TiB, '1.0 TiB'],
    [3 * 1024 * TiB, '3.0 PiB'],
  ])('%d -> %s', (n, s) => {
    expect(formatBytes(n)).toBe(s);
  });

  it('never shows 1024 of a unit: rounding carries into the next one', () => {
    expect(formatBytes(1024 * KiB - 1)).toBe('1.0 MiB');
    expect(formatBytes(GiB - 10)).toBe('1.0 GiB');
    expect(formatBytes(1023.4 * KiB)).toBe('1023 KiB');
  });

  it('shows a dash for nonsense', () => {
    expect(formatBytes(-1)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
    expect(formatBytes(Number.POSITIVE_INFINITY)).toBe('—');
  });
});

describe('formatProgressBytes', () => {
  it('shares the unit when both sides use it', () => {
    expect(formatProgressBytes(1.5 * MiB, 10 * MiB)).toBe('1.5 / 10.0 MiB');
    expect(formatProgressBytes(39 * MiB, 48 * MiB)).toBe('39.0 / 48.0 MiB');
  });
  it('names both units when they differ', () => {
    expect(formatProgressBytes(512 * KiB, 10 * MiB)).toBe('512 KiB / 10.0 MiB');
    expect(formatProgressBytes(305 * MiB, 1.2 * GiB)).toBe('305 MiB / 1.2 GiB');
    expect(formatProgressBytes(0, 2 * KiB)).toBe('0 B / 2.0 KiB');
  });
  it('shows only the done part without a total', () => {
    expect(formatProgressBytes(3 * MiB, 0)).toBe('3.0 MiB');
  });
});

describe('formatSpeed', () => {
  it('formats bytes per second', () => {
    expect(formatSpeed(0)).toBe('0 B/s');
    expect(formatSpeed(800)).toBe('800 B/s');
    expect(formatSpeed(1.5 * MiB)).toBe('1.5 MiB/s');
    expect(formatSpeed(112 * MiB)).toBe('112 MiB/s');
  });
  it('shows a dash when unknown', () => {
    expect(formatSpeed(-5)).toBe('—');
    expect(formatSpeed(Number.NaN)).toBe('—');
  });
});

describe('percent', () => {
  it('floors so that 100 % only shows when done', () => {
    expect(percent(0, 100)).toBe(0);
    expect(percent(1, 3)).toBe(33);
    expect(percent(999, 1000)).toBe(99);
    expect(percent(1000, 1000)).toBe(100);
    expect(percent(2000, 1000)).toBe(100);
  });
  it('is 0 without a total', () => {
    expect(percent(10, 0)).toBe(0);
    expect(percent(-1, 10)).toBe(0);
  });
});

describe('ETA and durations', () => {
  it('computes seconds left at the current speed', () => {
    expect(etaSeconds(0, 100, 10)).toBe(10);
    expect(etaSeconds(50, 100, 10)).toBe(5);
    expect(etaSeconds(150, 100, 10)).toBe(0);
  });
  it('is unknown without speed or total', () => {
    expect(etaSeconds(0, 100, 0)).toBeNull();
    expect(etaSeconds(0, 0, 10)).toBeNull();
    expect(etaSeconds(0, 100, Number.POSITIVE_INFINITY)).toBeNull();
  });

  it.each([
    [0, '0 s'],
    [0.2, '1 s'],
    [3, '3 s'],
    [59, '59 s'],
    [59.5, '1 min'],
    [60, '1 min'],
    [125, '2 min 5 s'],
    [3599, '59 min 59 s'],
    [3600, '1 h'],
    [3720, '1 h 2 min'],
    [3725, '1 h 2 min'],
    [86399, '23 h 59 min'],
    [86400, '1 d'],
    [2 * 86400 + 3 * 3600 + 59, '2 d 3 h'],
  ])('formatDuration(%d) = %s', (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });

  it('speaks Chinese', () => {
    expect(formatDuration(3, 'zh-CN')).toBe('3 秒');
    expect(formatDuration(125, 'zh-CN')).toBe('2 分 5 秒');
    expect(formatDuration(3720, 'zh-CN')).toBe('1 小时 2 分');
    expect(formatDuration(86400 + 3600, 'zh-CN')).toBe('1 天 1 小时');
  });

  it('shows a dash when unknown', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(undefined)).toBe('—');
    expect(formatDuration(-1)).toBe('—');
    expect(formatDuration(Number.NaN)).toBe('—');
    expect(formatEta(0, 100, 0)).toBe('—');
  });

  it('formatEta combines both', () => {
    expect(formatEta(0, 125 * MiB, MiB)).toBe('2 min 5 s');
    expect(formatEta(0, 3 * MiB, MiB, 'zh-CN')).toBe('3 秒');
  });
});

describe('dates (TZ=UTC in the test config)', () => {
  const now = Date.UTC(2025, 2, 10, 15, 30, 0); // Mon 10 Mar 2025 15:30 UTC

  it('is "just now" under a minute, and for times slightly ahead', () => {
    expect(formatRelative(now, now)).toBe('just now');
    expect(formatRelative(now - 59_000, now)).toBe('just now');
    expect(formatRelative(now + 5_000, now)).toBe('just now');
    expect(formatRelative(now, now, 'zh-CN')).toBe('刚刚');
  });

  it('counts minutes, then hours', () => {
    expect(formatRelative(now - 60_000, now)).toBe('1 min ago');
    expect(formatRelative(now - 59 * 60_000, now)).toBe('59 min ago');
    expect(formatRelative(now - 3 * 3600_000, now)).toBe('3 h ago');
    expect(formatRelative(now - 15 * 3600_000, now)).toBe('15 h ago'); // 00:30 today
    expect(formatRelative(now - 5 * 60_000, now, 'zh-CN')).toBe('5 分钟前');
    expect(formatRelative(now - 2 * 3600_000, now, 'zh-CN')).toBe('2 小时前');
  });

  it('says yesterday with the time', () => {
    const y = Date.UTC(2025, 2, 9, 8, 5);
    expect(formatRelative(y, now)).toBe('yesterday 08:05');
    expect(formatRelative(y, now, 'zh-CN')).toBe('昨天 08:05');
  });

  it('uses hours across midnight when under 6 h', () => {
    const justAfterMidnight = Date.UTC(2025, 2, 10, 1, 0);
    expect(formatRelative(Date.UTC(2025, 2, 9, 23, 0), justAfterMidnight)).toBe('2 h ago');
  });

  it('shows the date, with the year only when it differs', () => {
    expect(formatRelative(Date.UTC(2025, 0, 5, 12), now)).toBe('Jan 5');
    expect(formatRelative(Date.UTC(2023, 11, 24, 12), now)).toBe('Dec 24, 2023');
    expect(formatRelative(Date.UTC(2025, 0, 5, 12), now, 'zh-CN')).toBe('1月5日');
    expect(formatRelative(Date.UTC(2023, 11, 24, 12), now, 'zh-CN')).toBe('2023年12月24日');
  });

  it('formats times and full dates', () => {
    expect(formatTime(Date.UTC(2025, 2, 10, 9, 7))).toBe('09:07');
    expect(formatDateTime(Date.UTC(2025, 2, 10, 9, 7))).toMatch(/Mar 10, 2025.*09:07/);
    expect(formatDateTime(Date.UTC(2025, 2, 10, 9, 7), 'zh-CN')).toMatch(/2025年3月10日.*09:07/);
  });

  it('round-trips date inputs', () => {
    const ms = fromDateInput('2025-03-10');
    expect(ms).toBe(Date.UTC(2025, 2, 10));
    expect(toDateInput(ms!)).toBe('2025-03-10');
    expect(fromDateInput('')).toBeNull();
    expect(fromDateInput('10/03/2025')).toBeNull();
  });
});

describe('JIDs and paths', () => {
  it('bareJid drops the resource', () => {
    expect(bareJid('bob@localhost/pc')).toBe('bob@localhost');
    expect(bareJid('bob@localhost')).toBe('bob@localhost');
    expect(bareJid('bob@localhost/a/b')).toBe('bob@localhost');
  });
  it('baseName takes the last component of either separator', () => {
    expect(baseName('/home/a/report.pdf')).toBe('report.pdf');
    expect(baseName('C:\\Users\\a\\x.txt')).toBe('x.txt');
    expect(baseName('/home/a/dir/')).toBe('dir');
    expect(baseName('plain')).toBe('plain');
  });
});
