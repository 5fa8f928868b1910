//! `dbx kv TARGET get|set|del|scan|ttl`.

use super::{App, close};
use crate::cli::{KvArgs, KvCommand, KvGetArgs, KvScanArgs, KvSetArgs};
use crate::error::{CliError, CliResult};
use crate::output::{base64, escape_control, hex, json_array, millis};
use dbx::{Kv, Ttl};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::Read;
use std::time::Duration;

/// Keys scanned before a progress spinner appears (on a terminal only).
const PROGRESS_AFTER: u64 = 1000;

/// Run a key-value subcommand.
pub(crate) async fn run(app: &App, args: KvArgs) -> CliResult {
    // Read a value file before connecting: a wrong path is a usage error.
    let value = match &args.command {
        KvCommand::Set(set) => Some(value_bytes(set)?),
        _ => None,
    };
    let (_, db) = app.connect(&args.target).await?;
    let result = match db.kv() {
        Ok(kv) => match args.command {
            KvCommand::Get(a) => get(app, kv, a).await,
            KvCommand::Set(a) => set(app, kv, a, value.unwrap_or_default()).await,
            KvCommand::Del(a) => del(app, kv, &a.key).await,
            KvCommand::Scan(a) => scan(app, kv, a).await,
            KvCommand::Ttl(a) => ttl(app, kv, &a.key).await,
        },
        Err(e) => Err(e.into()),
    };
    close(&db).await;
    result
}

fn value_bytes(args: &KvSetArgs) -> CliResult<Vec<u8>> {
    match (&args.value, &args.file) {
        (Some(v), _) => Ok(v.as_bytes().to_vec()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
            Ok(buf)
        }
        (None, Some(path)) => std::fs::read(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display()))),
        (None, None) => Err(CliError::Usage("give a VALUE or --file PATH".into())),
    }
}

async fn get(app: &App, kv: &Kv, args: KvGetArgs) -> CliResult {
    let Some(bytes) = kv.get(&args.key).await? else {
        if app.out.json {
            app.out
                .json_value(&json!({ "key": args.key, "value": null }))?;
        }
        return Err(CliError::Failed(format!("key `{}` not found", args.key)));
    };
    if args.raw {
        app.out.write_bytes(&bytes)?;
        return Ok(());
    }
    let text = std::str::from_utf8(&bytes).ok();
    let (encoding, value) = match text {
        _ if args.hex => ("hex", hex(&bytes)),
        _ if args.base64 => ("base64", base64(&bytes)),
        Some(t) => ("utf8", t.to_owned()),
        // JSON carries bytes losslessly as base64; a terminal gets hex.
        None if app.out.json => ("base64", base64(&bytes)),
        None => {
            app.out
                .note("the value is not UTF-8; shown as hex (--base64 or --raw for other forms)");
            ("hex", hex(&bytes))
        }
    };
    if app.out.json {
        app.out.json_value(&json!({
            "key": args.key,
            "value": value,
            "encoding": encoding,
            "size": bytes.len(),
        }))?;
    } else {
        app.out.line(&value)?;
    }
    Ok(())
}

async fn set(app: &App, kv: &Kv, args: KvSetArgs, value: Vec<u8>) -> CliResult {
    kv.set(&args.key, &value, args.ttl).await?;
    if app.out.json {
        app.out.json_value(&json!({
            "key": args.key,
            "ok": true,
            "size": value.len(),
            "ttl_ms": args.ttl.map(millis),
        }))?;
    } else {
        app.out.line("OK")?;
    }
    Ok(())
}

async fn del(app: &App, kv: &Kv, key: &str) -> CliResult {
    let deleted = kv.delete(key).await?;
    if app.out.json {
        app.out
            .json_value(&json!({ "key": key, "deleted": deleted }))?;
    } else {
        app.out.line(if deleted {
            "deleted"
        } else {
            "not found (nothing to delete)"
        })?;
    }
    Ok(())
}

async fn ttl(app: &App, kv: &Kv, key: &str) -> CliResult {
    let ttl = kv.ttl(key).await?;
    let (state, ms) = match ttl {
        Ttl::Missing => ("missing", None),
        Ttl::Persistent => ("persistent", None),
        Ttl::Expires(d) => ("expires", Some(d)),
    };
    if app.out.json {
        app.out.json_value(&json!({
            "key": key,
            "state": state,
            "ttl_ms": ms.map(|d| d.as_millis() as u64),
        }))?;
    } else {
        app.out
            .line(&ms.map_or_else(|| state.to_owned(), ttl_text))?;
    }
    if ttl == Ttl::Missing {
        return Err(CliError::Reported);
    }
    Ok(())
}

/// A TTL in seconds with milliseconds: `9.998s`.
fn ttl_text(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

async fn scan(app: &App, kv: &Kv, args: KvScanArgs) -> CliResult {
    let limit = args.limit.unwrap_or(usize::MAX);
    let progress = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} scanning: {human_pos} keys ({elapsed})")
    {
        progress.set_style(style);
    }
    let show = app.out.stderr_tty && !app.out.json;
    let mut keys = Vec::new();
    let mut stream = kv.scan(&args.prefix);
    while keys.len() < limit
        && let Some(key) = stream.next().await
    {
        keys.push(key?);
        progress.inc(1);
        if show && progress.position() == PROGRESS_AFTER {
            progress.set_draw_target(ProgressDrawTarget::stderr());
            progress.enable_steady_tick(Duration::from_millis(100));
        }
    }
    progress.finish_and_clear();
    keys.sort_unstable();
    if app.out.json {
        let items = keys
            .iter()
            .map(|k| serde_json::Value::from(k.as_str()).to_string());
        app.out.line(&json_array(items))?;
    } else {
        let mut text = String::new();
        for k in &keys {
            text.push_str(&escape_control(k));
            text.push('\n');
        }
        app.out.write(&text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_in_seconds() {
        assert_eq!(ttl_text(Duration::from_millis(9998)), "9.998s");
        assert_eq!(ttl_text(Duration::from_millis(5)), "0.005s");
    }
}
