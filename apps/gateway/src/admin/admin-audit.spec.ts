import { describe, expect, it } from 'vitest';
import { csvCell } from './admin-audit.js';

describe('csvCell', () => {
  it('prefixes what a spreadsheet would run as a formula with a quote', () => {
    for (const hostile of ['=1+1', '+cmd', '-2+3', '@SUM(A1)', '\t=1', '\r=1']) {
      expect(csvCell(hostile)).toBe(`"'${hostile}"`);
    }
  });

  it('quotes every cell and doubles quotes inside it (RFC 4180); empty for null', () => {
    expect(csvCell('a "b", c')).toBe('"a ""b"", c"');
    expect(csvCell(null)).toBe('""');
    expect(csvCell(undefined)).toBe('""');
    expect(csvCell(42)).toBe('"42"');
    expect(csvCell('2026-01-01T00:00:00.000Z')).toBe('"2026-01-01T00:00:00.000Z"');
  });
});
