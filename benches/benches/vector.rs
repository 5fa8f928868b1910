//! Exact vector search on SQLite through dbx: 384-dimension cosine vectors
//! (pseudo-random, fixed seed), 10k and 100k points (and 1M with
//! `DBX_BENCH_VECTOR_1M=1`: building it takes a minute and ~6 GB of
//! memory), top 10, with and without a payload filter (`_filtered`:
//! `group == 3`, a tenth of the points).
//!
//! Stores: an in-memory database (`sqlite_memory`) and a file in the
//! temporary directory (`sqlite_file`, WAL), both searched through the
//! vector mirror (`vector_mirror_max_bytes` raised to fit 1M points); the
//! same file with mirrors off (`vector_mirror_max_bytes=0`), so every search
//! reads the rows, plain (`sqlite_file_rows`) and through a memory map
//! (`sqlite_file_mmap_rows`, `mmap_size=2147418112`). The 1M size runs
//! only the first of these lines, on a file (SQLite's in-memory databases
//! stop at 1 GiB). As the floor, the same brute-force scan over a
//! plain `Vec<f32>` with no database (`flat_scan`, the same
//! `Distance::score` kernel).
//!
//! After each size, `ratio` lines: the mirror search (unfiltered; in
//! memory, on a file at 1M)
//! and `flat_scan` timed alternately on the same queries, 2 x 25 rounds (10
//! at 1M), median over median: the figure the performance table reports,
//! with both sides measured side by side under the same load of the
//! machine.
//!
//! Upserts in batches of 256 overwriting points of a 10k collection, in
//! memory and on file.
//!
//! On Qdrant (`vector/qdrant_search_10k`), when `DBX_BENCH_QDRANT_URL` (else
//! `DBX_TEST_QDRANT_URL`) names a server: the same 10k points and queries
//! (same generator), upserted once through dbx in batches of 256 (each
//! waiting for the write) into a collection named per run, then the same
//! top-10 cosine search through dbx (`dbx`) and through the raw
//! `qdrant_client::Qdrant` on dbx's connection model (`raw_qdrant_client`),
//! on the same server and collection; the collection is dropped at the end.
//! Without a server these lines are skipped with a loud message. A debug
//! build of Qdrant makes the absolute times meaningless: read the ratio.
//!
//! In test mode (`cargo test --all-targets`) the collections hold 200 points.
//!
//! `cargo bench -p benches --bench vector` (`-- qdrant` for the Qdrant lines,
//! `DBX_BENCH_VECTOR_1M=1` for the 1M size)

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dbx::serde_json::json;
use dbx::vector::{Condition, Distance, Filter, Point, Search};
use dbx::{Dbx, VectorCollection};
use qdrant_client::qdrant::{CollectionStatus, Query, QueryPointsBuilder};
use std::hint::black_box;
use std::time::{Duration, Instant};

const DIM: usize = 384;
const TOP: usize = 10;
const BATCH: usize = 256;

/// Collection sizes: 10k and 100k under `cargo bench` (and 1M with
/// `DBX_BENCH_VECTOR_1M=1`), 200 in test mode.
fn sizes() -> Vec<usize> {
    if benches::bench_mode() {
        let mut sizes = vec![10_000, 100_000];
        if std::env::var("DBX_BENCH_VECTOR_1M").is_ok_and(|v| v == "1") {
            sizes.push(1_000_000);
        }
        sizes
    } else {
        vec![200]
    }
}

/// Room for the mirror of the largest collection (1M x 384 x 4 bytes and
/// the ids: ~1.6 GB).
const MIRROR: &str = "vector_mirror_max_bytes=2GiB";

/// xorshift64*: a fixed-seed stream of components in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn vector(&mut self) -> Vec<f32> {
        (0..DIM).map(|_| self.next_f32()).collect()
    }
}

