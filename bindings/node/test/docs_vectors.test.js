'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { dbx, SQLITE_URL, MONGO_URL, unique, withDb } = require('./helpers');

test('vectors on SQLite: create, upsert, search, get, delete, count, drop', async () => {
  await withDb(SQLITE_URL, async (db) => {
    const c = db.vectors.collection(unique('nodet_vec'));
    assert.equal(await c.createIfMissing(3, 'cosine'), true);
    assert.equal(await c.createIfMissing(3, 'cosine'), false);
    await assert.rejects(c.create(3), (e) => e instanceof dbx.DbxError);
    const uuid = crypto.randomUUID();
    await c.upsert([
      { id: 1, vector: [1, 0, 0], payload: { kind: 'a', n: 1 } },
      { id: 2, vector: [0, 1, 0], payload: { kind: 'b', n: 2 } },
      { id: 3, vector: [0.9, 0.1, 0], payload: { kind: 'a', n: 3 } },
      { id: uuid, vector: [0, 0, 1] },
    ]);
    assert.equal(await c.count(), 4);
    const hits = await c.search([1, 0, 0], 2);
    assert.deepEqual(hits.map((h) => h.id), [1, 3]);
    assert.deepEqual(hits[0].payload, { kind: 'a', n: 1 });
    assert.equal(hits[0].vector, null);
    assert.ok(hits[0].score >= hits[1].score);
    const flt = { must: [{ key: 'kind', match: { value: 'b' } }] };
    assert.deepEqual((await c.search(new Float32Array([1, 0, 0]), 5, { filter: flt })).map((h) => h.id), [2]);
    assert.equal(await c.count(flt), 1);
    const [rec] = await c.get([3], { withVectors: true });
    assert.equal(rec.id, 3);
    assert.equal(rec.vector.length, 3);
    const [u] = await c.get([uuid]);
    assert.equal(u.id, uuid);
    assert.deepEqual(u.payload ?? {}, {}); // no payload: empty (SQLite) or null
    await c.delete([1, uuid]);
    assert.equal(await c.count(), 2);
    await assert.rejects(c.upsert([{ id: -1, vector: [1, 0, 0] }]), (e) => e instanceof dbx.InvalidInput);
    await assert.rejects(c.upsert([{ id: 'not-a-uuid', vector: [1, 0, 0] }]), (e) => e instanceof dbx.InvalidInput);
    await assert.rejects(c.upsert([{ id: 9, vector: [1, 0] }]), (e) => e instanceof dbx.DbxError); // wrong dimension
    await assert.rejects(c.upsert([{ id: 9 }]), (e) => e instanceof dbx.InvalidInput && /vector/.test(e.message));
    await assert.rejects(c.search([1, 0, 0], -1), (e) => e instanceof dbx.InvalidInput);
    await assert.rejects(db.vectors.collection('x').create(3, 'nonsense'), (e) => e instanceof dbx.DbxError);
    assert.ok((await db.vectors.list()).includes(c.name));
    assert.equal(await c.drop(), true);
    assert.equal(await c.drop(), false);
  });
});

test('documents on the MongoDB-wire server', { skip: MONGO_URL ? false : 'DBX_TEST_MONGO_URL not set (scripts/start-mongo.sh; scripts/test.sh sets it)' }, async () => {
  await withDb(MONGO_URL, async (db) => {
    const c = db.docs.collection(unique('nodet_docs'));
    try {
      const id1 = await c.insertOne({ name: 'Ada', age: 36, tags: ['math'], born: new Date('1815-12-10T00:00:00Z') });
      assert.notEqual(id1, null);
      const ids = await c.insertMany([{ name: 'Grace', age: 45 }, { name: 'Alan', age: 41 }]);
      assert.equal(ids.length, 2);
      assert.equal(await c.count(), 3);
      assert.equal(await c.count({ age: { $gt: 40 } }), 2);
      const found = await c.find({ age: { $gt: 40 } }, { sort: { age: 1 } });
      assert.deepEqual(found.map((d) => d.name), ['Alan', 'Grace']);
      assert.deepEqual((await c.find({}, { sort: { age: -1 }, limit: 1, skip: 1 })).map((d) => d.name), ['Alan']);
      const ada = await c.findOne({ name: 'Ada' });
      assert.deepEqual(ada.tags, ['math']);
      const r = await c.updateOne({ name: 'Ada' }, { $inc: { age: 1 } });
      assert.equal(r.matched, 1);
      assert.equal(r.modified, 1);
      assert.equal((await c.findOne({ name: 'Ada' })).age, 37);
      const many = await c.updateMany({ age: { $gt: 40 } }, { $set: { senior: true } });
      assert.equal(many.matched, 2);
      assert.equal(await c.deleteOne({ name: 'Nobody' }), 0);
      assert.equal(await c.deleteMany({ age: { $gt: 40 } }), 2);
      assert.equal(await c.findOne({ name: 'Nobody' }), null);
      await assert.rejects(c.insertOne('not a doc'), (e) => e instanceof dbx.InvalidInput);
      await assert.rejects(c.updateOne({ name: 'Ada' }), (e) => e instanceof dbx.InvalidInput);
    } finally {
      await c.drop();
    }
  });
});

test('documents are Unsupported on SQL backends', async () => {
  await withDb(SQLITE_URL, async (db) => {
    assert.throws(() => db.docs.collection('x'), dbx.Unsupported);
  });
});

if (!MONGO_URL) {
  // Loud, so a run without the server is visible in the output.
  console.warn('SKIPPED: the MongoDB document tests (set DBX_TEST_MONGO_URL, e.g. from scripts/start-mongo.sh)');
}
