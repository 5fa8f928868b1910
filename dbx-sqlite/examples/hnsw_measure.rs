//! The HNSW index against the exact mirror scan, side by side in one run:
//! recall@10, search latency, build time and memory per point.
//!
//! ```sh
//! cargo run --release -p dbx-sqlite --features hnsw --example hnsw_measure -- 100000 384
//! ```
//!
//! Arguments: points (default 100000), dimension (384), queries (200),
//! centres (100), the per-search `hnsw_ef` values to try, comma-separated
//! (default: none, i.e. the URL's `hnsw_ef_search`), and the URL's
//! `hnsw_ef_search` (default: the driver's). One graph is built and searched
//! with each value in turn; the truth is the same handle's exact search
//! (`Search::exact`, the mirror scan). Data: cosine vectors around random
//! centres (each component the centre's plus uniform noise of half its
//! range); queries are fresh points from the same distribution.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::panic)]

use dbx_core::driver::Backend;
use dbx_core::vector::{Distance, Point, Search};
use dbx_core::{ConnectOptions, Result};
use dbx_sqlite::SqliteBackend;
use std::time::{Duration, Instant};

fn noise(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn point(i: u64, dim: usize, centres: &[Vec<f32>]) -> Vec<f32> {
    let c = &centres[(i.wrapping_mul(31) % centres.len() as u64) as usize];
    noise(i, dim)
        .iter()
        .zip(c)
        .map(|(e, c)| c + 0.5 * e)
        .collect()
}

/// Resident memory of this process, from /proc (Linux).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

async fn open(url: &str) -> SqliteBackend {
    SqliteBackend::open(&ConnectOptions::from_url(url).unwrap())
        .await
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args.first().map_or(100_000, |a| a.parse().unwrap());
    let dim: usize = args.get(1).map_or(384, |a| a.parse().unwrap());
    let queries: u64 = args.get(2).map_or(200, |a| a.parse().unwrap());
    let k: u64 = args.get(3).map_or(100, |a| a.parse().unwrap());
    let efs: Vec<Option<usize>> = match args.get(4) {
        None => vec![None],
        Some(a) => a.split(',').map(|e| Some(e.parse().unwrap())).collect(),
    };
    // The URL's hnsw_ef_search (the default of searches that set none).
    let build_ef: Option<usize> = args.get(5).map(|a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?vector_mirror_max_bytes=8GiB&timeout=900s",
        dir.path().join("measure.db").display()
    );
    let loader = open(&url).await;
    let ev = loader.vectors().unwrap();
    ev.create_collection("m", dim, Distance::Cosine).await?;
    let centres: Vec<Vec<f32>> = (0..k).map(|c| noise(u64::MAX - c, dim)).collect();
    let t = Instant::now();
    for start in (0..n).step_by(10_000) {
        let batch: Vec<Point> = (start..(start + 10_000).min(n))
            .map(|i| Point::new(i, point(i, dim, &centres)))
            .collect();
        ev.upsert("m", &batch).await?;
    }
    println!(
        "{n} x {dim} cosine, {k} centres; upserted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // (`loader` stays open: what closing it frees would be reused by the
    // mirror and hide its size in the RSS figures below.)

    // The index: the first search loads the mirror and starts the build.
    let indexed = open(&format!(
        "{url}&vector_index=hnsw&vector_index_min_points=0{}",
        build_ef.map_or(String::new(), |e| format!("&hnsw_ef_search={e}"))
    ))
    .await;
    let iv = indexed.vectors().unwrap();
    let probe = Search::new(point(u64::MAX / 2, dim, &centres), 10);
    let rss0 = rss_bytes();
    let t = Instant::now();
    iv.search("m", &probe).await?;
    let mirror_loaded = t.elapsed();
    let rss_mirror = rss_bytes();
    loop {
        iv.search("m", &probe).await?;
        if indexed.vector_index_stats().unwrap().searches_answered > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let build = t.elapsed() - mirror_loaded;
    let rss_graph = rss_bytes();
    let mirror_bytes = rss_mirror.saturating_sub(rss0);
    let graph_bytes = rss_graph.saturating_sub(rss_mirror);
    println!(
        "index build: {:.1} s ({:.1} s per 100k points); mirror load {:.2} s",
        build.as_secs_f64(),
        build.as_secs_f64() * 100_000.0 / n as f64,
        mirror_loaded.as_secs_f64()
    );
    println!(
        "memory (RSS growth): mirror {:.0} MB ({} B/point), graph {:.0} MB ({} B/point, {} of it the vector copy)",
        mirror_bytes as f64 / 1e6,
        mirror_bytes / n,
        graph_bytes as f64 / 1e6,
        graph_bytes / n,
        dim * 4
    );

    // The truth, by exact searches of the same handle (the mirror scan).
    let qs: Vec<Search> = (0..queries)
        .map(|q| Search::new(point(1u64 << 40 | q, dim, &centres), 10))
        .collect();
    let mut te = Vec::new();
    let mut truth = Vec::new();
    for s in &qs {
        let t = Instant::now();
        truth.push(iv.search("m", &s.clone().exact(true)).await?);
        te.push(t.elapsed());
    }
    te.sort();
    println!(
        "exact mirror scan: p50 {:.2} ms, p95 {:.2} ms",
        percentile(&te, 0.5),
        percentile(&te, 0.95)
    );
    // The same graph, searched with each candidate list in turn.
    for ef in efs {
        let before = indexed.vector_index_stats().unwrap().searches_answered;
        let mut ti = Vec::new();
        let (mut found, mut asked) = (0usize, 0usize);
        for (s, truth) in qs.iter().zip(&truth) {
            let s = match ef {
                Some(e) => s.clone().hnsw_ef(e),
                None => s.clone(),
            };
            let t = Instant::now();
            let approx = iv.search("m", &s).await?;
            ti.push(t.elapsed());
            found += truth
                .iter()
                .filter(|h| approx.iter().any(|a| a.id == h.id))
                .count();
            asked += truth.len();
        }
        ti.sort();
        let through = indexed.vector_index_stats().unwrap().searches_answered - before;
        println!(
            "hnsw_ef={:<8} p50 {:.2} ms, p95 {:.2} ms, recall@10 {:.3} ({through} of {queries} searches through the index)",
            ef.map_or("default".to_owned(), |e| e.to_string()),
            percentile(&ti, 0.5),
            percentile(&ti, 0.95),
            found as f64 / asked as f64,
        );
    }
    indexed.close().await;
    println!("done");
    Ok(())
}
