import { describe, expect, it } from 'vitest';
import { compareText } from '../../proto/index.js';

describe('compareText', () => {
  it('orders by code units, the same in every locale: upper case before lower, digits before letters', () => {
    expect(['gaxx-f-10', 'b', 'gaxx-f-2', 'B', 'gaxx-f-1', 'a', '1'].sort(compareText)).toEqual(['1', 'B', 'a', 'b', 'gaxx-f-1', 'gaxx-f-10', 'gaxx-f-2']);
    expect(compareText('x', 'x')).toBe(0);
    expect(compareText('a', 'b')).toBeLessThan(0);
    expect(compareText('b', 'a')).toBeGreaterThan(0);
  });
});
