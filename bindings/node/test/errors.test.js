'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');

const { dbx, SQLITE_URL, REDIS_URL, POSTGRES_URL, sqliteFile } = require('./helpers');

test('a bad URL is InvalidConfig naming the problem', async () => {
  await assert.rejects(dbx.Dbx.connect('nosuchscheme://x'), (e) => {
    assert.ok(e instanceof dbx.InvalidConfig);
    assert.equal(e.kind, 'invalid_config');
    assert.equal(e.name, 'InvalidConfig');
    assert.match(e.message, /nosuchscheme/);
    return true;
  });
  await assert.rejects(dbx.Dbx.connect(`${POSTGRES_URL}?pool_max_size=banana`),
    (e) => e instanceof dbx.InvalidConfig && /pool_max_size/.test(e.message));
  await assert.rejects(dbx.Dbx.connect('not a url at all'), (e) => e instanceof dbx.InvalidConfig);
  await assert.rejects(dbx.Dbx.connect(''), (e) => e instanceof dbx.InvalidConfig);
});

test('a password never shows in an error', async () => {
  const secret = 'hunter2-s3cr3t';
  await assert.rejects(
    dbx.Dbx.connect(`postgres://postgres:${secret}@127.0.0.1:1/postgres?pool_max_size=banana`),
    (e) => {
      assert.ok(e instanceof dbx.DbxError);
      assert.ok(!e.message.includes(secret), e.message);
      assert.ok(!String(e.stack).includes(secret));
      return true;
    });
  await assert.rejects(
    dbx.Dbx.connect(`redis://:${secret}@127.0.0.1:1`, { connectTimeout: 300, timeout: 500 }),
    (e) => e instanceof dbx.DbxError && !e.message.includes(secret));
});

test('bad options are InvalidInput', async () => {
  await assert.rejects(dbx.Dbx.connect(SQLITE_URL, { timeout: -1 }), (e) => e instanceof dbx.InvalidInput);
  await assert.rejects(dbx.Dbx.connect(SQLITE_URL, { timeout: 'soon' }), (e) => e instanceof dbx.InvalidInput);
  await assert.rejects(dbx.Dbx.connect(SQLITE_URL, { poolMaxSize: 1.5 }), (e) => e instanceof dbx.InvalidInput);
  await assert.rejects(dbx.Dbx.connect(SQLITE_URL, 'options'), (e) => e instanceof dbx.InvalidInput);
  await assert.rejects(dbx.Dbx.connect(42), (e) => e instanceof dbx.InvalidInput);
});

test('an unreachable server fails with a connect or timeout error', async () => {
  // Port 1 on loopback: nothing listens, the connection is refused.
  for (const url of ['postgres://postgres@127.0.0.1:1/postgres', 'redis://127.0.0.1:1']) {
    await assert.rejects(dbx.Dbx.connect(url, { connectTimeout: 500, timeout: 1000 }), (e) => {
      assert.ok(e instanceof dbx.ConnectError || e instanceof dbx.Timeout, `${url}: ${e.name}: ${e.message}`);
      assert.ok(['connect', 'timeout'].includes(e.kind));
      assert.equal(e.transient, true);
      return true;
    });
  }
});

test('a server that accepts but never answers: the short connect timeout decides', async () => {
  // A loopback listener that takes connections and says nothing.
  const sockets = new Set();
  const server = net.createServer((s) => { sockets.add(s); s.on('error', () => {}); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  try {
    for (const url of [`postgres://postgres@127.0.0.1:${port}/postgres`, `redis://127.0.0.1:${port}`]) {
      await assert.rejects(dbx.Dbx.connect(url, { connectTimeout: 300, timeout: 600 }), (e) => {
        assert.ok(['connect', 'timeout'].includes(e.kind), `${url}: ${e.name}: ${e.message}`);
        assert.equal(e.transient, true);
        return true;
      });
    }
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a missing capability is Unsupported', async () => {
  const sqlite = await dbx.Dbx.connect(SQLITE_URL);
  const redis = await dbx.Dbx.connect(REDIS_URL);
  try {
    assert.throws(() => sqlite.docs, (e) => e instanceof dbx.Unsupported && e.kind === 'unsupported');
    assert.throws(() => redis.sql, (e) => e instanceof dbx.Unsupported);
    assert.throws(() => redis.vectors, (e) => e instanceof dbx.Unsupported);
    assert.equal(sqlite.backend, 'sqlite');
    assert.equal(redis.backend, 'redis');
  } finally {
    await sqlite.close();
    await redis.close();
  }
});

test('close then use is a Closed error', async () => {
  const file = sqliteFile();
  try {
    for (const url of [file.url, REDIS_URL, POSTGRES_URL]) {
      const db = await dbx.Dbx.connect(url);
      const kv = db.kv;
      assert.equal(db.closed, false);
      assert.equal(await db.close(), true);
      assert.equal(await db.close(), true, 'close() is idempotent');
      assert.equal(db.closed, true);
      await assert.rejects(kv.get('k'), (e) => {
        assert.ok(e instanceof dbx.Closed, `${url}: ${e.name}: ${e.message}`);
        assert.equal(e.kind, 'closed');
        return true;
      });
      await assert.rejects(db.health(), (e) => e instanceof dbx.Closed);
      if (url !== REDIS_URL) {
        await assert.rejects(db.sql.query('SELECT 1'), (e) => e instanceof dbx.Closed);
      }
    }
  } finally {
    file.cleanup();
  }
});

test('every kind has a class, in the Python binding\'s names', () => {
  const expected = {
    invalid_config: 'InvalidConfig', invalid_input: 'InvalidInput', unsupported: 'Unsupported',
    connect: 'ConnectError', auth: 'AuthError', timeout: 'Timeout', pool_timeout: 'PoolTimeout',
    circuit_open: 'CircuitOpen', not_found: 'NotFound', query: 'QueryError', conflict: 'Conflict',
    wrong_type: 'WrongType', out_of_range: 'OutOfRange', decode: 'DecodeError', closed: 'Closed',
    other: 'OtherError',
  };
  assert.deepEqual([...dbx.ERROR_KINDS].sort(), Object.keys(expected).sort());
  for (const [kind, name] of Object.entries(expected)) {
    const cls = dbx[name];
    const e = new cls('m');
    assert.ok(e instanceof dbx.DbxError && e instanceof Error);
    assert.equal(e.kind, kind);
    assert.equal(e.name, name);
    assert.equal(e.message, 'm');
  }
});

test('health reports the backend and pool', async () => {
  for (const url of [SQLITE_URL, POSTGRES_URL, REDIS_URL]) {
    const db = await dbx.Dbx.connect(url);
    try {
      const h = await db.health();
      assert.equal(h.backend, db.backend);
      assert.equal(typeof h.latencyMs, 'number');
      assert.ok(h.latencyMs >= 0);
      assert.equal(h.breaker, 'closed');
      if (url === POSTGRES_URL) assert.equal(typeof h.pool.maxSize, 'number');
    } finally {
      await db.close();
    }
  }
});
