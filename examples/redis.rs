//! dbx on Redis: the key-value API, then raw Redis through the escape hatch.
//!
//! ```text
//! cargo run -p examples --example redis --features redis                        # redis://127.0.0.1:6379
//! cargo run -p examples --example redis --features redis -- redis://host:6379/1 # or any Redis URL
//! DBX_URL=rediss://:password@host:6380 cargo run -p examples --example redis --features redis
//! ```
//!
//! Every key it writes starts with `example:redis:` and expires within a minute.

use dbx::redis::{Value, cmd, pipe};
use dbx::{Dbx, ErrorKind};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DBX_URL").ok())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let db = match Dbx::builder(&url)
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
    {
        Ok(db) => db,
        Err(e) if e.kind() == ErrorKind::Connect => {
            println!("cannot reach Redis at {url}: {e}");
            println!(
                "start one (redis-server) or pass a URL: ... --example redis -- redis://host:6379"
            );
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    println!("connected to {} ({})", db.options(), db.backend_name());
    let minute = Some(Duration::from_secs(60));

    // --- the key-value API, the same on every dbx backend ---
    let kv = db.kv()?;
    kv.set("example:redis:greeting", b"hello from dbx", minute)
        .await?;
    let greeting = kv.get("example:redis:greeting").await?;
    println!(
        "kv: SET/GET example:redis:greeting = {:?}, ttl {:?}",
        greeting.as_deref().map(String::from_utf8_lossy),
        kv.ttl("example:redis:greeting").await?
    );
    kv.set("example:redis:visits", b"0", minute).await?;
    for _ in 0..3 {
        kv.incr("example:redis:visits", 1).await?;
    }
    println!(
        "kv: INCRBY three times -> example:redis:visits = {} (TTL kept: {:?})",
        kv.incr("example:redis:visits", 0).await?,
        kv.ttl("example:redis:visits").await?
    );
    let won = kv.set_nx("example:redis:lock", b"me", minute).await?;
    let again = kv.set_nx("example:redis:lock", b"you", minute).await?;
    println!("kv: SET NX lock: first {won}, second {again}");
    kv.mset(
        &[("example:redis:a", "1"), ("example:redis:b", "2")],
        minute,
    )
    .await?;
    let values = kv
        .mget(&[
            "example:redis:a",
            "example:redis:missing",
            "example:redis:b",
        ])
        .await?;
    println!("kv: MSET (MULTI/EXEC with PX) then MGET = {values:?}");
    let mut keys = kv.scan_keys("example:redis:").await?;
    keys.sort();
    println!("kv: SCAN MATCH example:redis:* -> {keys:?}");

    // --- raw Redis: any command, with dbx's timeouts and error kinds ---
    let raw = db.redis()?;
    let added: i64 = raw
        .cmd(
            cmd("HSET")
                .arg("example:redis:user")
                .arg("name")
                .arg("Ada")
                .arg("lang")
                .arg("Rust"),
        )
        .await?;
    let (user, _): (Vec<(String, String)>, i64) = raw
        .pipeline(
            pipe()
                .cmd("HGETALL")
                .arg("example:redis:user")
                .cmd("EXPIRE")
                .arg("example:redis:user")
                .arg(60),
        )
        .await?;
    println!("raw: HSET added {added} fields; HGETALL = {user:?}");
    // A reply of unknown shape: read it as a raw `Value`.
    let kind: Value = raw.cmd(cmd("TYPE").arg("example:redis:user")).await?;
    println!("raw: TYPE example:redis:user -> {kind:?}");
    match raw.cmd::<()>(&cmd("MULTI")).await {
        Err(e) if e.kind() == ErrorKind::InvalidInput => {
            println!("raw: MULTI on the shared connection is refused: {e}")
        }
        other => println!("raw: MULTI unexpectedly gave {other:?}"),
    }
    let mut conn = raw.exclusive().await?;
    conn.cmd::<()>(&cmd("MULTI")).await?;
    conn.cmd::<()>(cmd("INCR").arg("example:redis:visits"))
        .await?;
    conn.cmd::<()>(cmd("GET").arg("example:redis:greeting"))
        .await?;
    let (visits, greeting): (i64, String) = conn.cmd(&cmd("EXEC")).await?;
    println!(
        "raw: MULTI/EXEC on an exclusive connection -> visits {visits}, greeting {greeting:?}"
    );
    drop(conn);

    let health = db.health().await?;
    println!(
        "health: PING round trip {:?}, pool {:?}",
        health.latency, health.pool
    );
    for key in keys
        .iter()
        .map(String::as_str)
        .chain(["example:redis:user"])
    {
        kv.delete(key).await?;
    }
    db.close().await;
    println!("done (closed; example keys deleted)");
    Ok(())
}
