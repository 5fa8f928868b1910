//! Redis: the key-value conformance suite against a real server, and what
//! only Redis has: raw commands, exclusive connections, TLS, unix sockets,
//! and how it behaves with bad input and bad servers.
//!
//! Tests that need a special server (a password, TLS, a socket, a restart)
//! start a throwaway `redis-server` on a free loopback port in a temporary
//! directory and stop it when done; the shared server is never reconfigured.

use dbx::redis::redis::{self as rr, cmd};
use dbx::{Dbx, ErrorKind, Ttl};
use dbx_tests::{expect_kind, prefix};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared test server (`DBX_TEST_REDIS_URL`, default the local one).
pub(crate) fn url() -> String {
    std::env::var("DBX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

async fn connect() -> Dbx {
    let db = Dbx::connect(&url()).await.unwrap();
    // Once per run: remove what crashed or earlier runs left in the shared server.
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| dbx_tests::sweep_stale_test_keys(&db))
        .await;
    db
}

mod kv {
    dbx_tests::kv_conformance!(crate::redis::connect);
}

#[cfg(feature = "cache")]
async fn connect_cached() -> Dbx {
    let sep = if url().contains('?') { '&' } else { '?' };
    Dbx::connect(&format!("{}{sep}cache=true", url()))
        .await
        .unwrap()
}
#[cfg(feature = "cache")]
mod cache_kv {
    dbx_tests::cache_kv_conformance!(crate::redis::connect_cached);
}

/// With `tcp_nodelay=false` the kernel may coalesce the commands of many
/// tasks into one packet: each still gets its own reply, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tcp_nodelay_pipelined_commands_keep_their_replies() {
    let sep = if url().contains('?') { '&' } else { '?' };
    let db = Dbx::connect(&format!("{}{sep}tcp_nodelay=false", url()))
        .await
        .unwrap();
    let kv = db.kv().unwrap().clone();
    let p = prefix("nodelay");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (kv, p) = (kv.clone(), p.clone());
            tokio::spawn(async move {
                for j in 0..20 {
                    let (k, v) = (format!("{p}{i}-{j}"), format!("value {i}-{j}"));
                    kv.set(&k, &v, None).await.unwrap();
                    assert_eq!(kv.get(&k).await.unwrap(), Some(v.into_bytes()));
                    assert!(kv.delete(&k).await.unwrap());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// A number from the `INFO stats` section of a Redis server.
async fn info_stat(raw: &dbx::redis::RedisBackend, name: &str) -> u64 {
    let info: String = raw.cmd(cmd("INFO").arg("stats")).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in INFO stats"))
        .trim()
        .parse()
        .unwrap()
}

/// Single commands of concurrent tasks go out together on the shared
/// connection (far fewer reads on the server than commands), and each task
/// still gets its own reply: its value, or the server's error for its
/// command alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn concurrent_commands_share_writes_and_keep_their_own_replies() {
    let server = TempRedis::start(&[]);
    let db = Dbx::connect(&server.url("")).await.unwrap();
    let raw = db.redis().unwrap();
    let (reads, commands) = (
        info_stat(raw, "total_reads_processed").await,
        info_stat(raw, "total_commands_processed").await,
    );
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let (kv, raw) = (db.kv().unwrap(), db.redis().unwrap());
                let text = format!("text{i}");
                kv.set(&text, b"not a number", None).await.unwrap();
                for j in 0..40i64 {
                    let n = kv.incr(&format!("n{i}"), i + 1).await.unwrap();
                    assert_eq!(n, (j + 1) * (i + 1));
                    if j % 8 == 0 {
                        // Fails alone, inside a batch of commands that succeed.
                        let e = raw.cmd::<i64>(cmd("INCR").arg(&text)).await.unwrap_err();
                        assert!(e.to_string().contains("not an integer"), "{e}");
                    }
                    let v = kv.get(&text).await.unwrap();
                    assert_eq!(v.as_deref(), Some(&b"not a number"[..]));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let reads = info_stat(raw, "total_reads_processed").await - reads;
    let commands = info_stat(raw, "total_commands_processed").await - commands;
    // 50 x (1 SET + 40 x 2 + 5 failing INCRs) commands, plus the INFO.
    assert!(commands >= 50 * 86, "{commands} commands");
    assert!(
        reads * 4 < commands,
        "{reads} reads for {commands} commands: the commands were not sent together"
    );
}

// --- throwaway servers ------------------------------------------------------

/// A loopback port nothing listens on (right now).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn redis_server_binary() -> String {
    std::env::var("DBX_TEST_REDIS_SERVER").unwrap_or_else(|_| {
        if Path::new("/usr/bin/redis-server").exists() {
            "/usr/bin/redis-server".to_owned()
        } else {
            "redis-server".to_owned()
        }
    })
}

/// A `redis-server` of this test's own, killed when dropped.
struct TempRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TempRedis {
    /// Start a server on a free port with extra arguments (`--requirepass x`...).
    fn start(extra: &[&str]) -> TempRedis {
        Self::start_in(tempfile::tempdir().unwrap(), free_port(), extra)
    }

    fn start_in(dir: tempfile::TempDir, port: u16, extra: &[&str]) -> TempRedis {
        let child = Command::new(redis_server_binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server (install it: apt-get install redis-server): {e}")
            });
        let server = TempRedis { child, port, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        // A TLS-only server listens on its TLS port; `port 0` servers on a socket.
        let socket = self.dir.path().join("redis.sock");
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                || std::os::unix::net::UnixStream::connect(&socket).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    fn url(&self, userinfo: &str) -> String {
        format!("redis://{userinfo}127.0.0.1:{}", self.port)
    }

    /// Kill the server, keeping its directory and port for a restart.
    fn kill(mut self) -> (tempfile::TempDir, u16) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, port)
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a failing connect may take: its timeout plus a loose margin.
fn within(start: Instant, limit: Duration) {
    let took = start.elapsed();
    assert!(
        took < limit + Duration::from_secs(2),
        "took {took:?}, limit {limit:?}"
    );
}

// --- bad input and bad servers ----------------------------------------------

#[tokio::test]
async fn wrong_password_is_auth_and_never_shows_the_password() {
    let server = TempRedis::start(&["--requirepass", "s3cret-pass"]);
    for userinfo in [
        ":wr0ng-pass@",
        "default:wr0ng-pass@",
        "nosuchuser:wr0ng-pass@",
    ] {
        let url = server.url(userinfo);
        let start = Instant::now();
        let e = expect_kind(Dbx::connect(&url).await, ErrorKind::Auth);
        within(start, Duration::from_secs(10));
        assert!(!e.is_transient(), "{e}");
        assert_eq!(e.operation(), Some("connect"));
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("wr0ng-pass"), "{shown}");
            assert!(!shown.contains("s3cret-pass"), "{shown}");
        }
    }
    // No password at all: the server's NOAUTH is an Auth error at connect.
    let e = expect_kind(Dbx::connect(&server.url("")).await, ErrorKind::Auth);
    assert!(!e.is_transient());
    // The right one works, and is never shown either.
    let db = Dbx::connect(&server.url(":s3cret-pass@")).await.unwrap();
    db.kv().unwrap().set("k", b"v", None).await.unwrap();
    let mut conn = db.redis().unwrap().exclusive().await.unwrap();
    let _: String = conn.cmd(&cmd("PING")).await.unwrap();
    for shown in [
        format!("{db:?}"),
        db.options().to_string(),
        format!("{:?}", db.redis().unwrap()),
        format!("{conn:?}"),
    ] {
        assert!(!shown.contains("s3cret-pass"), "{shown}");
    }
}

#[tokio::test]
async fn acl_users_authenticate_with_user_and_password() {
    let server = TempRedis::start(&[]);
    let admin = Dbx::connect(&server.url("")).await.unwrap();
    let raw = admin.redis().unwrap();
    raw.cmd::<()>(
        cmd("ACL")
            .arg("SETUSER")
            .arg("ada")
            .arg("on")
            .arg(">ada-pass")
            .arg("~app:*")
            .arg("+@all"),
    )
    .await
    .unwrap();
    let ada = Dbx::connect(&server.url("ada:ada-pass@")).await.unwrap();
    let kv = ada.kv().unwrap();
    kv.set("app:1", b"v", None).await.unwrap();
    assert_eq!(kv.get("app:1").await.unwrap().as_deref(), Some(&b"v"[..]));
    // Outside the user's key pattern: NOPERM, an Auth error that is not transient.
    let e = expect_kind(kv.set("other:1", b"v", None).await, ErrorKind::Auth);
    assert!(!e.is_transient());
    let e = expect_kind(
        Dbx::connect(&server.url("ada:not-her-pass@")).await,
        ErrorKind::Auth,
    );
    assert!(!e.to_string().contains("not-her-pass"), "{e}");
}

#[tokio::test]
async fn closed_port_is_connect_error_within_connect_timeout() {
    let port = free_port();
    let limit = Duration::from_secs(2);
    let start = Instant::now();
    let e = expect_kind(
        Dbx::builder(&format!("redis://127.0.0.1:{port}"))
            .connect_timeout(limit)
            .connect()
            .await,
        ErrorKind::Connect,
    );
    within(start, limit);
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.operation(), Some("connect"));
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn a_server_speaking_another_protocol_fails_within_the_timeouts() {
    // PostgreSQL, when it runs here: it answers Redis bytes with its own
    // protocol, or hangs up.
    let limit = Duration::from_secs(2);
    let start = Instant::now();
    let r = Dbx::builder("redis://127.0.0.1:5432")
        .connect_timeout(limit)
        .timeout(limit)
        .connect()
        .await;
    within(start, limit);
    let e = r.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{e}"
    );

    // A peer that answers garbage, and one that never answers at all.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_port = garbage.local_addr().unwrap().port();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let peers = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                Ok((s, _)) = garbage.accept() => {
                    let _ = s.writable().await;
                    let _ = s.try_write(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02garbage\r\n");
                    held.push(s);
                }
                Ok((s, _)) = silent.accept() => held.push(s),
            }
        }
    });
    for port in [garbage_port, silent_port] {
        let start = Instant::now();
        let e = Dbx::builder(&format!("redis://127.0.0.1:{port}"))
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await
            .unwrap_err();
        within(start, Duration::from_secs(1));
        assert!(
            matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
            "port {port}: {e}"
        );
    }
    peers.abort();
}

