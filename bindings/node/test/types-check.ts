// Compiled (not run) by `npm run typecheck`: index.d.ts must describe the
// documented usage.
import {
  Dbx, DbxError, Closed, InvalidInput, ERROR_KINDS, type ErrorKind, type Row, type Hit,
} from '../index';

async function main(): Promise<void> {
  const db: Dbx = await Dbx.connect('sqlite::memory:', { timeout: 2000, connectTimeout: 500, poolMaxSize: 4 });
  const rows: Row[] = await db.sql.query('SELECT $1 AS a, $2 AS b', [1, 2n, 'x', Buffer.from('y'), new Date(), null, { j: [1] }]);
  const n: number = await db.sql.execute('DELETE FROM t WHERE id = $1', [1]);
  await db.sql.executeScript('CREATE TABLE t (id INTEGER); DROP TABLE t');
  const v: Buffer | null = await db.kv.get('k');
  await db.kv.set('k', 'v', { ttl: 1000 });
  await db.kv.set('k', Buffer.from('v'), 1000);
  const c: number | bigint = await db.kv.incr('n', 5n);
  const keys: string[] = await db.kv.scan('k');
  const gone: boolean = await db.kv.delete('k');
  const coll = db.docs.collection('people');
  await coll.insertOne({ name: 'Ada' });
  const people = await coll.find({ age: { $gt: 1 } }, { sort: { age: 1 }, limit: 2 });
  const upd = await coll.updateMany({}, { $set: { x: 1 } });
  const vecs = db.vectors.collection('v');
  await vecs.createIfMissing(3, 'cosine');
  await vecs.upsert([{ id: 1, vector: [1, 0, 0], payload: { kind: 'a' } }]);
  const hits: Hit[] = await vecs.search([1, 0, 0], 5, { filter: { must: [] }, withVectors: true });
  const h = await db.health();
  const latency: number = h.latencyMs;
  const closed: boolean = await db.close();
  try {
    await db.kv.get('k');
  } catch (e) {
    if (e instanceof DbxError) {
      const kind: ErrorKind = e.kind;
      const t: boolean = e.transient;
      const b: string | null = e.backend;
      void kind; void t; void b;
    }
    if (e instanceof Closed) {
      const k: 'closed' = e.kind;
      void k;
    }
  }
  const err = new InvalidInput('bad');
  const kinds: readonly ErrorKind[] = ERROR_KINDS;
  void rows; void n; void v; void c; void keys; void gone; void people; void upd; void hits;
  void latency; void closed; void err; void kinds;
}

void main;
