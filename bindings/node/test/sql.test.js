'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { dbx, SQLITE_URL, POSTGRES_URL, unique, sqliteFile, withDb } = require('./helpers');

const INJECTIONS = [
  "'; DROP TABLE users; --",
  "Robert'); DROP TABLE students;--",
  '$1',
  '" OR 1=1 --',
  "\\'; SELECT pg_sleep(10); --",
  "ünïcødé ✓ 'quoted' \"double\"",
  'nul-free but \u2028 line separator and emoji 🚀',
];

function sqlTargets() {
  const file = sqliteFile();
  return [
    { name: 'sqlite memory', url: SQLITE_URL, after: () => {} },
    { name: 'sqlite file', url: file.url, after: file.cleanup },
    { name: 'postgres', url: POSTGRES_URL, after: () => {} },
  ];
}

test('PostgreSQL: every type round trips both ways', async () => {
  await withDb(POSTGRES_URL, async (db) => {
    const t = unique('nodet_types');
    await db.sql.execute(
      `CREATE TABLE ${t} (i BIGINT, small INTEGER, f DOUBLE PRECISION, s TEXT, b BYTEA, o BOOLEAN,
        t TIMESTAMPTZ, d DATE, n NUMERIC(30,4), u UUID, j JSONB, l JSONB, z TEXT, big BIGINT)`);
    try {
      const when = new Date('2024-02-29T10:30:15.123Z');
      const uuid = crypto.randomUUID();
      const doc = { a: [1, 2.5, null, 'x'], b: { c: true, deep: { n: -3 } }, when: 'text' };
      const values = [
        -(2n ** 63n), 42, 1.5, 'héllo', Buffer.from([0, 255, 16]), true, when,
        new Date('2024-02-29T00:00:00Z'), '-12345678901234567890.1234', uuid, doc,
        [1, 'two', { three: 3 }], null, 2n ** 53n + 1n,
      ];
      const affected = await db.sql.execute(
        `INSERT INTO ${t} VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`, values);
      assert.equal(affected, 1);
      const [row] = await db.sql.query(`SELECT * FROM ${t}`);
      assert.equal(row.i, -(2n ** 63n));
      assert.equal(typeof row.i, 'bigint');
      assert.equal(row.small, 42);
      assert.equal(typeof row.small, 'number');
      assert.equal(row.f, 1.5);
      assert.equal(row.s, 'héllo');
      assert.ok(Buffer.isBuffer(row.b));
      assert.deepEqual([...row.b], [0, 255, 16]);
      assert.equal(row.o, true);
      assert.ok(row.t instanceof Date);
      assert.equal(row.t.getTime(), when.getTime());
      // dbx has no date value: DATE columns read back as ISO text.
      assert.equal(row.d, '2024-02-29');
      assert.equal(row.n, '-12345678901234567890.1234');
      assert.equal(row.u, uuid);
      assert.deepEqual(row.j, doc);
      assert.deepEqual(row.l, [1, 'two', { three: 3 }]);
      assert.equal(row.z, null);
      assert.equal(row.big, 2n ** 53n + 1n);
      // Numbers up to 2^53 - 1 stay numbers.
      const [edge] = await db.sql.query('SELECT $1::bigint AS a, $2::bigint AS b',
        [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]);
      assert.deepEqual(edge, { a: Number.MAX_SAFE_INTEGER, b: -Number.MAX_SAFE_INTEGER });
    } finally {
      await db.sql.execute(`DROP TABLE ${t}`);
    }
  });
});

test('SQLite (memory and file): every type round trips both ways', async () => {
  const file = sqliteFile();
  try {
    for (const url of [SQLITE_URL, file.url]) {
      await withDb(url, async (db) => {
        const t = unique('nodet_types');
        await db.sql.execute(
          `CREATE TABLE ${t} (i INTEGER, f REAL, s TEXT, b BLOB, o BOOLEAN, t TIMESTAMP, u UUID, j JSON, z TEXT)`);
        const when = new Date('2001-09-09T01:46:40.005Z');
        const uuid = crypto.randomUUID();
        const values = [2n ** 63n - 1n, -0.25, 'multi\nline', Buffer.from('\x00bin', 'latin1'), false, when,
          uuid, { k: [1, { n: null }], big: 2n ** 60n }, undefined];
        assert.equal(await db.sql.execute(`INSERT INTO ${t} VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`, values), 1);
        const [row] = await db.sql.query(`SELECT * FROM ${t}`);
        assert.deepEqual(row, {
          i: 2n ** 63n - 1n, f: -0.25, s: 'multi\nline', b: Buffer.from('\x00bin', 'latin1'), o: false,
          t: when, u: uuid, j: { k: [1, { n: null }], big: 2n ** 60n }, z: null,
        });
        // A Uint8Array that is not a Buffer binds as bytes too.
        const [b] = await db.sql.query('SELECT $1 AS b', [new Uint8Array([1, 2, 3])]);
        assert.deepEqual(b.b, Buffer.from([1, 2, 3]));
      });
    }
  } finally {
    file.cleanup();
  }
});

test('SQLite file: data survives reconnecting', async () => {
  const file = sqliteFile();
  try {
    await withDb(file.url, async (db) => {
      await db.sql.execute('CREATE TABLE keep (id INTEGER, s TEXT)');
      await db.sql.execute('INSERT INTO keep VALUES ($1, $2)', [1, 'kept']);
    });
    await withDb(file.url, async (db) => {
      assert.deepEqual(await db.sql.query('SELECT * FROM keep'), [{ id: 1, s: 'kept' }]);
    });
  } finally {
    file.cleanup();
  }
});

