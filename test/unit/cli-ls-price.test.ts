// gaxx ls shows a price per hour the same way in its summary line and its table.
import { describe, expect, it } from 'vitest';
import { dollars } from '../../cli/commands/ls.js';

describe('gaxx ls prices', () => {
  it('at most 4 decimals, no trailing zeros', () => {
    expect(dollars(0)).toBe('$0');
    expect(dollars(0.0075)).toBe('$0.0075');
    expect(dollars(0.05)).toBe('$0.05');
    expect(dollars(0.036)).toBe('$0.036');
    expect(dollars(1.23456)).toBe('$1.2346');
    expect(dollars(12)).toBe('$12');
  });
});
