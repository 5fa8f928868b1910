//! A small TCP fault proxy and throwaway servers for fault-injection tests.
//!
//! The proxy listens on a free loopback port and forwards to a target; a
//! test switches its mode at any time. Only loopback addresses are used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Forward, delaying each chunk by this much.
    Latency(Duration),
    /// Accept connections and swallow traffic without answering.
    BlackHole,
    /// Refuse: new connections are closed at once, open ones are cut.
    Reset,
}

/// A running fault proxy. Dropping it stops it and cuts every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Start a proxy to `target` on a free loopback port.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        assert!(
            target.ip().is_loopback(),
            "fault tests only target loopback"
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, mode_rx) = watch::channel(Mode::Pass);
        let (cut, cut_rx) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let mode_rx = mode_rx.clone();
                let cut_rx = cut_rx.clone();
                tokio::spawn(handle(client, target, mode_rx, cut_rx));
            }
        });
        FaultProxy {
            addr,
            mode,
            cut,
            task,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switch mode. `Reset` also cuts the connections that are open.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
        if mode == Mode::Reset {
            self.cut_all();
        }
    }

    /// Close every open connection abruptly (the server side stays up).
    pub fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut_all();
        self.task.abort();
    }
}

async fn handle(
    client: TcpStream,
    target: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    mut cut: watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let start_mode = *mode.borrow_and_update();
    cut.borrow_and_update();
    match start_mode {
        Mode::Reset => return,
        Mode::BlackHole => {
            // Hold the connection, read and drop everything, answer nothing.
            let (mut r, _w) = client.into_split();
            let mut buf = [0u8; 4096];
            loop {
                tokio::select! {
                    n = r.read(&mut buf) => if matches!(n, Ok(0) | Err(_)) { return },
                    _ = cut.changed() => return,
                }
            }
        }
        _ => {}
    }
    let Ok(Ok(server)) =
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target)).await
    else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, mode.clone());
    let down = pump(sr, cw, mode.clone());
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.changed() => {}
        _ = async { loop {
            if mode.changed().await.is_err() { return }
            if *mode.borrow() == Mode::Reset { return }
        } } => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let current = *mode.borrow();
        match current {
            Mode::Latency(d) => tokio::time::sleep(d).await,
            // Swallow: the peer waits for an answer that never comes.
            Mode::BlackHole => continue,
            Mode::Reset => return,
            Mode::Pass => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A free TCP port on loopback (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A throwaway `redis-server` on a free loopback port, in a temporary
/// directory, that a test may stop and restart. Never the shared server.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Start one, with extra `redis-server` arguments (e.g. `--requirepass x`).
    pub fn start(extra: &[&str]) -> Arc<RedisServer> {
        let server = Arc::new(RedisServer {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: Mutex::new(None),
        });
        server.run();
        server
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn run(&self) {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        *self.child.lock().unwrap() = Some(child);
        wait_for_port(self.port, true);
        wait_for_reply(self.port);
    }

    /// Kill it (SIGKILL: an abrupt crash) and wait until the port is closed.
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_for_port(self.port, false);
    }

    /// Start it again on the same port and directory (data survives if the
    /// server was started with persistence, e.g. `--appendonly yes`).
    pub fn restart(&self) {
        self.stop();
        self.run();
    }

    /// The temporary directory it runs in.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Wait (up to 10s) until `port` on loopback accepts connections, or stops accepting.
pub fn wait_for_port(port: u16, open: bool) {
    for _ in 0..200 {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if up == open {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "port {port} did not become {}",
        if open { "open" } else { "closed" }
    );
}

/// Wait until the Redis server on `port` answers a command (any reply but
/// `-LOADING`; `-NOAUTH` counts): an open port alone does not mean it is
/// ready, and on a loaded machine a server just started with
/// `--appendfsync always` can take longer than a test's connect timeout.
fn wait_for_reply(port: u16) {
    use std::io::{Read, Write};
    for _ in 0..200 {
        let reply = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(1)))?;
            s.write_all(b"PING\r\n")?;
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf)?;
            Ok(buf[..n].to_vec())
        });
        if let Ok(r) = reply
            && !r.is_empty()
            && !r.starts_with(b"-LOADING")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server on port {port} never answered PING");
}

/// A throwaway PostgreSQL cluster on a free loopback port, in a temporary
/// directory owned by the `postgres` user (initdb refuses to run as root).
/// Never the shared server.
///
/// [`start`](PostgresServer::start) trusts every local login;
/// [`start_with_passwords`](PostgresServer::start_with_passwords) asks for
/// SCRAM passwords on TCP (trust stays on its Unix socket, see
/// [`admin_url`](PostgresServer::admin_url)) and turns TLS on with Debian's
/// snakeoil certificate when its key is readable.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    tls: bool,
}

const SNAKEOIL_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
const SNAKEOIL_KEY: &str = "/etc/ssl/private/ssl-cert-snakeoil.key";

fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .expect("PostgreSQL server binaries (scripts/test.sh installs them)")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn as_postgres(cmd: &Path, args: &[&str]) -> std::process::Output {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    };
    c.args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run a PostgreSQL tool")
}

impl PostgresServer {
    /// initdb (trust authentication) and start a cluster.
    pub fn start() -> PostgresServer {
        Self::init(&["--auth=trust"], false)
    }

    /// initdb with SCRAM passwords on TCP and trust on the Unix socket, TLS
    /// on when the snakeoil key is readable, and start it.
    pub fn start_with_passwords() -> PostgresServer {
        let tls = Path::new(SNAKEOIL_CERT).exists()
            && Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-r", SNAKEOIL_KEY])
                .status()
                .is_ok_and(|s| s.success());
        Self::init(&["--auth-local=trust", "--auth-host=scram-sha-256"], tls)
    }

    fn init(auth: &[&str], tls: bool) -> PostgresServer {
        let bin = pg_bin();
        let dir =
            std::env::temp_dir().join(format!("dbx-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let _ = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status();
        }
        let data = dir.join("data");
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ];
        args.extend_from_slice(auth);
        let out = as_postgres(&bin.join("initdb"), &args);
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let server = PostgresServer {
            port: free_port(),
            dir,
            bin,
            tls,
        };
        server.start_again();
        server
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.dir.join("data");
        let mut all = vec!["-D", data.to_str().unwrap_or_default()];
        all.extend_from_slice(args);
        as_postgres(&self.bin.join("pg_ctl"), &all)
    }

    /// Start (again) on the same port and data directory.
    pub fn start_again(&self) {
        let mut opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        if self.tls {
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={SNAKEOIL_CERT} -c ssl_key_file={SNAKEOIL_KEY}"
            ));
        }
        let log = self.dir.join("log");
        let out = self.pg_ctl(&[
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-t",
            "30",
            "start",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_for_port(self.port, true);
    }

    /// Stop abruptly (immediate shutdown: like a crash).
    pub fn stop(&self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        wait_for_port(self.port, false);
    }

    /// Stop and start again (a server restart).
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether it serves TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A URL for the `postgres` database as the `postgres` user over TCP.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The superuser over the Unix socket (trusted even with passwords on TCP).
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres@/postgres?host={}&port={}",
            self.dir.display(),
            self.port
        )
    }

    /// The same database reached through another address (a fault proxy).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        format!("postgres://postgres@{addr}/postgres")
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // No waiting and no panics here: stop it and remove its files.
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
