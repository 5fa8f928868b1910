//! Redis Sentinel (`redis+sentinel://s1,s2,s3/master`): the primary's
//! address is asked of the sentinels, and everything then runs on a
//! single-server connection to it ([`Shared`]: the shared pipelined
//! connection and the pool of exclusive ones).
//!
//! After a failover dbx moves to the new primary by itself, two ways:
//! - a watcher task subscribes to `+switch-master` on one sentinel (the next
//!   one if that one goes away) and switches as soon as the sentinels
//!   announce the new primary;
//! - a command that fails in a way a failover explains (the connection
//!   refused or cut, no reply, `READONLY` from a demoted primary) asks the
//!   sentinels again before its error is returned, so a retry of the
//!   command (dbx's policy retries idempotent operations) goes to the new
//!   primary even if the announcement was missed.
//!
//! The failed command itself is never re-sent here: it gets its typed,
//! transient error, as on a single server.

use crate::config::{RedisConfig, SentinelSpec};
use crate::conn::Shared;
use crate::error::BACKEND;
use dbx_core::{Error, ErrorKind, Result};
use redis::{Cmd, ConnectionAddr, FromRedisValue, Pipeline, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

/// Pause of the watcher before it subscribes again (to the next sentinel).
const WATCH_RETRY: Duration = Duration::from_millis(200);

pub(crate) struct Sentinel {
    /// The URL's configuration: sentinels, master name, and the template of
    /// the primary's connection.
    template: RedisConfig,
    /// The connection to the current primary; `None` once closed.
    current: RwLock<Option<Arc<Shared>>>,
    /// With `replica_reads`: the connection to one replica (`None` until
    /// one is found, and after it failed).
    replica: RwLock<Option<Arc<Shared>>>,
    /// When a replica was last looked for, in ms after `started`.
    replica_sought: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sentinel")
            .field("sentinels", &self.template.target)
            .field("master", &self.spec().master)
            .field(
                "primary",
                &self.current().ok().map(|s| s.config.target.clone()),
            )
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Sentinel {
    /// Ask the sentinels for the primary, connect to it, check that it is
    /// one, and start watching for failovers.
    pub(crate) async fn open(template: RedisConfig) -> Result<Arc<Self>> {
        let mut attempt = 0;
        let shared = loop {
            let (host, port) = ask_sentinels(&template).await?;
            let shared = Shared::open(primary_config(&template, &host, port)).await?;
            match check_primary(&shared).await {
                Ok(()) => break shared,
                // The sentinels may still name a primary that was just
                // demoted; ask again shortly (the connect timeout bounds it).
                Err(e) if attempt < 20 => {
                    tracing::debug!(target: "dbx_redis", error = %e, "asking the sentinels again");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        tracing::debug!(
            target: "dbx_redis",
            master = %template.sentinel.as_ref().map_or("", |s| s.master.as_str()),
            primary = %shared.config.target,
            "connected through the sentinels"
        );
        let sentinel = Arc::new(Sentinel {
            template,
            current: RwLock::new(Some(Arc::new(shared))),
            replica: RwLock::new(None),
            replica_sought: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
            refreshing: tokio::sync::Mutex::new(()),
            watcher: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        let handle = tokio::spawn(watch(Arc::downgrade(&sentinel)));
        *sentinel.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        if sentinel.spec().replica_reads
            && let Err(e) = sentinel.find_replica().await
        {
            tracing::warn!(target: "dbx_redis", error = %e, "no replica to read from yet; reads go to the primary");
        }
        Ok(sentinel)
    }

    /// A read-only command: on the replica with `replica_reads` (the
    /// primary while there is none), else on the primary.
    pub(crate) async fn read<T: FromRedisValue>(self: &Arc<Self>, cmd: Cmd) -> Result<T> {
        let replica = self
            .replica
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(replica) = replica else {
            if self.spec().replica_reads {
                self.seek_replica_soon();
            }
            return self.query(cmd).await;
        };
        replica.query(cmd).await.map_err(|e| {
            if !failover_may_explain(&e) {
                return e;
            }
            // Reads go to the primary until another replica is found (the
            // policy's retry of this read goes there); the replica's failure
            // is not the primary's, so the breaker does not count it.
            let mut guard = self.replica.write().unwrap_or_else(|p| p.into_inner());
            if guard.as_ref().is_some_and(|r| Arc::ptr_eq(r, &replica)) {
                *guard = None;
            }
            e.set_partial(true)
        })
    }

    /// Look for a replica in the background, at most once a second.
    fn seek_replica_soon(self: &Arc<Self>) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.replica_sought.load(Ordering::Relaxed);
        if (last != 0 && now.saturating_sub(last) < 1000)
            || self
                .replica_sought
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            if let Some(s) = me.upgrade()
                && let Err(e) = s.find_replica().await
            {
                tracing::debug!(target: "dbx_redis", error = %e, "no replica to read from yet");
            }
        });
    }

    /// Ask the sentinels for the primary's replicas and connect to a
    /// healthy one (in sync with the primary, not flagged down).
    async fn find_replica(&self) -> Result<()> {
        let spec = self.spec();
        let mut last = None;
        for node in &spec.nodes {
            let asked = async {
                let client = self.template.client_for(node)?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.template.connect_timeout))
                    .set_response_timeout(Some(self.template.timeout));
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(crate::error::map_err)?;
                let replicas: Vec<std::collections::HashMap<String, String>> =
                    redis::cmd("SENTINEL")
                        .arg("REPLICAS")
                        .arg(&spec.master)
                        .query_async(&mut conn)
                        .await
                        .map_err(crate::error::map_err)?;
                Ok::<_, Error>(replicas)
            };
            match asked.await {
                Ok(replicas) => {
                    let healthy = replicas.iter().find_map(|r| {
                        let flags = r.get("flags")?;
                        let down = ["s_down", "o_down", "disconnected"]
                            .iter()
                            .any(|f| flags.contains(f));
                        let linked = r.get("master-link-status").is_none_or(|s| s == "ok");
                        (!down && linked).then(|| {
                            Some((r.get("ip")?.clone(), r.get("port")?.parse::<u16>().ok()?))
                        })?
                    });
                    let Some((host, port)) = healthy else {
                        return Err(Error::new(
                            ErrorKind::Connect,
                            format!("the sentinels know no healthy replica of {:?}", spec.master),
                        )
                        .set_transient(true)
                        .with_backend(BACKEND));
                    };
                    let shared = Shared::open(primary_config(&self.template, &host, port)).await?;
                    tracing::debug!(target: "dbx_redis", replica = %shared.config.target, "reading from a replica");
                    *self.replica.write().unwrap_or_else(|p| p.into_inner()) =
                        Some(Arc::new(shared));
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::invalid_config("no sentinels")))
    }

    fn spec(&self) -> &SentinelSpec {
        // `open` is only called with a Sentinel configuration.
        self.template
            .sentinel
            .as_ref()
            .unwrap_or_else(|| unreachable!("a Sentinel backend without sentinels"))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The connection to the current primary.
    /// The replica reads go to now (`replica_reads`), if one is in use.
    pub(crate) fn replica_in_use(&self) -> Option<Arc<Shared>> {
        self.replica
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn current(&self) -> Result<Arc<Shared>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(crate::error::closed)
    }

    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T> {
        let shared = self.current()?;
        let result = shared.query(cmd).await;
        self.after(&shared, result).await
    }

    pub(crate) async fn query_pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T> {
        let shared = self.current()?;
        let result = shared.query_pipeline(pipe).await;
        self.after(&shared, result).await
    }

    /// On an error a failover explains, find the primary again before
    /// returning it.
    async fn after<T>(&self, used: &Arc<Shared>, result: Result<T>) -> Result<T> {
        // Boxed: connecting to a new primary is a large future, and inline
        // it would be moved with every command's future (measured with
        // callgrind: ~10k instructions of memcpy per GET on every topology).
        if let Err(e) = &result
            && failover_may_explain(e)
            && let Err(refresh) = Box::pin(self.refresh(used, None)).await
        {
            tracing::debug!(target: "dbx_redis", error = %refresh, "asking the sentinels failed");
        }
        result
    }

    /// Move to the primary at `to`, or to the one the sentinels name now,
    /// unless `used` was replaced already or is still the primary.
    async fn refresh(&self, used: &Arc<Shared>, to: Option<(String, u16)>) -> Result<()> {
        let _one = self.refreshing.lock().await;
        if self.is_closed() {
            return Ok(());
        }
        let current = self.current()?;
        if !Arc::ptr_eq(&current, used) {
            return Ok(());
        }
        let (host, port) = match to {
            Some(a) => a,
            None => ask_sentinels(&self.template).await?,
        };
        let config = primary_config(&self.template, &host, port);
        if config.target == current.config.target {
            return Ok(());
        }
        let limit = self.template.connect_timeout;
        let shared = tokio::time::timeout(limit, async {
            let shared = Shared::open(config).await?;
            check_primary(&shared).await?;
            Ok::<_, Error>(shared)
        })
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("connecting to the new primary did not finish within {limit:?}"),
            )
            .with_backend(BACKEND)
        })??;
        tracing::info!(
            target: "dbx_redis",
            master = %self.spec().master,
            from = %current.config.target,
            to = %shared.config.target,
            "following the sentinels to a new primary"
        );
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        if guard.is_some() {
            // The old connection closes once the last command or exclusive
            // connection holding it is done.
            *guard = Some(Arc::new(shared));
        }
        drop(guard);
        // The replica read from may be the new primary now: find another.
        *self.replica.write().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(h) = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
        let taken = self
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(shared) = taken {
            shared.close();
        }
        let replica = self
            .replica
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(r) = replica {
            r.close();
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.template.timeout
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(h) = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
    }
}

/// Errors after which the primary may have changed: the connection was
/// refused, cut or silent, or the server says it is a replica now.
fn failover_may_explain(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout) || e.code() == Some("READONLY")
}

/// The template with the primary's address.
fn primary_config(template: &RedisConfig, host: &str, port: u16) -> RedisConfig {
    let mut c = template.clone();
    let addr = match template.info.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host.to_owned(), port),
    };
    c.info = c.info.set_addr(addr);
    c.target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    c
}

