import { BadRequestException } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { checkedName } from './display-name.js';

describe('checkedName', () => {
  it('keeps an ordinary name, NFC-normalized and trimmed', () => {
    expect(checkedName('  Quarterly "final" (v2).pdf ', 'file')).toBe('Quarterly "final" (v2).pdf');
    expect(checkedName('Cafe\u0301', 'folder')).toBe('Café');
    expect(checkedName('日本語のフォルダ', 'folder')).toBe('日本語のフォルダ');
  });

  it.each([
    ['', /empty/],
    ['..', /"\."/],
    ['.', /"\."/],
    ['a/b', /"\/"/],
    ['a\\b', /"\/"/],
    ['nul\u0000', /control/],
    ['tab\there', /control/],
    ['\u202Eexe.txt', /text-direction/],
    ['\u2066x', /text-direction/],
    ['\uFEFFbom', /invisible/],
    ['é'.repeat(256), /255/],
    [42, /must be a string/],
  ])('refuses %j', (name, why) => {
    expect(() => checkedName(name, 'folder')).toThrow(BadRequestException);
    expect(() => checkedName(name, 'folder')).toThrow(why);
  });

  it('allows exactly 255 characters, counted as characters rather than UTF-16 units', () => {
    expect(checkedName('😀'.repeat(255), 'file')).toHaveLength(510);
  });
});