fn point(rng: &mut Rng, id: u64) -> Point {
    Point::new(id, rng.vector())
        .with_payload(json!({"group": id % 10, "title": format!("document {id}")}))
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn filled(db: &Dbx, name: &str, n: usize, rng: &mut Rng) -> VectorCollection {
    let c = db.vectors().unwrap().collection(name);
    c.create(DIM, Distance::Cosine).await.unwrap();
    let mut id = 0u64;
    while (id as usize) < n {
        let batch: Vec<Point> = (0..BATCH.min(n - id as usize))
            .map(|i| point(rng, id + i as u64))
            .collect();
        c.upsert(&batch).await.unwrap();
        id += batch.len() as u64;
    }
    c
}

/// Top `k` of a flat array by cosine (vectors normalised up front): the
/// brute-force floor with no database in the way.
fn flat_top(data: &[f32], query: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut top: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (i, v) in data.chunks_exact(DIM).enumerate() {
        let s = Distance::Cosine.score(query, v);
        if top.len() < k || s > top[top.len() - 1].0 {
            let at = top.partition_point(|(t, _)| *t >= s);
            top.insert(at, (s, i));
            top.truncate(k);
        }
    }
    top
}

/// A scratch database file (and its WAL), removed when dropped.
struct ScratchFile(std::path::PathBuf);

impl ScratchFile {
    fn new(name: &str) -> ScratchFile {
        let path = std::env::temp_dir().join(format!("dbx-bench-{}-{name}.db", std::process::id()));
        let f = ScratchFile(path);
        f.remove();
        f
    }

    fn url(&self, params: &str) -> String {
        format!("sqlite://{}{params}", self.0.display())
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Bench unfiltered and filtered top-10 searches on `coll` as `line`.
fn search_lines(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    line: &str,
    coll: &VectorCollection,
    queries: &[Vec<f32>],
) {
    let group3 = Filter::new().must(Condition::eq("group", 3));
    let mut q = 0usize;
    g.bench_function(line, |b| {
        b.to_async(rt).iter(|| {
            q = (q + 1) % queries.len();
            let s = Search::new(queries[q].clone(), TOP);
            async move { black_box(coll.search(&s).await.unwrap()) }
        })
    });
    g.bench_function(format!("{line}_filtered"), |b| {
        b.to_async(rt).iter(|| {
            q = (q + 1) % queries.len();
            let s = Search::new(queries[q].clone(), TOP).filter(group3.clone());
            async move {
                let hits = coll.search(&s).await.unwrap();
                assert!(
                    hits.iter()
                        .all(|h| h.payload.as_ref().unwrap()["group"] == 3)
                );
                black_box(hits)
            }
        })
    });
}

/// Seed of the SQLite and Qdrant search benches: the first 16 vectors are
/// the queries, the points follow.
const SEARCH_SEED: u64 = 0x5EED_CAFE;

fn search(c: &mut Criterion) {
    let rt = runtime();
    let mut rng = Rng(SEARCH_SEED);
    let queries: Vec<Vec<f32>> = (0..16).map(|_| rng.vector()).collect();
    let prepared: Vec<Vec<f32>> = queries
        .iter()
        .map(|v| Distance::Cosine.prepare(v))
        .collect();
    for n in sizes() {
        let label = if n >= 1_000_000 {
            format!("{}M", n / 1_000_000)
        } else if n >= 1000 {
            format!("{}k", n / 1000)
        } else {
            n.to_string()
        };
        let mut g = c.benchmark_group(format!("vector/search_{label}"));
        if n >= 100_000 {
            g.sample_size(10).measurement_time(Duration::from_secs(10));
        }
        // The same points (same seed) in memory and in a file.
        let seed = rng.0;
        // SQLite's in-memory databases stop at 1 GiB: 1M points go to a file.
        let big = ScratchFile::new(&format!("search-{n}-first"));
        let (first, url) = if n >= 1_000_000 {
            // Loading the mirror reads 1.6 GB: more than the default timeout
            // allows on a busy machine.
            ("sqlite_file", big.url(&format!("?{MIRROR}&timeout=300s")))
        } else {
            ("sqlite_memory", format!("sqlite::memory:?{MIRROR}"))
        };
        let memory = rt.block_on(Dbx::connect(&url)).unwrap();
        let coll = rt.block_on(filled(&memory, "docs", n, &mut Rng(seed)));
        // The same vectors, as stored (normalised), in one flat array.
        let flat: Vec<f32> = rt.block_on(async {
            let ids: Vec<dbx::PointId> = (0..n as u64).map(dbx::PointId::Num).collect();
            let mut flat = Vec::with_capacity(n * DIM);
            for chunk in ids.chunks(1024) {
                for r in coll.get(chunk).await.unwrap() {
                    flat.extend(r.vector.unwrap());
                }
            }
            flat
        });
        // Both find the same points.
        let ours: Vec<dbx::PointId> = rt
            .block_on(coll.search(&Search::new(queries[0].clone(), TOP)))
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        let floor: Vec<dbx::PointId> = flat_top(&flat, &prepared[0], TOP)
            .into_iter()
            .map(|(_, i)| dbx::PointId::Num(i as u64))
            .collect();
        assert_eq!(ours, floor, "the mirror and the flat scan disagree");
        search_lines(&mut g, &rt, first, &coll, &queries);
        let mut q = 0usize;
        g.bench_function("flat_scan", |b| {
            b.iter(|| {
                q = (q + 1) % prepared.len();
                black_box(flat_top(&flat, &prepared[q], TOP))
            })
        });
        g.finish();
        ratio(&rt, &label, first, &coll, &flat, &queries, &prepared);
        rt.block_on(memory.close());
        drop((coll, memory, flat, big));
        if n >= 1_000_000 {
            continue;
        }

        let mut g = c.benchmark_group(format!("vector/search_{label}"));
        if n >= 100_000 {
            g.sample_size(10).measurement_time(Duration::from_secs(10));
        }
        let file = ScratchFile::new(&format!("search-{n}"));
        let db = rt
            .block_on(Dbx::connect(&file.url(&format!("?{MIRROR}"))))
            .unwrap();
        let coll = rt.block_on(filled(&db, "docs", n, &mut Rng(seed)));
        search_lines(&mut g, &rt, "sqlite_file", &coll, &queries);
        rt.block_on(db.close());
        for (line, params) in [
            ("sqlite_file_rows", "?vector_mirror_max_bytes=0"),
            (
                "sqlite_file_mmap_rows",
                "?vector_mirror_max_bytes=0&mmap_size=2147418112",
            ),
        ] {
            let db = rt.block_on(Dbx::connect(&file.url(params))).unwrap();
            let coll = db.vectors().unwrap().collection("docs");
            search_lines(&mut g, &rt, line, &coll, &queries);
            rt.block_on(db.close());
        }
        g.finish();
    }
}

/// The mirror search in memory against the flat scan, timed alternately
/// (see the module docs), printed as `vector/search_<n>/ratio`.
fn ratio(
    rt: &tokio::runtime::Runtime,
    label: &str,
    line: &str,
    coll: &VectorCollection,
    flat: &[f32],
    queries: &[Vec<f32>],
    prepared: &[Vec<f32>],
) {
    if !benches::bench_mode() {
        return;
    }
    let rounds = if flat.len() >= 1_000_000 * DIM {
        10
    } else {
        25
    };
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for r in 0..2 * rounds {
        let q = r % queries.len();
        let s = Search::new(queries[q].clone(), TOP);
        let start = Instant::now();
        black_box(rt.block_on(coll.search(&s)).unwrap());
        ours.push(start.elapsed());
        let start = Instant::now();
        black_box(flat_top(flat, &prepared[q], TOP));
        floor.push(start.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (o, f) = (median(&mut ours), median(&mut floor));
    println!(
        "vector/search_{label}/ratio: {line} (mirror) {o:.2?} / flat_scan {f:.2?} = {:.2}x \
         (medians of {} alternating runs)",
        o.as_secs_f64() / f.as_secs_f64(),
        2 * rounds
    );
}

fn upsert(c: &mut Criterion) {
    let rt = runtime();
    let mut rng = Rng(0xB0A7);
    let n = sizes()[0];
    let file = ScratchFile::new("upsert");
    let mut g = c.benchmark_group("vector/upsert");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (line, url) in [
        ("sqlite_memory", "sqlite::memory:".to_owned()),
        ("sqlite_file", file.url("")),
    ] {
        let db = rt.block_on(Dbx::connect(&url)).unwrap();
        let coll = rt.block_on(filled(&db, "upserts", n, &mut rng));
        // Pre-built batches overwriting existing points, so the table keeps its size.
        let batches: Vec<Vec<Point>> = (0..8u64)
            .map(|b| {
                (0..BATCH as u64)
                    .map(|i| point(&mut rng, (b * BATCH as u64 + i) % n as u64))
                    .collect()
            })
            .collect();
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new(line, BATCH), |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 1) % batches.len();
                let (coll, batch) = (&coll, &batches[i]);
                async move { coll.upsert(batch).await.unwrap() }
            })
        });
        rt.block_on(db.close());
    }
    g.finish();
}

