import { describe, expect, it } from 'vitest';
import { gaxxKey, isLoopbackHost, KEY_PREFIX, redisSettingsFromUrl } from '../../scheduler/redis/redis.js';

describe('redisSettingsFromUrl', () => {
  it('parses redis:// with ACL user, password and db', () => {
    const s = redisSettingsFromUrl('redis://gaxx:s%40cret@127.0.0.1:6380/2');
    expect(s.kind).toBe('single');
    if (s.kind !== 'single') return;
    expect(s.options).toMatchObject({ host: '127.0.0.1', port: 6380, db: 2, username: 'gaxx', password: 's@cret' });
    expect(s.options.tls).toBeUndefined();
    expect(s.display).not.toContain('s@cret');
  });

  it('parses rediss:// as TLS with the host as server name', () => {
    const s = redisSettingsFromUrl('rediss://:pw@redis.internal:6390');
    if (s.kind !== 'single') throw new Error('expected single');
    expect(s.options.tls).toMatchObject({ servername: 'redis.internal' });
    expect(s.options.password).toBe('pw');
    expect(s.options.username).toBeUndefined();
  });

  it('parses a unix socket with credentials in the query', () => {
    const s = redisSettingsFromUrl('unix:///tmp/gx/redis.sock?db=1&user=u&password=p');
    if (s.kind !== 'single') throw new Error('expected single');
    expect(s.options).toMatchObject({ path: '/tmp/gx/redis.sock', db: 1, username: 'u', password: 'p' });
  });

  it('parses sentinel and cluster host lists', () => {
    const s = redisSettingsFromUrl('redis+sentinel://u:p@10.0.0.1:26379,10.0.0.2/mymaster/3');
    if (s.kind !== 'single') throw new Error('expected single');
    expect(s.options).toMatchObject({ name: 'mymaster', db: 3, username: 'u', password: 'p' });
    expect(s.options.sentinels).toEqual([
      { host: '10.0.0.1', port: 26379 },
      { host: '10.0.0.2', port: 26379 },
    ]);
    const c = redisSettingsFromUrl('rediss+cluster://:pw@h1:7000,h2:7001');
    if (c.kind !== 'cluster') throw new Error('expected cluster');
    expect(c.nodes).toEqual([
      { host: 'h1', port: 7000 },
      { host: 'h2', port: 7001 },
    ]);
    expect(c.options.redisOptions).toMatchObject({ password: 'pw', tls: {} });
  });

  it.each(['http://x', 'not a url', 'redis://h/abc', 'redis+sentinel://h1:1', 'unix://'])('refuses %s with CONFIG_INVALID', (url) => {
    expect(() => redisSettingsFromUrl(url)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it.each([
    'redis://10.0.0.5:6379',
    'redis://gaxx@redis.internal:6379',
    'redis://:@10.0.0.5',
    'redis+sentinel://10.0.0.1:26379/mymaster',
    'redis+cluster://127.0.0.1:7000,10.0.0.2:7001',
  ])('refuses plaintext without a password beyond loopback: %s (REDIS_INSECURE), unless opted in', (url) => {
    expect(() => redisSettingsFromUrl(url)).toThrow(expect.objectContaining({ code: 'REDIS_INSECURE' }));
    expect(() => redisSettingsFromUrl(url, { allowInsecure: true })).not.toThrow();
  });

  it.each([
    'redis://127.0.0.1:6379',
    'redis://127.8.9.10:6379',
    'redis://localhost:6379',
    'redis://[::1]:6379',
    'redis://[0:0:0:0:0:0:0:1]:6379',
    'redis://:pw@10.0.0.5:6379',
    'rediss://10.0.0.5:6379',
    'unix:///tmp/gx/redis.sock',
    'redis+cluster://127.0.0.1:7000,localhost:7001',
    'rediss+sentinel://10.0.0.1:26379/mymaster',
  ])('accepts %s: loopback, a unix socket, a password or TLS', (url) => {
    expect(() => redisSettingsFromUrl(url)).not.toThrow();
  });

  it('does not take a loopback-looking name for loopback', () => {
    expect(isLoopbackHost('127.0.0.1.evil.example')).toBe(false);
    expect(isLoopbackHost('localhost.example')).toBe(false);
    expect(isLoopbackHost('::ffff:10.0.0.1')).toBe(false);
    // The same rule as the dashboard's listen address (proto/address.ts): a mapped loopback address is one.
    for (const h of ['[::1]', '[::ffff:127.0.0.1]', 'LOCALHOST', '127.9.9.9']) expect(isLoopbackHost(h), h).toBe(true);
  });

  it('puts every key under one cluster hash tag', () => {
    expect(KEY_PREFIX).toBe('{gaxx}');
    expect(gaxxKey('run', 'r1', 'events')).toBe('{gaxx}:run:r1:events');
  });
});
