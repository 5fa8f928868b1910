//! `KvStore` on Redis strings, one command (or one MULTI/EXEC) per
//! operation, on the shared multiplexed connection.
//!
//! | operation | Redis |
//! |-----------|-------|
//! | get       | `GET k` |
//! | set       | `SET k v [PX ms]` |
//! | set_nx    | `SET k v NX [PX ms]` |
//! | delete    | `DEL k` |
//! | exists    | `EXISTS k` |
//! | incr      | `INCRBY k d` |
//! | mget      | `MGET k...` |
//! | mset      | `MSET k v...`; with a TTL `MULTI`, `SET k v PX ms`..., `EXEC` |
//! | expire    | `PEXPIRE k ms` |
//! | ttl       | `PTTL k` (-2 missing, -1 persistent) |
//! | scan      | `SCAN cursor MATCH <escaped prefix>* COUNT n` |

use crate::topology::Topology;
use dbx_core::driver::{KvStore, ScanPage};
use dbx_core::{Error, Result, Ttl};
use redis::{Cmd, FromRedisValue, Value, cmd};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Largest `COUNT` hint of one `SCAN` call: each call works through about
/// that many hash slots while the server does nothing else.
pub(crate) const MAX_SCAN_COUNT: usize = 10_000;

#[derive(Debug)]
pub(crate) struct RedisKv {
    pub(crate) topo: Topology,
}

/// Milliseconds of a TTL the core has checked (1 ms to 100 years, whole ms).
fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

fn set_cmd(key: &str, value: &[u8], ttl: Option<Duration>, nx: bool) -> Cmd {
    let mut c = cmd("SET");
    c.arg(key).arg(value);
    if nx {
        c.arg("NX");
    }
    if let Some(ttl) = ttl {
        c.arg("PX").arg(millis(ttl));
    }
    c
}

/// `prefix` as a Redis glob that matches it literally, followed by `*`.
pub(crate) fn glob_prefix(prefix: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 8);
    for &b in prefix.as_bytes() {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'*');
    out
}

/// A boxed operation future, as `#[async_trait]` returns it.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// One command's future, boxed at the size of its own topology's path.
///
/// One `async fn` over every topology makes a future the size of the
/// largest path: the single server's, about 1.9 KB, which is beyond the
/// allocator's per-thread cache, so every cluster GET paid a slow
/// allocation and a 2 KB copy for a 200-byte future (callgrind, cluster
/// GET: ~500 of the ~2,500 instructions dbx added to redis-rs's own). The
/// hot commands (GET, SET) therefore box each path on its own.
fn boxed<'a, T: FromRedisValue + Send + 'a>(
    topo: &'a Topology,
    cmd: Cmd,
    read_only: bool,
) -> BoxFuture<'a, T> {
    match topo {
        Topology::Cluster(c) => Box::pin(c.query(cmd)),
        _ if read_only => Box::pin(topo.read(cmd)),
        _ => Box::pin(topo.query(cmd)),
    }
}

