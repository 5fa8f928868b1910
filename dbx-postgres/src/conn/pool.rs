//! The deadpool pool of exclusive connections: how one is opened, checked
//! on return and reported when none can be had.

use super::*;

/// Opens connections, each driven on a Tokio task: to the one host of the
/// URL, or to the first host of a list that fits `target_session_attrs`.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) tls: MakeTls,
    /// One configuration per host, in the URL's order.
    pub(crate) hosts: Arc<[tokio_postgres::Config]>,
    pub(crate) session: SessionAttrs,
    pub(crate) load_balance: bool,
    /// `host:port` of the host the last connection went to (for `stats()`).
    pub(crate) last_host: Arc<Mutex<Option<String>>>,
}

pub(crate) type ConnectFuture<'a> = Pin<
    Box<dyn Future<Output = Result<(Client, JoinHandle<()>), tokio_postgres::Error>> + Send + 'a>,
>;

impl Connector {
    pub(crate) fn open(&self, config: &tokio_postgres::Config) -> ConnectFuture<'static> {
        let tls = self.tls.clone();
        let config = config.clone();
        Box::pin(async move {
            let (client, connection) = config.connect(tls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "postgres connection ended with an error");
                }
            });
            Ok((client, task))
        })
    }
}

/// `host:port` of a one-host configuration, for messages.
pub(crate) fn host_name(c: &tokio_postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) if h.contains(':') => format!("[{h}]"),
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "?".to_owned(),
    };
    format!("{host}:{}", c.get_ports().first().copied().unwrap_or(5432))
}

/// Whether a server in this state fits `want`.
fn fits(want: SessionAttrs, in_recovery: bool, read_only: bool) -> bool {
    match want {
        SessionAttrs::Any => true,
        SessionAttrs::ReadWrite => !read_only,
        SessionAttrs::ReadOnly => read_only,
        SessionAttrs::Primary => !in_recovery,
        SessionAttrs::Standby | SessionAttrs::PreferStandby => in_recovery,
    }
}

/// `(pg_is_in_recovery(), transaction_read_only)` of a new connection, in
/// one round trip.
async fn server_state(client: &Client) -> std::result::Result<(bool, bool), tokio_postgres::Error> {
    let messages = client
        .simple_query("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
        .await?;
    for m in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
            return Ok((row.get(0) == Some("t"), row.get(1) == Some("on")));
        }
    }
    Ok((false, false))
}

/// A different order of `0..n` on each call.
fn shuffled(n: usize) -> Vec<usize> {
    static SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = SEED.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) ^ u64::from(nanos);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = usize::try_from(x % (i as u64 + 1)).unwrap_or(0);
        order.swap(i, j);
    }
    order
}

impl Connector {
    /// Connect to a host that fits `target_session_attrs`: the hosts in
    /// the URL's order (a random one with `load_balance_hosts=random`), the
    /// first that accepts the login and is the right kind of server wins;
    /// with `prefer-standby` a second pass takes any server. Errors are
    /// mapped; with several hosts a `Connect` error says what each was.
    pub(crate) async fn connect(&self) -> Result<(Client, JoinHandle<()>)> {
        if self.hosts.len() == 1 && self.session == SessionAttrs::Any {
            return self.open(&self.hosts[0]).await.map_err(map_err);
        }
        let (client, task, i) = self.connect_fitting().await?;
        let name = host_name(&self.hosts[i]);
        *self.last_host.lock().unwrap_or_else(|p| p.into_inner()) = Some(name);
        Ok((client, task))
    }

    /// The host of the last connection, with several hosts.
    pub(crate) fn last_host(&self) -> Option<String> {
        self.last_host
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Open a connection to each host (bounded by `limit`) and ask it
    /// whether it is a standby: every host's role and state.
    pub(crate) async fn probe_hosts(&self, limit: Duration) -> Vec<NodeStatus> {
        let probes = self.hosts.iter().map(|config| async move {
            let addr = host_name(config);
            let probe = async {
                let (client, task) = self.open(config).await.map_err(map_err)?;
                let state = server_state(&client).await.map_err(map_err);
                drop(client);
                task.abort();
                state
            };
            match tokio::time::timeout(limit, probe).await {
                Ok(Ok((recovery, _))) => {
                    let role = if recovery {
                        NodeRole::Replica
                    } else {
                        NodeRole::Primary
                    };
                    NodeStatus::new(addr, role, NodeState::Up)
                }
                Ok(Err(e)) => NodeStatus::new(addr, NodeRole::Peer, NodeState::Down)
                    .with_error(e.message().to_owned()),
                Err(_) => NodeStatus::new(addr, NodeRole::Peer, NodeState::Down)
                    .with_error(format!("no answer within {limit:?}")),
            }
        });
        futures_util::future::join_all(probes).await
    }

    /// Connect to the first host that fits, and say which it was.
    async fn connect_fitting(&self) -> Result<(Client, JoinHandle<()>, usize)> {
        let order = if self.load_balance {
            shuffled(self.hosts.len())
        } else {
            (0..self.hosts.len()).collect()
        };
        let passes: &[SessionAttrs] = if self.session == SessionAttrs::PreferStandby {
            &[SessionAttrs::PreferStandby, SessionAttrs::Any]
        } else {
            std::slice::from_ref(&self.session)
        };
        let mut notes: Vec<String> = Vec::new();
        let mut errors: Vec<Error> = Vec::new();
        for (pass, &want) in passes.iter().enumerate() {
            for &i in &order {
                let config = &self.hosts[i];
                let name = host_name(config);
                let (client, task) = match self.open(config).await {
                    Ok(c) => c,
                    Err(e) => {
                        if pass == 0 {
                            let e = map_err(e);
                            notes.push(format!("{name}: {}", e.message()));
                            errors.push(e);
                        }
                        continue;
                    }
                };
                if want == SessionAttrs::Any {
                    return Ok((client, task, i));
                }
                match server_state(&client).await {
                    Ok((recovery, read_only)) if fits(want, recovery, read_only) => {
                        return Ok((client, task, i));
                    }
                    Ok((recovery, read_only)) => {
                        if pass == 0 {
                            notes.push(format!(
                                "{name} is {}",
                                if recovery {
                                    "a standby"
                                } else if read_only {
                                    "read-only"
                                } else {
                                    "a primary"
                                }
                            ));
                        }
                    }
                    Err(e) => {
                        if pass == 0 {
                            notes.push(format!("{name}: {}", map_err(e).message()));
                        }
                    }
                }
            }
        }
        // Every host refused the same way for a reason a retry does not fix
        // (a wrong password, a missing database): that error, as is.
        if errors.len() == self.hosts.len()
            && let Some(i) = errors.iter().position(|e| !e.is_transient())
        {
            return Err(errors.swap_remove(i));
        }
        Err(Error::new(
            ErrorKind::Connect,
            format!(
                "no host fits target_session_attrs={} ({})",
                self.session.name(),
                notes.join("; ")
            ),
        )
        .set_transient(true)
        .with_backend(BACKEND))
    }
}

impl deadpool_postgres::Connect for Connector {
    fn connect(&self, config: &tokio_postgres::Config) -> ConnectFuture<'_> {
        self.open(config)
    }
}

