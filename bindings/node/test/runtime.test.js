'use strict';
// Concurrency across several Dbx objects, and the process exiting on its
// own once the databases are closed (or just dropped).
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const { dbx, SQLITE_URL, REDIS_URL, POSTGRES_URL, unique } = require('./helpers');

test('many promises over several Dbx objects at once', async () => {
  const dbs = await Promise.all([
    dbx.Dbx.connect(POSTGRES_URL), dbx.Dbx.connect(POSTGRES_URL, { poolMaxSize: 2 }),
    dbx.Dbx.connect(SQLITE_URL), dbx.Dbx.connect(REDIS_URL),
  ]);
  const [pg1, pg2, lite, redis] = dbs;
  const key = unique('nodet:many');
  try {
    const jobs = [];
    for (let i = 0; i < 100; i++) {
      jobs.push(pg1.sql.query('SELECT $1::bigint AS n', [i]).then((r) => r[0].n));
      jobs.push(pg2.sql.query('SELECT $1::text AS s', [`s${i}`]).then((r) => r[0].s));
      jobs.push(lite.sql.query('SELECT $1 AS n', [i * 2]).then((r) => r[0].n));
      jobs.push(redis.kv.incr(key));
    }
    const out = await Promise.all(jobs);
    for (let i = 0; i < 100; i++) {
      assert.equal(out[4 * i], i);
      assert.equal(out[4 * i + 1], `s${i}`);
      assert.equal(out[4 * i + 2], i * 2);
    }
    assert.equal(await redis.kv.incr(key, 0), 100);
    // A pool of 2 under 100 concurrent queries: none failed, all answered.
    const h = await pg2.health();
    assert.equal(h.pool.maxSize, 2);
  } finally {
    await redis.kv.delete(key);
    await Promise.all(dbs.map((db) => db.close()));
  }
});

test('a failed promise does not disturb the others in flight', async () => {
  const db = await dbx.Dbx.connect(POSTGRES_URL);
  try {
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) =>
      (i % 4 === 0 ? db.sql.query('SELEKT broken') : db.sql.query('SELECT $1::int AS i', [i]))));
    results.forEach((r, i) => {
      if (i % 4 === 0) {
        assert.equal(r.status, 'rejected');
        assert.equal(r.reason.kind, 'query');
      } else {
        assert.deepEqual(r.value, [{ i }]);
      }
    });
  } finally {
    await db.close();
  }
});

/** Runs a script in a child node; resolves { code, stdout, stderr, hung }. */
function runChild(script, { limitMs = 30_000, flags = [] } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...flags, '-e', script], {
      cwd: path.join(__dirname, '..'),
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    // A bounded wait: a process that never exits is the failure being tested.
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, limitMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, hung: signal === 'SIGKILL' });
    });
  });
}

const PRELUDE = `
const dbx = require('./index.js');
const urls = ${JSON.stringify({ SQLITE_URL, REDIS_URL, POSTGRES_URL })};
`;

test('the process exits by itself after close()', async () => {
  const r = await runChild(`${PRELUDE}
    (async () => {
      for (const url of Object.values(urls)) {
        const db = await dbx.Dbx.connect(url);
        await db.health();
        if (db.backend !== 'redis') await db.sql.query('SELECT 1 AS one');
        else await db.kv.get('nodet:exit');
        await db.close();
      }
      console.log('done');
    })().catch((e) => { console.error(e); process.exit(3); });
  `);
  assert.equal(r.hung, false, 'the child process did not exit after close()');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'done');
});

test('the process exits by itself with databases never closed', async () => {
  const r = await runChild(`${PRELUDE}
    (async () => {
      const dbs = [];
      for (const url of Object.values(urls)) dbs.push(await dbx.Dbx.connect(url));
      await Promise.all(dbs.map((db) => db.health()));
      console.log('done');
    })().catch((e) => { console.error(e); process.exit(3); });
  `);
  assert.equal(r.hung, false, 'the child process hung with open databases');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'done');
});

test('the process exits after databases are garbage collected', async () => {
  const r = await runChild(`${PRELUDE}
    (async () => {
      for (let i = 0; i < 20; i++) {
        let db = await dbx.Dbx.connect(i % 2 ? urls.POSTGRES_URL : urls.SQLITE_URL);
        await db.sql.query('SELECT 1 AS one');
        db = null;
      }
      // The handles are unreachable: collect them, so their pools are dropped
      // (on the runtime) before the process ends.
      for (let i = 0; i < 3; i++) { global.gc(); await new Promise((r) => setTimeout(r, 20)); }
      const db = await dbx.Dbx.connect(urls.POSTGRES_URL);
      console.log(JSON.stringify(await db.sql.query('SELECT 1 AS one')));
    })().catch((e) => { console.error(e); process.exit(3); });
  `, { flags: ['--expose-gc'] });
  assert.equal(r.hung, false);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '[{"one":1}]');
});

test('worker threads each use the addon', async () => {
  const r = await runChild(`${PRELUDE}
    const { Worker } = require('node:worker_threads');
    const work = \`
      const { parentPort, workerData } = require('node:worker_threads');
      const dbx = require(workerData.index);
      (async () => {
        const db = await dbx.Dbx.connect(workerData.url);
        const rows = await db.sql.query(db.backend === 'sqlite' ? 'SELECT $1 AS n' : 'SELECT $1::bigint AS n', [workerData.n]);
        await db.close();
        parentPort.postMessage(rows[0].n);
      })();
    \`;
    (async () => {
      const index = require.resolve('./index.js');
      const got = await Promise.all([1, 2, 3].map((n) => new Promise((res, rej) => {
        const w = new Worker(work, { eval: true, workerData: { index, n, url: n === 2 ? urls.POSTGRES_URL : urls.SQLITE_URL } });
        w.once('message', res);
        w.once('error', rej);
      })));
      console.log(JSON.stringify(got));
    })().catch((e) => { console.error(e); process.exit(3); });
  `);
  assert.equal(r.hung, false, 'hung');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '[1,2,3]');
});