#[async_trait::async_trait]
impl KvStore for RedisKv {
    // `get` and `set` spelled as `#[async_trait]` expands them, to box each
    // topology's future at its own size (see `boxed`).
    fn get<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> BoxFuture<'async_trait, Option<Vec<u8>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        boxed(&self.topo, Cmd::get(key), true)
    }

    fn set<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
        value: &'life2 [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        boxed(&self.topo, set_cmd(key, value, ttl, false), false)
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool> {
        let reply: Value = self.topo.query(set_cmd(key, value, ttl, true)).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let n: i64 = self.topo.query(Cmd::del(key)).await?;
        Ok(n > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let n: i64 = self.topo.read(Cmd::exists(key)).await?;
        Ok(n > 0)
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.topo.query(Cmd::incr(key, delta)).await
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let values: Vec<Option<Vec<u8>>> = self.topo.read(Cmd::mget(keys)).await?;
        if values.len() != keys.len() {
            return Err(Error::decode(format!(
                "MGET of {} keys answered {} values",
                keys.len(),
                values.len()
            ))
            .with_backend(crate::error::BACKEND));
        }
        Ok(values)
    }

    async fn mset(&self, entries: &[(&str, &[u8])], ttl: Option<Duration>) -> Result<()> {
        match ttl {
            None => {
                let mut c = cmd("MSET");
                for (k, v) in entries {
                    c.arg(*k).arg(*v);
                }
                self.topo.query(c).await
            }
            Some(ttl) => {
                // MSET has no TTL; SETs in one MULTI/EXEC, sent in one round
                // trip. In a cluster one MULTI/EXEC per hash slot (a
                // transaction cannot span slots), all sent at once.
                let atomic = |entries: &mut dyn Iterator<Item = &(&str, &[u8])>| {
                    let mut pipe = redis::pipe();
                    pipe.atomic();
                    for (k, v) in entries {
                        pipe.add_command(set_cmd(k, v, Some(ttl), false)).ignore();
                    }
                    pipe
                };
                match &self.topo {
                    Topology::Single(_) | Topology::Sentinel(_) => {
                        self.topo.query_pipeline(&atomic(&mut entries.iter())).await
                    }
                    Topology::Cluster(c) => {
                        let mut by_slot: Vec<(redis::cluster_routing::Route, Vec<usize>)> =
                            Vec::new();
                        for (i, (k, _)) in entries.iter().enumerate() {
                            let route = crate::cluster::route_of(k);
                            match by_slot.iter_mut().find(|(r, _)| *r == route) {
                                Some((_, members)) => members.push(i),
                                None => by_slot.push((route, vec![i])),
                            }
                        }
                        let pipes: Vec<redis::Pipeline> = by_slot
                            .iter()
                            .map(|(_, members)| atomic(&mut members.iter().map(|&i| &entries[i])))
                            .collect();
                        futures_util::future::try_join_all(
                            pipes.iter().map(|p| c.query_pipeline::<()>(p)),
                        )
                        .await
                        .map(drop)
                    }
                }
            }
        }
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let n: i64 = self.topo.query(Cmd::pexpire(key, millis(ttl))).await?;
        Ok(n == 1)
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        let ms: i64 = self.topo.read(Cmd::pttl(key)).await?;
        Ok(match ms {
            -2 => Ttl::Missing,
            -1 => Ttl::Persistent,
            ms => Ttl::Expires(Duration::from_millis(ms.max(0).unsigned_abs())),
        })
    }

    async fn scan_page(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage> {
        let count = limit.clamp(1, MAX_SCAN_COUNT);
        if let Topology::Cluster(c) = &self.topo {
            return c
                .scan_page(glob_prefix(prefix), prefix, cursor, count)
                .await;
        }
        let cursor = match cursor {
            None => 0,
            Some(c) => c.parse::<u64>().map_err(|_| {
                Error::invalid_input(format!("scan cursor {c:?} is not a Redis SCAN cursor"))
                    .with_backend(crate::error::BACKEND)
            })?,
        };
        let mut scan = cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(glob_prefix(prefix))
            .arg("COUNT")
            .arg(count);
        let (next, raw_keys): (u64, Vec<Vec<u8>>) = self.topo.read(scan).await?;
        Ok(ScanPage::new(
            utf8_keys(raw_keys, prefix),
            (next != 0).then(|| next.to_string()),
        ))
    }

    fn scan_may_repeat(&self) -> bool {
        true
    }
}

/// The keys of a SCAN reply that are UTF-8 and start with `prefix` (the
/// glob matched them; the check guards against a server that globs
/// differently). Keys that are not UTF-8 were written by another client:
/// skipped, with a warning.
pub(crate) fn utf8_keys(raw_keys: Vec<Vec<u8>>, prefix: &str) -> Vec<String> {
    let mut skipped = 0usize;
    let keys = raw_keys
        .into_iter()
        .filter_map(|k| match String::from_utf8(k) {
            Ok(k) if k.starts_with(prefix) => Some(k),
            Ok(_) => None,
            Err(_) => {
                skipped += 1;
                None
            }
        })
        .collect();
    if skipped > 0 {
        tracing::warn!(
            target: "dbx_redis",
            skipped,
            "scan skipped keys that are not UTF-8 (written by another client)"
        );
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_prefix_escapes_every_special_character() {
        assert_eq!(glob_prefix(""), b"*");
        assert_eq!(glob_prefix("a:b"), b"a:b*");
        assert_eq!(glob_prefix(r"*?[]\x%_"), br"\*\?\[\]\\x%_*".to_vec());
        assert_eq!(glob_prefix("ü\0"), "ü\0*".as_bytes());
    }

    #[test]
    fn ttl_arguments_are_whole_milliseconds() {
        let c = set_cmd("k", b"v", Some(Duration::from_millis(1500)), true);
        let args: Vec<Vec<u8>> = c
            .args_iter()
            .filter_map(|a| match a {
                redis::Arg::Simple(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect();
        assert_eq!(
            args,
            [&b"SET"[..], b"k", b"v", b"NX", b"PX", b"1500"]
                .iter()
                .map(|a| a.to_vec())
                .collect::<Vec<_>>()
        );
    }
}
