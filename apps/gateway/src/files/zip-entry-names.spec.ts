import { describe, expect, it } from 'vitest';
import { zipEntryNames } from './bulk-files.service.js';

describe('zipEntryNames', () => {
  it('never yields a path: no separators, drive letters, parent segments or hidden names survive', () => {
    const names = zipEntryNames([
      '../../etc/passwd',
      '..\\..\\boot.ini',
      'C:\\x.txt',
      '/abs/path',
      '.bashrc',
      '..',
    ]);
    for (const name of names) {
      expect(name).not.toMatch(/[\\/:]/);
      expect(name).not.toMatch(/^\./);
    }
    expect(names).toEqual(['_.._etc_passwd', '_.._boot.ini', 'C__x.txt', '_abs_path', 'bashrc', 'unnamed']);
  });

  it('removes control and bidi characters and numbers duplicates case-insensitively', () => {
    expect(zipEntryNames(['a\u0000b\u202E.txt', 'Same.txt', 'same.TXT', 'same.txt', 'x'])).toEqual([
      'ab.txt',
      'Same.txt',
      'same (2).TXT',
      'same (3).txt',
      'x',
    ]);
  });
});
