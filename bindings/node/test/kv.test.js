'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');

const { dbx, SQLITE_URL, REDIS_URL, POSTGRES_URL, unique, withDb } = require('./helpers');

const KV_URLS = { sqlite: SQLITE_URL, postgres: POSTGRES_URL, redis: REDIS_URL };

/** Waits (bounded) until `key` is gone; no timing assertion, only that it happens. */
async function waitGone(kv, key) {
  for (let i = 0; i < 100; i++) {
    if ((await kv.get(key)) === null) return true;
    await sleep(100);
  }
  return false;
}

for (const [name, url] of Object.entries(KV_URLS)) {
  test(`${name}: get/set/delete/exists/incr/scan`, async () => {
    await withDb(url, async (db) => {
      const p = `${unique('nodet:kv')}:`;
      const kv = db.kv;
      try {
        assert.equal(await kv.get(`${p}missing`), null);
        await kv.set(`${p}a`, Buffer.from([0, 1, 0x62, 0x69, 0x6e]));
        await kv.set(`${p}b`, 'text ✓');
        await kv.set(`${p}u8`, new Uint8Array([9, 8, 7]));
        assert.deepEqual(await kv.get(`${p}a`), Buffer.from([0, 1, 0x62, 0x69, 0x6e]));
        assert.deepEqual(await kv.get(`${p}b`), Buffer.from('text ✓'));
        assert.ok(Buffer.isBuffer(await kv.get(`${p}u8`)));
        assert.equal(await kv.exists(`${p}a`), true);
        assert.equal(await kv.exists(`${p}nope`), false);
        assert.equal(await kv.incr(`${p}n`), 1);
        assert.equal(await kv.incr(`${p}n`, 41), 42);
        assert.equal(await kv.incr(`${p}n`, -2), 40);
        // Beyond 2^53 the value comes back as a BigInt, exactly.
        assert.equal(await kv.incr(`${p}big`, 2n ** 62n), 2n ** 62n);
        assert.equal(await kv.incr(`${p}big`, 1), 2n ** 62n + 1n);
        await assert.rejects(kv.incr(`${p}big`, 2n ** 62n), (e) => e instanceof dbx.OutOfRange);
        assert.deepEqual(await kv.scan(p), [`${p}a`, `${p}b`, `${p}big`, `${p}n`, `${p}u8`]);
        assert.equal(await kv.delete(`${p}a`), true);
        assert.equal(await kv.delete(`${p}a`), false);
        assert.deepEqual(await kv.scan(p), [`${p}b`, `${p}big`, `${p}n`, `${p}u8`]);
      } finally {
        for (const k of await kv.scan(p)) await kv.delete(k);
      }
      assert.deepEqual(await kv.scan(p), []);
    });
  });

  test(`${name}: TTLs expire`, async () => {
    await withDb(url, async (db) => {
      const p = `${unique('nodet:ttl')}:`;
      const kv = db.kv;
      try {
        await kv.set(`${p}short`, 'v', { ttl: 300 });
        await kv.set(`${p}long`, 'v', 5 * 60 * 1000);
        await kv.set(`${p}forever`, 'v');
        assert.deepEqual(await kv.get(`${p}long`), Buffer.from('v'));
        assert.ok(await waitGone(kv, `${p}short`), 'the key with a 300 ms TTL never expired');
        assert.deepEqual(await kv.get(`${p}long`), Buffer.from('v'));
        assert.equal(await kv.expire(`${p}forever`, 200), true);
        assert.ok(await waitGone(kv, `${p}forever`), 'expire() did not take');
        assert.equal(await kv.expire(`${p}nothing`, 10_000), false);
      } finally {
        for (const k of await kv.scan(p)) await kv.delete(k);
      }
    });
  });

  test(`${name}: wrong types and bad input are typed errors`, async () => {
    await withDb(url, async (db) => {
      const key = unique('nodet:wrongtype');
      const kv = db.kv;
      try {
        await kv.set(key, 'not a number');
        await assert.rejects(kv.incr(key), (e) => {
          assert.ok(e instanceof dbx.WrongType, `${e.name}: ${e.message}`);
          assert.equal(e.kind, 'wrong_type');
          return true;
        });
      } finally {
        await kv.delete(key);
      }
      await assert.rejects(kv.set(key, 'v', { ttl: 0 }), (e) => e instanceof dbx.InvalidInput && /ttl/.test(e.message));
      await assert.rejects(kv.set(key, 'v', { ttl: -5 }), (e) => e instanceof dbx.InvalidInput);
      await assert.rejects(kv.set(key, 12), (e) => e instanceof dbx.InvalidInput && /Buffer/.test(e.message));
      await assert.rejects(kv.set(key, { a: 1 }), (e) => e instanceof dbx.InvalidInput);
      await assert.rejects(kv.get(''), (e) => e instanceof dbx.InvalidInput);
      await assert.rejects(kv.get(12), (e) => e instanceof dbx.InvalidInput);
      await assert.rejects(kv.incr(key, 1.5), (e) => e instanceof dbx.InvalidInput);
      await assert.rejects(kv.incr(key, '1'), (e) => e instanceof dbx.InvalidInput);
      await assert.rejects(kv.incr(key, 2n ** 64n), (e) => e instanceof dbx.OutOfRange);
      assert.equal(await kv.exists(key), false);
    });
  });

  test(`${name}: 200 concurrent incr promises add up to 200`, async () => {
    await withDb(url, async (db) => {
      const key = unique('nodet:conc');
      try {
        const results = await Promise.all(Array.from({ length: 200 }, () => db.kv.incr(key)));
        assert.equal(await db.kv.incr(key, 0), 200);
        // Every intermediate value was handed out exactly once.
        assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
      } finally {
        await db.kv.delete(key);
      }
    });
  });
}
