//! Failover tests of scale-out topologies: throwaway topologies started by
//! the scripts in `scripts/` (and stopped when dropped), a write load that
//! logs every call, and the figures read off that log.

use dbx::Kv;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A topology started by `scripts/<script>` (which prints its URL), stopped
/// with `<script> --stop URL` when dropped.
#[derive(Debug)]
pub struct Topology {
    pub url: String,
    script: PathBuf,
}

impl Topology {
    pub fn start(script: &str) -> Topology {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../scripts")
            .join(script);
        let out = Command::new("bash").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Topology {
            url: String::from_utf8(out.stdout).unwrap().trim().to_owned(),
            script,
        }
    }
}

impl Topology {
    /// What the topology's script says about its state (`<script> --logs
    /// URL`; the Redis Cluster script prints each node's view and log tail),
    /// for a failure message.
    pub fn diagnostics(&self) -> String {
        match Command::new("bash")
            .arg(&self.script)
            .arg("--logs")
            .arg(&self.url)
            .output()
        {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("no diagnostics: {e}"),
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("--stop")
            .arg(&self.url)
            .status();
    }
}

/// `kill -9` a process.
pub fn kill9(pid: u32) {
    assert!(
        Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success()
    );
}

/// The `process_id` of an `INFO server` reply.
pub fn process_id(info: &str) -> u32 {
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

struct Call {
    sent: Instant,
    done: Instant,
    key: String,
    ok: bool,
}

/// Tasks writing keys `<prefix><task>:<n>` (the key as its value), one
/// after the other, logging each call.
pub struct WriteLoad {
    log: Arc<Mutex<Vec<Call>>>,
    kinds: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What a write load saw around a failover.
#[derive(Debug)]
pub struct Figures {
    /// From the new primary's readiness to the first write that succeeded
    /// on it.
    pub first_ok: Duration,
    /// From the new primary's readiness to the end of the last failed
    /// write (zero when none failed after it).
    pub all_ok: Duration,
    pub writes: usize,
    pub acknowledged: usize,
    pub failed: usize,
    /// Error kinds of the failed writes (each was transient).
    pub kinds: BTreeSet<String>,
    pub longest_call: Duration,
    /// Acknowledged writes whose value is not there afterwards.
    pub lost: usize,
}

impl WriteLoad {
    pub fn start(kv: &Kv, tasks: usize, prefix: &str) -> WriteLoad {
        let log: Arc<Mutex<Vec<Call>>> = Arc::default();
        let kinds: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|t| {
                let (kv, log, kinds, stop) = (kv.clone(), log.clone(), kinds.clone(), stop.clone());
                let prefix = prefix.to_owned();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("{prefix}{t}:{n}");
                        let sent = Instant::now();
                        let result = kv.set(&key, key.as_bytes(), None).await;
                        let done = Instant::now();
                        let ok = result.is_ok();
                        if let Err(e) = result {
                            // Typed and transient: safe to try again.
                            assert!(e.is_transient(), "{e}");
                            kinds.lock().unwrap().insert(e.kind().to_string());
                        }
                        log.lock().unwrap().push(Call {
                            sent,
                            done,
                            key,
                            ok,
                        });
                        n += 1;
                        if !ok {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                })
            })
            .collect();
        WriteLoad {
            log,
            kinds,
            stop,
            tasks,
        }
    }

    /// Stop the writers, check every acknowledged write through `kv`, and
    /// measure from `ready` (the new primary serving).
    pub async fn finish(self, kv: &Kv, killed: Instant, ready: Instant) -> Figures {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let log = std::mem::take(&mut *self.log.lock().unwrap());
        let after: Vec<&Call> = log.iter().filter(|c| c.sent >= killed).collect();
        let first_ok = after
            .iter()
            .filter(|c| c.ok && c.done >= ready)
            .map(|c| c.done)
            .min()
            .expect("no write succeeded after the failover");
        let last_failure = after.iter().filter(|c| !c.ok).map(|c| c.done).max();
        let acked: Vec<&str> = log
            .iter()
            .filter(|c| c.ok)
            .map(|c| c.key.as_str())
            .collect();
        let mut lost = 0;
        for chunk in acked.chunks(500) {
            for (k, v) in chunk.iter().zip(kv.mget(chunk).await.unwrap()) {
                if v.as_deref() != Some(k.as_bytes()) {
                    lost += 1;
                }
            }
        }
        Figures {
            first_ok: first_ok.saturating_duration_since(ready),
            all_ok: last_failure.map_or(Duration::ZERO, |t| t.saturating_duration_since(ready)),
            writes: log.len(),
            acknowledged: acked.len(),
            failed: log.iter().filter(|c| !c.ok).count(),
            kinds: std::mem::take(&mut *self.kinds.lock().unwrap()),
            longest_call: log
                .iter()
                .map(|c| c.done - c.sent)
                .max()
                .unwrap_or_default(),
            lost,
        }
    }
}