#[tokio::test]
async fn database_index_is_checked() {
    // Not a number: refused before connecting.
    for bad in ["redis://127.0.0.1:6379/abc", "redis://127.0.0.1:6379/-1"] {
        let e = expect_kind(Dbx::connect(bad).await, ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("database index"), "{e}");
    }
    // A number the server does not have: a typed error at connect.
    let server = TempRedis::start(&["--databases", "4"]);
    let e = expect_kind(
        Dbx::connect(&format!("{}/99", server.url(""))).await,
        ErrorKind::InvalidConfig,
    );
    assert!(e.to_string().contains("database 99"), "{e}");
    assert!(!e.is_transient());
    // One it has is used: keys land in that database only.
    let db3 = Dbx::connect(&format!("{}/3", server.url("")))
        .await
        .unwrap();
    db3.kv().unwrap().set("where", b"3", None).await.unwrap();
    let db0 = Dbx::connect(&format!("{}?db=0", server.url("")))
        .await
        .unwrap();
    assert_eq!(db0.kv().unwrap().get("where").await.unwrap(), None);
    let n: i64 = db3.redis().unwrap().cmd(&cmd("DBSIZE")).await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn oversized_values_are_rejected_before_sending_and_the_limit_fits() {
    let db = connect().await;
    let kv = db.kv().unwrap();
    let p = prefix("redis_big");
    let key = format!("{p}k");
    let too_big = vec![7u8; dbx::core::kv::MAX_VALUE_LEN + 1];
    let e = expect_kind(kv.set(&key, &too_big, None).await, ErrorKind::InvalidInput);
    assert!(e.to_string().contains("limit"), "{e}");
    expect_kind(
        kv.mset(&[(key.as_str(), too_big.as_slice())], None).await,
        ErrorKind::InvalidInput,
    );
    let exists: i64 = db
        .redis()
        .unwrap()
        .cmd(cmd("EXISTS").arg(&key))
        .await
        .unwrap();
    assert_eq!(exists, 0, "nothing reached the server");
    // The largest allowed value goes through whole.
    let max: Vec<u8> = (0..dbx::core::kv::MAX_VALUE_LEN)
        .map(|i| (i % 251) as u8)
        .collect();
    kv.set(&key, &max, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(kv.get(&key).await.unwrap().as_deref(), Some(max.as_slice()));
    kv.delete(&key).await.unwrap();
}

#[tokio::test]
async fn injection_strings_in_keys_are_stored_verbatim() {
    let db = connect().await;
    let kv = db.kv().unwrap();
    let raw = db.redis().unwrap();
    let p = prefix("redis_inject");
    let victim = format!("{p}victim");
    kv.set(&victim, b"intact", None).await.unwrap();
    let odd = [
        format!("x\r\nDEL {victim}\r\n"),
        format!("*2\r\n$3\r\nDEL\r\n${}\r\n{victim}\r\n", victim.len()),
        "\r\n+OK\r\n".to_owned(),
        "FLUSHALL".to_owned(),
        "\"; FLUSHDB; --".to_owned(),
        "*?[^a-z]\\*".to_owned(),
        "tab\there nul\0 end".to_owned(),
    ];
    for (i, s) in odd.iter().enumerate() {
        let key = format!("{p}{s}");
        kv.set(&key, s.as_bytes(), None).await.unwrap();
        assert_eq!(
            kv.get(&key).await.unwrap().as_deref(),
            Some(s.as_bytes()),
            "key {i}"
        );
        // The very bytes are the key on the server.
        let n: i64 = raw.cmd(cmd("EXISTS").arg(key.as_bytes())).await.unwrap();
        assert_eq!(n, 1, "key {i}");
        assert_eq!(kv.incr(&format!("{key}:n"), 2).await.unwrap(), 2);
    }
    assert_eq!(
        kv.get(&victim).await.unwrap().as_deref(),
        Some(&b"intact"[..])
    );
    let mut found = kv.scan_keys(&p).await.unwrap();
    found.sort();
    assert_eq!(found.len(), 1 + 2 * odd.len(), "{found:?}");
    // A glob-looking prefix matches only itself.
    let mut globby = kv.scan_keys(&format!("{p}*?[")).await.unwrap();
    globby.sort();
    assert_eq!(
        globby,
        vec![format!("{p}*?[^a-z]\\*"), format!("{p}*?[^a-z]\\*:n")]
    );
    for k in found {
        kv.delete(&k).await.unwrap();
    }
}

#[tokio::test]
async fn any_scan_page_size_works() {
    use futures_util::TryStreamExt;
    let db = connect().await;
    let kv = db.kv().unwrap();
    let p = prefix("redis_scan_sizes");
    for i in 0..5 {
        kv.set(&format!("{p}{i}"), b"v", Some(Duration::from_secs(60)))
            .await
            .unwrap();
    }
    for size in [1, usize::MAX] {
        let keys: Vec<String> = kv
            .scan_with_page_size(&p, size)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(keys.len(), 5, "page size {size}");
    }
    // A cursor that SCAN never returned is refused, not sent.
    let store = db.database().backend().kv().unwrap();
    expect_kind(
        store.scan_page(&p, Some("not-a-cursor"), 10).await,
        ErrorKind::InvalidInput,
    );
}

// --- the escape hatch -------------------------------------------------------

#[tokio::test]
async fn raw_commands_and_pipelines_on_the_shared_connection() {
    let db = connect().await;
    let raw = db.redis().unwrap();
    let h = format!("{}h", prefix("redis_raw"));
    let added: i64 = raw
        .cmd(
            cmd("HSET")
                .arg(&h)
                .arg("name")
                .arg("Ada")
                .arg("born")
                .arg(1815),
        )
        .await
        .unwrap();
    assert_eq!(added, 2);
    let mut all: Vec<(String, String)> = raw.cmd(cmd("HGETALL").arg(&h)).await.unwrap();
    all.sort();
    assert_eq!(
        all,
        vec![
            ("born".to_owned(), "1815".to_owned()),
            ("name".to_owned(), "Ada".to_owned())
        ]
    );
    // A pipeline: one round trip; atomic: one MULTI/EXEC.
    let (len, born): (i64, i64) = raw
        .pipeline(
            rr::pipe()
                .atomic()
                .cmd("HLEN")
                .arg(&h)
                .cmd("HINCRBY")
                .arg(&h)
                .arg("born")
                .arg(1),
        )
        .await
        .unwrap();
    assert_eq!((len, born), (2, 1816));
    // Server errors keep their dbx kind; a reply of another type is Decode.
    expect_kind(
        raw.cmd::<i64>(cmd("INCR").arg(&h)).await,
        ErrorKind::WrongType,
    );
    expect_kind(
        raw.cmd::<i64>(cmd("HGET").arg(&h).arg("name")).await,
        ErrorKind::Decode,
    );
    expect_kind(
        raw.cmd::<()>(&cmd("NO-SUCH-COMMAND")).await,
        ErrorKind::Query,
    );
    // What would leak into other tasks' commands is refused on the shared connection.
    for c in [
        cmd("MULTI"),
        cmd("SELECT").arg(1).clone(),
        cmd("BLPOP").arg(&h).arg(1).clone(),
    ] {
        let e = expect_kind(raw.cmd::<()>(&c).await, ErrorKind::InvalidInput);
        assert!(e.to_string().contains("exclusive"), "{e}");
    }
    expect_kind(
        raw.pipeline::<()>(rr::pipe().cmd("WATCH").arg(&h)).await,
        ErrorKind::InvalidInput,
    );
    // The typed redis-rs API on the shared connection.
    use rr::AsyncCommands;
    let mut shared = raw.shared_connection().unwrap();
    let n: i64 = shared.hlen(&h).await.unwrap();
    assert_eq!(n, 2);
    let _: () = shared.del(&h).await.unwrap();
}

#[tokio::test]
async fn multi_exec_and_watch_on_an_exclusive_connection() {
    let db = connect().await;
    let raw = db.redis().unwrap();
    let key = format!("{}balance", prefix("redis_tx"));
    db.kv().unwrap().set(&key, b"10", None).await.unwrap();

    let mut conn = raw.exclusive().await.unwrap();
    assert_eq!(db.pool_status().unwrap().in_use, 1);
    // MULTI ... EXEC by hand.
    conn.cmd::<()>(&cmd("MULTI")).await.unwrap();
    let queued: String = conn.cmd(cmd("INCRBY").arg(&key).arg(5)).await.unwrap();
    assert_eq!(queued, "QUEUED");
    conn.cmd::<()>(cmd("SET").arg(format!("{key}:log")).arg("+5"))
        .await
        .unwrap();
    let results: (i64, String) = conn.cmd(&cmd("EXEC")).await.unwrap();
    assert_eq!(results, (15, "OK".to_owned()));

    // WATCH: a write by someone else between WATCH and EXEC aborts the transaction.
    conn.cmd::<()>(cmd("WATCH").arg(&key)).await.unwrap();
    db.kv().unwrap().incr(&key, 100).await.unwrap();
    conn.cmd::<()>(&cmd("MULTI")).await.unwrap();
    conn.cmd::<()>(cmd("SET").arg(&key).arg(0)).await.unwrap();
    let aborted: Option<Vec<String>> = conn.cmd(&cmd("EXEC")).await.unwrap();
    assert_eq!(aborted, None);
    assert_eq!(
        db.kv().unwrap().get(&key).await.unwrap().as_deref(),
        Some(&b"115"[..])
    );

    // An atomic pipeline and a blocking command, with a deadline of its own.
    let list = format!("{key}:queue");
    let (pushed,): (i64,) = conn
        .pipeline(rr::pipe().atomic().cmd("RPUSH").arg(&list).arg("job-1"))
        .await
        .unwrap();
    assert_eq!(pushed, 1);
    let popped: Option<(String, String)> = conn
        .cmd_with_timeout(cmd("BLPOP").arg(&list).arg(1), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(popped, Some((list.clone(), "job-1".to_owned())));
    let nothing: Option<(String, String)> = conn
        .cmd_with_timeout(cmd("BLPOP").arg(&list).arg("0.2"), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(nothing, None);
    // The typed redis-rs API on it.
    use rr::AsyncCommands;
    let _: () = conn
        .raw()
        .unwrap()
        .del(&[&key, &format!("{key}:log")])
        .await
        .unwrap();
    drop(conn);
    assert_eq!(db.pool_status().unwrap().in_use, 0);
}

#[tokio::test]
async fn a_blocking_command_past_its_deadline_times_out_and_loses_nothing() {
    let db = connect().await;
    let raw = db.redis().unwrap();
    let list = format!("{}q", prefix("redis_block"));
    let mut conn = raw.exclusive().await.unwrap();
    let id: i64 = conn.cmd(cmd("CLIENT").arg("ID")).await.unwrap();
    let start = Instant::now();
    let e = expect_kind(
        conn.cmd_with_timeout::<Option<(String, String)>>(
            cmd("BLPOP").arg(&list).arg(0),
            Duration::from_millis(300),
        )
        .await,
        ErrorKind::Timeout,
    );
    assert!(e.is_transient());
    within(start, Duration::from_millis(300));
    // The connection still waits on the server; it is discarded, not pooled
    // (so no later user gets that stale reply), and once it is gone the
    // element pushed now is not swallowed by the abandoned BLPOP.
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed: String = raw
            .cmd(cmd("CLIENT").arg("LIST").arg("ID").arg(id))
            .await
            .unwrap();
        if listed.trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the timed-out connection stays open: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.redis()
        .unwrap()
        .cmd::<i64>(cmd("RPUSH").arg(&list).arg("kept"))
        .await
        .unwrap();
    let len: i64 = raw.cmd(cmd("LLEN").arg(&list)).await.unwrap();
    assert_eq!(len, 1, "the element is still in the list");
    raw.cmd::<i64>(cmd("DEL").arg(&list)).await.unwrap();
}

#[tokio::test]
async fn pool_waits_are_bounded_and_dead_connections_are_replaced() {
    let db = Dbx::builder(&url())
        .pool_max_size(1)
        .acquire_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let raw = db.redis().unwrap();
    let mut held = raw.exclusive().await.unwrap();
    let start = Instant::now();
    let e = expect_kind(raw.exclusive().await, ErrorKind::PoolTimeout);
    assert!(e.is_transient());
    within(start, Duration::from_millis(200));
    let status = db.pool_status().unwrap();
    assert_eq!((status.max_size, status.size, status.in_use), (1, 1, 1));

    // Kill the pooled connection on the server side, then give it back: the
    // recycling PING notices and the next checkout gets a fresh connection.
    let id: i64 = held.cmd(cmd("CLIENT").arg("ID")).await.unwrap();
    drop(held);
    let killed: i64 = raw
        .cmd(cmd("CLIENT").arg("KILL").arg("ID").arg(id))
        .await
        .unwrap();
    assert_eq!(killed, 1);
    let mut fresh = raw.exclusive().await.unwrap();
    let new_id: i64 = fresh.cmd(cmd("CLIENT").arg("ID")).await.unwrap();
    assert_ne!(new_id, id);
    let pong: String = fresh.cmd(&cmd("PING")).await.unwrap();
    assert_eq!(pong, "PONG");

    // A connection given back in the middle of a transaction is not handed
    // out again: the next user's commands must not be queued into it.
    fresh.cmd::<()>(&cmd("MULTI")).await.unwrap();
    drop(fresh);
    let mut next = raw.exclusive().await.unwrap();
    let next_id: i64 = next.cmd(cmd("CLIENT").arg("ID")).await.unwrap();
    assert_ne!(next_id, new_id);
    let pong: String = next.cmd(&cmd("PING")).await.unwrap();
    assert_eq!(pong, "PONG", "not QUEUED");
}

#[tokio::test]
async fn backend_can_be_opened_directly() {
    let backend = dbx::redis::RedisBackend::connect_url(&url()).await.unwrap();
    backend.ping().await.unwrap();
    let key = format!("{}k", prefix("redis_direct"));
    backend
        .cmd::<()>(cmd("SET").arg(&key).arg("v").arg("PX").arg(60_000))
        .await
        .unwrap();
    let v: String = backend.cmd(cmd("GET").arg(&key)).await.unwrap();
    assert_eq!(v, "v");
    assert_eq!(
        backend.pool_status().max_size,
        dbx::redis::DEFAULT_POOL_SIZE
    );
    backend.close();
    expect_kind(
        backend.cmd::<String>(cmd("GET").arg(&key)).await,
        ErrorKind::Closed,
    );
    // A socket that does not exist.
    let missing = Dbx::connect("redis+unix:///nonexistent/dbx.sock").await;
    expect_kind(missing, ErrorKind::Connect);
}

#[tokio::test]
async fn close_then_everything_is_closed() {
    let db = connect().await;
    let raw = db.redis().unwrap();
    let mut conn = raw.exclusive().await.unwrap();
    let kv = db.kv().unwrap().clone();
    let key = format!("{}k", prefix("redis_close"));
    kv.set(&key, b"v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    db.close().await;
    assert!(raw.is_closed());
    expect_kind(kv.get(&key).await, ErrorKind::Closed);
    expect_kind(kv.scan_keys(&key).await, ErrorKind::Closed);
    expect_kind(db.redis(), ErrorKind::Closed);
    expect_kind(
        raw.cmd::<Option<String>>(cmd("GET").arg(&key)).await,
        ErrorKind::Closed,
    );
    expect_kind(
        raw.pipeline::<()>(rr::pipe().cmd("PING")).await,
        ErrorKind::Closed,
    );
    expect_kind(raw.exclusive().await, ErrorKind::Closed);
    expect_kind(raw.pubsub().await.map(drop), ErrorKind::Closed);
    expect_kind(raw.shared_connection(), ErrorKind::Closed);
    expect_kind(conn.cmd::<String>(&cmd("PING")).await, ErrorKind::Closed);
    expect_kind(db.health().await, ErrorKind::Closed);
    drop(conn);
    assert_eq!(db.pool_status().unwrap().size, 0);
    // The data itself is untouched.
    let other = connect().await;
    assert_eq!(
        other.kv().unwrap().get(&key).await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

#[tokio::test]
async fn pubsub_connection_receives_messages() {
    use futures_util::StreamExt;
    let db = connect().await;
    let raw = db.redis().unwrap();
    let channel = prefix("redis_pubsub");
    let mut sub = raw.pubsub().await.unwrap();
    sub.subscribe(&channel).await.unwrap();
    let receivers: i64 = raw
        .cmd(cmd("PUBLISH").arg(&channel).arg("hello"))
        .await
        .unwrap();
    assert_eq!(receivers, 1);
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.on_message().next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "hello");
}

// --- the shared connection over server failures --------------------------------

#[tokio::test]
async fn shared_connection_reconnects_after_a_server_restart() {
    let server = TempRedis::start(&[]);
    let db = Dbx::builder(&server.url(""))
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let kv = db.kv().unwrap();
    kv.set("k", b"before", None).await.unwrap();
    let (dir, port) = server.kill();
    // Down: a typed, transient error, never a silent success or a hang.
    for _ in 0..3 {
        let start = Instant::now();
        let e = kv.set("k", b"during", None).await.unwrap_err();
        within(start, Duration::from_secs(2));
        assert!(
            matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
            "{e}"
        );
        assert!(e.is_transient(), "{e}");
    }
    let server = TempRedis::start_in(dir, port, &[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match kv.set("k", b"after", None).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(e.is_transient(), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no reconnect after the restart: {e}"),
        }
    }
    assert_eq!(kv.get("k").await.unwrap().as_deref(), Some(&b"after"[..]));
    // The pool's connections are checked and replaced too.
    let mut conn = db.redis().unwrap().exclusive().await.unwrap();
    assert_eq!(conn.cmd::<String>(&cmd("PING")).await.unwrap(), "PONG");
    drop(server);
}

#[tokio::test]
async fn rotated_password_is_auth_then_recovers() {
    let server = TempRedis::start(&["--requirepass", "old-pass"]);
    let db = Dbx::builder(&server.url(":old-pass@"))
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let kv = db.kv().unwrap();
    kv.set("k", b"v", None).await.unwrap();
    let raw = db.redis().unwrap();
    raw.cmd::<()>(cmd("CONFIG").arg("SET").arg("requirepass").arg("new-pass"))
        .await
        .unwrap();
    // Drop every connection but the caller's own, then ours too.
    raw.cmd::<i64>(cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal"))
        .await
        .unwrap();
    raw.cmd::<i64>(
        cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("no"),
    )
    .await
    .ok();
    // Reconnecting with the old password fails with Auth, not transient.
    let deadline = Instant::now() + Duration::from_secs(10);
    let e = loop {
        let e = kv.get("k").await.unwrap_err();
        if e.kind() == ErrorKind::Auth || Instant::now() > deadline {
            break e;
        }
        assert!(e.is_transient(), "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(!e.is_transient());
    assert!(!format!("{e} {e:?}").contains("old-pass"), "{e}");
    // The password comes back: the next commands connect again.
    let admin = dbx::redis::RedisBackend::connect_url(&server.url(":new-pass@"))
        .await
        .unwrap();
    admin
        .cmd::<()>(cmd("CONFIG").arg("SET").arg("requirepass").arg("old-pass"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match kv.get("k").await {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some(&b"v"[..]));
                break;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery after the password came back: {e}"),
        }
    }
}

// --- unix sockets and TLS ------------------------------------------------------

#[tokio::test]
async fn unix_socket_urls() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let server = TempRedis::start_in(
        dir,
        0,
        &[
            "--unixsocket",
            socket.to_str().unwrap(),
            "--unixsocketperm",
            "700",
        ],
    );
    let db = Dbx::connect(&format!("redis+unix://{}?db=2", socket.display()))
        .await
        .unwrap();
    let kv = db.kv().unwrap();
    kv.set("sock", b"et", None).await.unwrap();
    assert_eq!(kv.ttl("sock").await.unwrap(), Ttl::Persistent);
    let db2: i64 = db
        .redis()
        .unwrap()
        .cmd(cmd("CLIENT").arg("INFO"))
        .await
        .map(|info: String| {
            info.split_whitespace()
                .find_map(|f| f.strip_prefix("db="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(-1)
        })
        .unwrap();
    assert_eq!(db2, 2);
    drop(server);
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate,
/// made with the `openssl` command line tool.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap_or_else(|e| panic!("the TLS tests need the openssl command ({e})"));
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("client.ext"), "basicConstraints=CA:FALSE\n").unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=dbx test CA",
        ]);
        ca.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&ca);
        for who in ["server", "client"] {
            let (key, csr, pem, ext) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.pem"),
                format!("{who}.ext"),
            );
            let mut req = vec!["req"];
            req.extend(ec);
            req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
            run(&req);
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ]);
        }
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn start_tls_server(certs: &Certs, auth_clients: bool) -> TempRedis {
    let port = free_port();
    let (cert, key, ca) = (
        certs.path("server.pem"),
        certs.path("server.key"),
        certs.path("ca.pem"),
    );
    let port_s = port.to_string();
    let args = [
        "--port",
        "0",
        "--tls-port",
        &port_s,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        if auth_clients { "yes" } else { "no" },
    ];
    // `--port 0` turns plain TCP off; readiness is checked on the TLS port.
    TempRedis::start_in(tempfile::tempdir().unwrap(), port, &args)
}

#[tokio::test]
async fn tls_verifies_certificates_by_default() {
    let certs = Certs::make();
    let server = start_tls_server(&certs, false);
    let base = format!("rediss://127.0.0.1:{}", server.port);
    // A CA the system does not trust: refused, and not worth retrying.
    let e = expect_kind(
        Dbx::builder(&base)
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .await,
        ErrorKind::Connect,
    );
    assert!(!e.is_transient(), "{e}");
    // With the CA given, it verifies and works.
    let db = Dbx::connect(&format!("{base}?tls_ca_file={}", certs.path("ca.pem")))
        .await
        .unwrap();
    let kv = db.kv().unwrap();
    kv.set("tls", b"yes", None).await.unwrap();
    assert_eq!(kv.get("tls").await.unwrap().as_deref(), Some(&b"yes"[..]));
    // The documented escape: no verification at all.
    let db = Dbx::connect(&format!("{base}?tls_insecure=true"))
        .await
        .unwrap();
    assert_eq!(
        db.kv().unwrap().get("tls").await.unwrap().as_deref(),
        Some(&b"yes"[..])
    );
    // Plain redis:// to a TLS port is a typed error, not a hang.
    let e = Dbx::builder(&format!("redis://127.0.0.1:{}", server.port))
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{e}"
    );
    // A CA file that is not PEM.
    let junk = certs.path("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = expect_kind(
        Dbx::connect(&format!("{base}?tls_ca_file={junk}")).await,
        ErrorKind::InvalidConfig,
    );
    assert!(e.to_string().contains("junk.pem"), "{e}");
}

#[tokio::test]
async fn tls_client_certificates() {
    let certs = Certs::make();
    let server = start_tls_server(&certs, true);
    let base = format!(
        "rediss://127.0.0.1:{}?tls_ca_file={}",
        server.port,
        certs.path("ca.pem")
    );
    let e = Dbx::builder(&base)
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{e}"
    );
    let db = Dbx::connect(&format!(
        "{base}&tls_cert_file={}&tls_key_file={}",
        certs.path("client.pem"),
        certs.path("client.key")
    ))
    .await
    .unwrap();
    db.kv().unwrap().set("mtls", b"ok", None).await.unwrap();
}

/// Server errors carry Redis's own error prefix as `Error::code`.
#[tokio::test]
async fn server_errors_carry_the_redis_error_prefix() {
    let db = connect().await;
    let key = format!("{}s", prefix("code"));
    db.kv().unwrap().set(&key, b"text", None).await.unwrap();
    let raw = db.redis().unwrap();
    let e = raw
        .cmd::<i64>(cmd("LPUSH").arg(&key).arg("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongType, "{e:?}");
    assert_eq!(e.code(), Some("WRONGTYPE"), "{e:?}");
    let e = raw.cmd::<()>(&cmd("NOSUCHCOMMAND")).await.unwrap_err();
    assert_eq!(e.code(), Some("ERR"), "{e:?}");
    db.kv().unwrap().delete(&key).await.unwrap();
}

/// Random operation sequences agree with the key-value reference model.
#[test]
fn kv_agrees_with_the_reference_model() {
    dbx_tests::kv_model::check("redis", connect(), 64);
}
