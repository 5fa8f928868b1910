'use strict';
// Measured run (not a test): kv.get throughput through the binding.
//   node bench/kv-get.js [url] [ops] [concurrency]
// e.g. node bench/kv-get.js redis://127.0.0.1:6379 20000 1
// Prints ops/s. Build the addon with `npm run build:release` before
// measuring; a debug addon measures unoptimised Rust.
const { Dbx } = require('..');

async function main() {
  const url = process.argv[2] || 'sqlite::memory:';
  const ops = Number(process.argv[3] || 20000);
  const conc = Number(process.argv[4] || 1);
  const db = await Dbx.connect(url);
  const key = `nodebench:${process.pid}`;
  await db.kv.set(key, Buffer.alloc(16, 7));
  for (let i = 0; i < 1000; i++) await db.kv.get(key); // warm-up
  let left = ops;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (left-- > 0) await db.kv.get(key);
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await db.kv.delete(key);
  await db.close();
  console.log(`node ${url} ops=${ops} concurrency=${conc}: ${Math.round(ops / secs)} ops/s`);
}

main().catch((e) => { console.error(e); process.exit(1); });