test('injection strings are stored verbatim and match exactly', async () => {
  for (const target of sqlTargets()) {
    try {
      await withDb(target.url, async (db) => {
        const t = unique('nodet_inj');
        await db.sql.execute(`CREATE TABLE ${t} (id BIGINT, s TEXT)`);
        try {
          for (const [i, s] of INJECTIONS.entries()) {
            assert.equal(await db.sql.execute(`INSERT INTO ${t} (id, s) VALUES ($1, $2)`, [i, s]), 1);
          }
          const rows = await db.sql.query(`SELECT id, s FROM ${t} ORDER BY id`);
          assert.deepEqual(rows.map((r) => r.s), INJECTIONS, target.name);
          const hit = await db.sql.query(`SELECT id FROM ${t} WHERE s = $1`, [INJECTIONS[3]]);
          assert.deepEqual(hit, [{ id: 3 }], target.name);
        } finally {
          await db.sql.execute(`DROP TABLE ${t}`);
        }
      });
    } finally {
      target.after();
    }
  }
});

test('execute counts rows; executeScript runs several statements', async () => {
  for (const target of sqlTargets()) {
    try {
      await withDb(target.url, async (db) => {
        const t = unique('nodet_count');
        await db.sql.executeScript(`CREATE TABLE ${t} (id BIGINT); INSERT INTO ${t} VALUES (0); INSERT INTO ${t} VALUES (1)`);
        try {
          for (let i = 2; i < 5; i++) await db.sql.execute(`INSERT INTO ${t} VALUES ($1)`, [i]);
          assert.equal(await db.sql.execute(`UPDATE ${t} SET id = id + 10 WHERE id >= $1`, [2]), 3);
          assert.equal(await db.sql.execute(`DELETE FROM ${t}`), 5);
          assert.deepEqual(await db.sql.query(`SELECT * FROM ${t}`), []);
        } finally {
          await db.sql.execute(`DROP TABLE ${t}`);
        }
      });
    } finally {
      target.after();
    }
  }
});

test('SQL errors are typed', async () => {
  for (const url of [SQLITE_URL, POSTGRES_URL]) {
    await withDb(url, async (db) => {
      await assert.rejects(db.sql.query('SELEKT nonsense'), (e) => {
        assert.ok(e instanceof dbx.QueryError);
        assert.ok(e instanceof dbx.DbxError);
        assert.ok(e instanceof Error);
        assert.equal(e.kind, 'query');
        assert.equal(e.transient, false);
        assert.equal(e.name, 'QueryError');
        return true;
      });
      await assert.rejects(db.sql.query('SELECT $1', [Symbol('s')]),
        (e) => e instanceof dbx.InvalidInput && /symbol/.test(e.message));
      await assert.rejects(db.sql.query('SELECT $1', [() => 1]),
        (e) => e.kind === 'invalid_input' && /function/.test(e.message));
      await assert.rejects(db.sql.query('SELECT $1', [2n ** 64n]),
        (e) => e instanceof dbx.OutOfRange && e.kind === 'out_of_range');
      await assert.rejects(db.sql.query('SELECT $1', 'not an array'),
        (e) => e instanceof dbx.InvalidInput && /array/.test(e.message));
      await assert.rejects(db.sql.query('SELECT $1', [{ n: NaN }]),
        (e) => e instanceof dbx.InvalidInput && /JSON/.test(e.message));
      await assert.rejects(db.sql.query('SELECT $1', [new Date(NaN)]),
        (e) => e instanceof dbx.InvalidInput && /Date/.test(e.message));
      await assert.rejects(db.sql.query('SELECT $1', [{ b: Buffer.from('x') }]),
        (e) => e instanceof dbx.InvalidInput && /bytes/.test(e.message));
      await assert.rejects(db.sql.query(42), (e) => e instanceof dbx.InvalidInput);
      const cyclic = {};
      cyclic.self = cyclic;
      await assert.rejects(db.sql.query('SELECT $1', [cyclic]),
        (e) => e instanceof dbx.InvalidInput && /deeper/.test(e.message));
      // Wrong parameter count: dbx's own check.
      await assert.rejects(db.sql.query('SELECT $1, $2', [1]), (e) => e instanceof dbx.DbxError);
    });
  }
});

test('PostgreSQL: unique violation is Conflict with SQLSTATE and backend', async () => {
  await withDb(POSTGRES_URL, async (db) => {
    const t = unique('nodet_uniq');
    await db.sql.execute(`CREATE TABLE ${t} (id BIGINT PRIMARY KEY)`);
    try {
      await db.sql.execute(`INSERT INTO ${t} VALUES (1)`);
      await assert.rejects(db.sql.execute(`INSERT INTO ${t} VALUES (1)`), (e) => {
        assert.ok(e instanceof dbx.Conflict);
        assert.equal(e.code, '23505');
        assert.equal(e.backend, 'postgresql');
        return true;
      });
      // A type the column cannot take: a typed error naming the parameter.
      await assert.rejects(db.sql.execute(`INSERT INTO ${t} VALUES ($1)`, ['not a number']),
        (e) => e instanceof dbx.DbxError && /\$1/.test(e.message));
    } finally {
      await db.sql.execute(`DROP TABLE ${t}`);
    }
  });
});