/// Wait until the optimizer is done with `name` (status green), so it does
/// not run beside the measurements.
async fn wait_green(raw: &qdrant_client::Qdrant, name: &str) {
    let start = Instant::now();
    loop {
        let info = raw.collection_info(name).await.unwrap();
        let status = info.result.map(|r| r.status);
        if status == Some(CollectionStatus::Green as i32) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "Qdrant collection {name} not green after 10 min (status {status:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Top-10 search on Qdrant: dbx against the raw client, same server, same
/// collection, same queries.
fn qdrant(c: &mut Criterion) {
    let Some(url) = benches::qdrant_url() else {
        println!(
            "\n*** SKIPPED: the Qdrant vector search bench (vector/qdrant_search_*): \
             neither DBX_BENCH_QDRANT_URL nor DBX_TEST_QDRANT_URL is set; start a server with \
             `export DBX_BENCH_QDRANT_URL=$(bash scripts/start-qdrant.sh)` ***\n"
        );
        return;
    };
    if !benches::reachable(&url, 6334) {
        println!(
            "\n*** SKIPPED: the Qdrant vector search bench (vector/qdrant_search_*): \
             no server reachable at {url} ***\n"
        );
        return;
    }
    let rt = runtime();
    let n = sizes()[0];
    let label = if n >= 1000 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    };
    let mut rng = Rng(SEARCH_SEED);
    let queries: Vec<Vec<f32>> = (0..16).map(|_| rng.vector()).collect();
    let name = format!(
        "dbx_bench_search_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let (db, coll, raw) = rt.block_on(async {
        let db = Dbx::connect(&url).await.unwrap();
        let coll = filled(&db, &name, n, &mut rng).await;
        let raw = benches::raw_qdrant(&url).unwrap();
        wait_green(&raw, &name).await;
        (db, coll, raw)
    });
    // Both sides see the same collection and find the same points.
    rt.block_on(async {
        let ours: Vec<u64> = coll
            .search(&Search::new(queries[0].clone(), TOP))
            .await
            .unwrap()
            .into_iter()
            .map(|h| match h.id {
                dbx::PointId::Num(i) => i,
                other => panic!("unexpected id {other:?}"),
            })
            .collect();
        let theirs: Vec<u64> = raw
            .query(
                QueryPointsBuilder::new(name.as_str())
                    .query(Query::new_nearest(queries[0].clone()))
                    .limit(TOP as u64)
                    .with_payload(true),
            )
            .await
            .unwrap()
            .result
            .into_iter()
            .map(|p| match p.id.and_then(|i| i.point_id_options) {
                Some(qdrant_client::qdrant::point_id::PointIdOptions::Num(i)) => i,
                other => panic!("unexpected id {other:?}"),
            })
            .collect();
        assert_eq!(ours, theirs, "dbx and the raw client disagree");
        assert_eq!(ours.len(), TOP.min(n));
    });

    let mut g = c.benchmark_group(format!("vector/qdrant_search_{label}"));
    let mut q = 0usize;
    g.bench_function("dbx", |b| {
        b.to_async(&rt).iter(|| {
            q = (q + 1) % queries.len();
            let s = Search::new(queries[q].clone(), TOP);
            let coll = &coll;
            async move { black_box(coll.search(&s).await.unwrap()) }
        })
    });
    g.bench_function("raw_qdrant_client", |b| {
        b.to_async(&rt).iter(|| {
            q = (q + 1) % queries.len();
            let request = QueryPointsBuilder::new(name.as_str())
                .query(Query::new_nearest(queries[q].clone()))
                .limit(TOP as u64)
                .with_payload(true);
            let raw = &raw;
            async move { black_box(raw.query(request).await.unwrap()) }
        })
    });
    g.finish();
    rt.block_on(async {
        coll.drop().await.unwrap();
        db.close().await;
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = search, upsert, qdrant
}
criterion_main!(benches);