/// A pooled connection.
pub(crate) struct PgConn {
    pub(crate) client: ClientWrapper,
    pub(crate) stmts: StmtCache,
    pub(crate) created: Instant,
    pub(crate) idle_since: Instant,
}

impl fmt::Debug for PgConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.client.is_closed())
            .field("age", &self.created.elapsed())
            .finish()
    }
}

/// deadpool manager: deadpool-postgres's, plus `max_lifetime` and
/// `idle_timeout`. Recycling verifies each connection with a round trip.
pub(crate) struct PgManager {
    /// deadpool-postgres's manager, for recycling only (its checks and
    /// statement-cache clean-up); connections come from `connector`.
    pub(crate) inner: deadpool_postgres::Manager,
    pub(crate) connector: Connector,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
}

impl fmt::Debug for PgManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl PgManager {
    /// Whether a connection has outlived `max_lifetime` or sat idle past `idle_timeout`.
    pub(crate) fn expired(&self, c: &PgConn) -> Option<&'static str> {
        if self.max_lifetime.is_some_and(|m| c.created.elapsed() >= m) {
            Some("max_lifetime reached")
        } else if self
            .idle_timeout
            .is_some_and(|m| c.idle_since.elapsed() >= m)
        {
            Some("idle_timeout reached")
        } else {
            None
        }
    }
}

impl managed::Manager for PgManager {
    type Type = PgConn;
    type Error = Error;

    async fn create(&self) -> Result<PgConn> {
        let (client, task) = self.connector.connect().await?;
        let now = Instant::now();
        Ok(PgConn {
            client: ClientWrapper::new(client, task),
            stmts: StmtCache::default(),
            created: now,
            idle_since: now,
        })
    }

    async fn recycle(&self, conn: &mut PgConn, metrics: &Metrics) -> managed::RecycleResult<Error> {
        if let Some(why) = self.expired(conn) {
            return Err(RecycleError::message(why));
        }
        managed::Manager::recycle(&self.inner, &mut conn.client, metrics)
            .await
            .map_err(|e| match e {
                RecycleError::Backend(e) => RecycleError::Backend(map_err(e)),
                RecycleError::Message(m) => RecycleError::Message(m),
            })
    }

    fn detach(&self, conn: &mut PgConn) {
        managed::Manager::detach(&self.inner, &mut conn.client);
    }
}

pub(crate) fn pool_error(e: PoolError<Error>, s: &Settings) -> Error {
    match e {
        PoolError::Timeout(TimeoutType::Wait) => Error::new(
            ErrorKind::PoolTimeout,
            format!(
                "no pooled connection became free within {:?} (pool_max_size {})",
                s.acquire_timeout, s.pool_max_size
            ),
        ),
        PoolError::Timeout(_) => Error::new(
            ErrorKind::Connect,
            format!(
                "connecting to {} did not finish within {:?}",
                s.target, s.connect_timeout
            ),
        )
        .set_transient(true),
        // Only creating a connection fails with a backend error.
        PoolError::Backend(e) => connect_error(s, e),
        PoolError::Closed => Error::new(ErrorKind::Closed, "the connection pool was closed"),
        other => Error::new(
            ErrorKind::Other,
            format!("connection pool failure: {other}"),
        ),
    }
    .with_backend(BACKEND)
}

/// A failure to connect, naming where to.
pub(crate) fn connect_error(s: &Settings, e: Error) -> Error {
    Error::new(
        e.kind(),
        format!("connecting to {}: {}", s.target, e.message()),
    )
    .set_transient(e.is_transient())
    .with_source(e)
    .with_backend(BACKEND)
}
