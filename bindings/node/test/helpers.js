'use strict';
// Servers the tests talk to: SQLite (memory and temp files), Redis and
// PostgreSQL on loopback (DBX_TEST_REDIS_URL / DBX_TEST_POSTGRES_URL
// override), MongoDB when DBX_TEST_MONGO_URL is set (scripts/test.sh sets it).

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const dbx = require('..');

const SQLITE_URL = 'sqlite::memory:';
const REDIS_URL = process.env.DBX_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const POSTGRES_URL = process.env.DBX_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const MONGO_URL = process.env.DBX_TEST_MONGO_URL || '';

/** A name no other test run uses. */
function unique(prefix) {
  return `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
}

/** A SQLite URL of a fresh file in a temporary directory (removed by the returned cleanup). */
function sqliteFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbx-node-'));
  return { url: `sqlite:${path.join(dir, 'test.db')}`, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `fn(db)` on a fresh connection and closes it afterwards. */
async function withDb(url, fn, options) {
  const db = await dbx.Dbx.connect(url, options);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

module.exports = { dbx, SQLITE_URL, REDIS_URL, POSTGRES_URL, MONGO_URL, unique, sqliteFile, withDb };
