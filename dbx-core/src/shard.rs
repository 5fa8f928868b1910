//! Counters split across cache lines by thread, so the success path of
//! operations running on different worker threads does not bounce one cache
//! line between cores. Reads (sums) are rare: stats, shutdown.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// Shards per counter; threads beyond this share shards.
pub(crate) const SHARDS: usize = 8;

/// One cache line (two on CPUs that prefetch pairs) per value.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// This thread's shard, assigned round-robin on first use.
pub(crate) fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// A signed counter whose shards may go negative (an operation may end on
/// another thread than it began); only the sum is meaningful.
#[derive(Debug, Default)]
pub(crate) struct ShardedCounter {
    cells: [Padded<AtomicI64>; SHARDS],
}

impl ShardedCounter {
    pub(crate) fn add(&self, n: i64) {
        // SeqCst: a finishing operation and `close` must agree on the sum.
        self.cells[shard()].0.fetch_add(n, Ordering::SeqCst);
    }

    pub(crate) fn sum(&self) -> i64 {
        self.cells.iter().map(|c| c.0.load(Ordering::SeqCst)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sums_across_threads() {
        let c = Arc::new(ShardedCounter::default());
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(if i % 2 == 0 { 2 } else { -1 });
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(c.sum(), 2 * 2000 - 2000);
    }
}
