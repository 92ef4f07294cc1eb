import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/config.js';
import {
  DEFAULT_BLOCKED_TYPES,
  type DetectedContent,
  invalidTypeEntry,
  matchesPattern,
  TypePolicy,
} from './type-policy.js';

const policy = (overrides: Partial<ConstructorParameters<typeof TypePolicy>[0]> = {}) =>
  new TypePolicy({
    allowedTypes: [],
    blockedTypes: [...DEFAULT_BLOCKED_TYPES],
    blockActiveContent: false,
    typeMismatch: 'reject',
    ...overrides,
  });
const binary = (type: string): DetectedContent => ({ type, binary: true, activeContent: false });
const text = (type: string, activeContent = false): DetectedContent => ({
  type,
  binary: false,
  activeContent,
});

describe('TypePolicy', () => {
  it('matches MIME patterns with wildcards and aliases', () => {
    expect(matchesPattern('image/png', 'image/*')).toBe(true);
    expect(matchesPattern('application/pdf', 'image/*')).toBe(false);
    expect(matchesPattern('image/jpg', 'image/jpeg')).toBe(true);
    expect(matchesPattern('anything/at-all', '*/*')).toBe(true);
    expect(invalidTypeEntry('image/*')).toBeNull();
    expect(invalidTypeEntry('.exe')).toBeNull();
    expect(invalidTypeEntry('exe')).toMatch(/neither a MIME pattern/);
  });

  it('the gateway check refuses blocked extensions and declared types, and lets generic declarations through', () => {
    expect(policy().checkDeclared('Setup.EXE', 'application/octet-stream')?.rule).toBe('blocked-extension');
    expect(policy().checkDeclared('run.sh', 'text/plain')?.rule).toBe('blocked-extension');
    expect(policy().checkDeclared('tool', 'application/x-msdownload')?.rule).toBe('blocked-type');
    expect(policy().checkDeclared('invoice.pdf', 'application/octet-stream')).toBeNull();
    expect(policy({ allowedTypes: ['image/*'] }).checkDeclared('a.pdf', 'application/pdf')?.rule).toBe(
      'not-allowed',
    );
    expect(
      policy({ allowedTypes: ['image/*'] }).checkDeclared('a.pdf', 'application/octet-stream'),
    ).toBeNull();
    expect(policy({ blockedTypes: [] }).checkDeclared('setup.exe', 'application/x-msdownload')).toBeNull();
  });

  it('the worker check decides on the content: blocked, not allowed, mismatched, active', () => {
    const pe = policy().checkContent('invoice.pdf', 'application/pdf', binary('application/x-msdownload'));
    expect(pe).toMatchObject({ ok: false, violation: { rule: 'blocked-type' } });
    const elf = policy().checkContent('notes.txt', 'text/plain', binary('application/x-elf'));
    expect(elf).toMatchObject({ ok: false, violation: { rule: 'blocked-type' } });
    const mismatch = policy().checkContent('report.pdf', 'application/octet-stream', binary('image/png'));
    expect(mismatch).toMatchObject({ ok: false, violation: { rule: 'type-mismatch' } });
    const declared = policy().checkContent('picture', 'image/jpeg', binary('image/png'));
    expect(declared).toMatchObject({ ok: false, violation: { rule: 'type-mismatch' } });
    const flagged = policy({ typeMismatch: 'flag' }).checkContent(
      'report.pdf',
      'application/pdf',
      binary('image/png'),
    );
    expect(flagged).toEqual({
      ok: true,
      warning: 'the name says .pdf (application/pdf) but the content is image/png',
    });
    expect(
      policy({ typeMismatch: 'allow' }).checkContent('r.pdf', 'application/pdf', binary('image/png')),
    ).toEqual({
      ok: true,
      warning: null,
    });
    const svg = text('image/svg+xml', true);
    expect(policy().checkContent('a.svg', 'image/svg+xml', svg)).toEqual({ ok: true, warning: null });
    expect(policy({ blockActiveContent: true }).checkContent('a.svg', 'image/svg+xml', svg)).toMatchObject({
      ok: false,
      violation: { rule: 'active-content' },
    });
    const pdf = policy({ allowedTypes: ['image/*'] }).checkContent(
      'a.pdf',
      'application/octet-stream',
      binary('application/pdf'),
    );
    expect(pdf).toMatchObject({ ok: false, violation: { rule: 'not-allowed' } });
  });

  it('no false mismatch for text formats, containers, aliases and empty files', () => {
    const ok = { ok: true, warning: null };
    expect(policy().checkContent('page.html', 'text/html', text('text/plain'))).toEqual(ok);
    expect(policy().checkContent('data.json', 'application/json', text('text/plain'))).toEqual(ok);
    expect(policy().checkContent('table.csv', 'application/vnd.ms-excel', text('text/csv'))).toMatchObject({
      ok: false,
    });
    expect(policy().checkContent('doc.docx', 'application/octet-stream', binary('application/zip'))).toEqual(
      ok,
    );
    expect(policy().checkContent('photo.jpg', 'image/jpg', binary('image/jpeg'))).toEqual(ok);
    expect(policy().checkContent('empty.pdf', 'application/pdf', text('application/x-empty'))).toEqual(ok);
    expect(
      policy().checkContent('archive.bin', 'application/octet-stream', binary('application/zip')),
    ).toEqual(ok);
  });
});

describe('type policy configuration', () => {
  it('defaults to blocking executables and scripts; `none` blocks nothing; a bad entry is refused', () => {
    expect(loadConfig({}).content.blockedTypes).toEqual([...DEFAULT_BLOCKED_TYPES]);
    expect(loadConfig({ BLOCKED_TYPES: '' }).content.blockedTypes).toEqual([...DEFAULT_BLOCKED_TYPES]);
    expect(loadConfig({ BLOCKED_TYPES: 'none' }).content.blockedTypes).toEqual([]);
    expect(loadConfig({ ALLOWED_TYPES: ' image/* , application/PDF ' }).content.allowedTypes).toEqual([
      'image/*',
      'application/pdf',
    ]);
    expect(() => loadConfig({ ALLOWED_TYPES: 'images' })).toThrow(/ALLOWED_TYPES/);
    expect(() => loadConfig({ CLAMD_URL: 'http://clamd:3310' })).toThrow(/CLAMD_URL/);
    expect(loadConfig({ CLAMD_URL: 'unix:/run/clamav/clamd.ctl' }).scan.clamd).toEqual({
      kind: 'unix',
      path: '/run/clamav/clamd.ctl',
    });
  });
});