/// `ROLE` must say `master`.
async fn check_primary(shared: &Shared) -> Result<()> {
    let role: Vec<Value> = shared.query(redis::cmd("ROLE")).await?;
    match role.first() {
        Some(Value::BulkString(b)) if b == b"master" => Ok(()),
        _ => Err(Error::new(
            ErrorKind::Connect,
            format!(
                "the sentinels named {} as the primary, but it is not one (a failover in progress?)",
                shared.config.target
            ),
        )
        .set_transient(true)
        .with_backend(BACKEND)),
    }
}

/// Ask each sentinel in turn for the master's address; the first answer wins.
async fn ask_sentinels(template: &RedisConfig) -> Result<(String, u16)> {
    let Some(spec) = &template.sentinel else {
        return Err(Error::invalid_config("not a Sentinel URL"));
    };
    let mut unknown = Vec::new();
    let mut failed = Vec::new();
    for node in &spec.nodes {
        let name = addr_name(node.addr());
        match ask_one(template, node, &spec.master).await {
            Ok(Some(addr)) => return Ok(addr),
            Ok(None) => unknown.push(name),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::invalid_config(format!(
            "no sentinel knows a master named {:?} (asked {}{})",
            crate::config::short(&spec.master),
            unknown.join(", "),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; unreachable: {}", failed.join("; "))
            }
        ))
        .with_backend(BACKEND));
    }
    Err(Error::new(
        ErrorKind::Connect,
        format!("no sentinel answered: {}", failed.join("; ")),
    )
    .set_transient(true)
    .with_backend(BACKEND))
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME` on one sentinel: `None` when it does
/// not know the name.
async fn ask_one(
    template: &RedisConfig,
    node: &redis::ConnectionInfo,
    master: &str,
) -> Result<Option<(String, u16)>> {
    let client = template.client_for(node)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(template.connect_timeout))
        .set_response_timeout(Some(template.timeout));
    let ask = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(master)
            .query_async(&mut conn)
            .await?;
        Ok::<_, redis::RedisError>(reply)
    };
    match tokio::time::timeout(template.connect_timeout + template.timeout, ask).await {
        Ok(r) => r.map_err(|e| crate::error::map_connect_err(e, &addr_name(node.addr()), 0)),
        Err(_) => Err(Error::new(ErrorKind::Timeout, "no answer in time").with_backend(BACKEND)),
    }
}

fn addr_name(addr: &ConnectionAddr) -> String {
    match addr {
        ConnectionAddr::Tcp(h, p)
        | ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } => {
            format!("{h}:{p}")
        }
        other => other.to_string(),
    }
}

/// Follow `+switch-master` announcements of the sentinels, one sentinel at
/// a time, for as long as the backend lives.
async fn watch(sentinel: Weak<Sentinel>) {
    let mut next = 0usize;
    loop {
        let (client, master) = {
            let Some(s) = sentinel.upgrade() else { return };
            if s.is_closed() {
                return;
            }
            let nodes = &s.spec().nodes;
            let node = &nodes[next % nodes.len()];
            next += 1;
            match s.template.client_for(node) {
                Ok(c) => (c, s.spec().master.clone()),
                Err(_) => return,
            }
        };
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe("+switch-master").await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let Ok(Ok(mut pubsub)) = tokio::time::timeout(Duration::from_secs(5), subscribed).await
        else {
            tokio::time::sleep(WATCH_RETRY).await;
            continue;
        };
        let mut messages = pubsub.on_message();
        while let Some(msg) = futures_util::StreamExt::next(&mut messages).await {
            let Ok(text) = msg.get_payload::<String>() else {
                continue;
            };
            // "<name> <old ip> <old port> <new ip> <new port>"
            let parts: Vec<&str> = text.split(' ').collect();
            let [name, _, _, host, port] = parts[..] else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            if name != master {
                continue;
            }
            let Some(s) = sentinel.upgrade() else { return };
            if let Ok(used) = s.current()
                && let Err(e) = s.refresh(&used, Some((host.to_owned(), port))).await
            {
                tracing::warn!(target: "dbx_redis", error = %e, "cannot reach the new primary yet");
            }
        }
        tokio::time::sleep(WATCH_RETRY).await;
    }
}
