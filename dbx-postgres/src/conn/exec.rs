//! Running statements: binding parameters, preparing, reading rows.

use super::*;

/// What a statement is run for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Execute,
    Query,
    /// The first row only; the rest are still read (and any error in them
    /// reported), but not converted.
    First,
    /// At most `max` rows. With `stop_early` (a plain read outside a
    /// transaction) reading stops at row `max + 1`: the stream is dropped
    /// and tokio-postgres's connection reads and discards the rest of the
    /// answer, so statements pipelined behind it still get their own.
    /// Otherwise the rest is read (and any error in it reported), but not
    /// converted.
    Bounded {
        max: usize,
        stop_early: bool,
    },
}

pub(crate) enum Output {
    Count(u64),
    Rows(Vec<Row>),
    First(Option<Row>),
    Bounded(BoundedRows),
}

impl Output {
    pub(crate) fn count(self) -> u64 {
        match self {
            Output::Count(n) => n,
            Output::Rows(r) => r.len() as u64,
            Output::First(r) => u64::from(r.is_some()),
            Output::Bounded(b) => b.rows.len() as u64,
        }
    }

    pub(crate) fn rows(self) -> Vec<Row> {
        match self {
            Output::Rows(r) => r,
            Output::First(r) => r.into_iter().collect(),
            Output::Bounded(b) => b.rows,
            Output::Count(_) => Vec::new(),
        }
    }

    pub(crate) fn first(self) -> Option<Row> {
        match self {
            Output::Rows(r) => r.into_iter().next(),
            Output::First(r) => r,
            Output::Bounded(b) => b.rows.into_iter().next(),
            Output::Count(_) => None,
        }
    }

    pub(crate) fn bounded(self) -> BoundedRows {
        match self {
            Output::Bounded(b) => b,
            other => BoundedRows::new(other.rows(), false),
        }
    }
}

pub(crate) fn count_error(expected: usize, given: usize) -> Error {
    let uses = match expected {
        0 => "no parameters".to_owned(),
        1 => "1 parameter ($1)".to_owned(),
        n => format!("{n} parameters ($1..${n})"),
    };
    Error::invalid_input(format!(
        "the statement uses {uses} but {given} {} given",
        if given == 1 { "was" } else { "were" }
    ))
    .with_backend(BACKEND)
}

/// Whether an error means the cached statement went stale (the table
/// changed shape, or the server forgot it): prepare again and retry once.
pub(crate) fn stale_statement(e: &Error) -> bool {
    match sqlstate(e) {
        Some("26000") => true,
        Some("0A000") => e.message().contains("cached plan"),
        _ => false,
    }
}

/// Run one statement of the user's on a client. `retry` allows one retry
/// after a stale cached statement (never inside a transaction, where the
/// failure aborted the transaction).
pub(crate) async fn run(
    client: &ClientWrapper,
    stmts: &StmtCache,
    s: &Settings,
    sql: &str,
    params: &[Value],
    mode: Mode,
    retry: bool,
) -> Result<Output> {
    // The paths taken rarely are boxed, so that the future of the common
    // one (a cached statement) stays small: drivers' futures are boxed per
    // operation, and one past glibc's per-thread cache size (1032 bytes)
    // costs several times as much to allocate and free.
    if !s.statement_cache {
        return Box::pin(run_unnamed(client, sql, params, mode)).await;
    }
    match run_prepared(client, stmts, s, sql, params, mode).await {
        Err(e) if stale_statement(&e) => {
            stmts.remove(sql);
            if !retry {
                return Err(e);
            }
            Box::pin(run_prepared(client, stmts, s, sql, params, mode)).await
        }
        r => r,
    }
}

/// Check a prepared statement against the parameters and coerce them.
pub(crate) fn bind_params<'a>(
    stmt: &tokio_postgres::Statement,
    params: &'a [Value],
) -> Result<Vec<Param<'a>>> {
    if stmt.params().len() != params.len() {
        return Err(count_error(stmt.params().len(), params.len()));
    }
    params
        .iter()
        .zip(stmt.params())
        .enumerate()
        .map(|(i, (v, ty))| convert::coerce(i + 1, v, ty).map_err(|e| e.with_backend(BACKEND)))
        .collect()
}

/// Fail before running a statement whose result columns cannot be decoded.
pub(crate) fn check_columns(stmt: &tokio_postgres::Statement) -> Result<()> {
    match stmt
        .columns()
        .iter()
        .find(|c| !convert::decodable(c.type_()))
    {
        Some(c) => Err(convert::undecodable(c.name(), c.type_()).with_backend(BACKEND)),
        None => Ok(()),
    }
}

pub(crate) fn as_sql<'a>(
    params: &'a [Param<'a>],
) -> impl ExactSizeIterator<Item = &'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync))
}

pub(crate) async fn run_prepared(
    client: &ClientWrapper,
    stmts: &StmtCache,
    s: &Settings,
    sql: &str,
    params: &[Value],
    mode: Mode,
) -> Result<Output> {
    let prepared = match stmts.get(sql) {
        Some(p) => p,
        None => {
            let stmt = Box::pin(client.prepare(sql)).await.map_err(map_err)?;
            let names = convert::column_names(stmt.columns());
            let decodable = check_columns(&stmt).is_ok();
            let p = Arc::new(Prepared {
                stmt,
                names,
                decodable,
            });
            stmts.insert(sql, p.clone(), s.statement_cache_capacity.max(1));
            p
        }
    };
    let stmt = &prepared.stmt;
    let bound = bind_params(stmt, params)?;
    match mode {
        Mode::Execute => {
            // tokio-postgres's `execute_raw`/`query_raw` futures hold room
            // for preparing a statement from text (about 1 KB) even when
            // handed a prepared one: boxed, they stay out of this future.
            let n = Box::pin(client.execute_raw(stmt, as_sql(&bound)))
                .await
                .map_err(map_err)?;
            // The command tag's count: rows changed, or rows returned by a SELECT.
            Ok(Output::Count(n))
        }
        Mode::Query | Mode::First | Mode::Bounded { .. } => {
            if !prepared.decodable {
                check_columns(stmt)?;
            }
            let stream = Box::pin(client.query_raw(stmt, as_sql(&bound)))
                .await
                .map_err(map_err)?;
            collect(stream, Some(prepared.names.clone()), mode).await
        }
    }
}

/// Read the rows of `stream`; convert them all (`Mode::Query`), only the
/// first (`Mode::First`) or up to a bound (`Mode::Bounded`). The rest are
/// read too, so the statement runs to completion and an error in a later
/// row is still reported, except that `Mode::Bounded` with `stop_early`
/// stops at the first row past the bound.
pub(crate) async fn collect(
    stream: tokio_postgres::RowStream,
    mut names: Option<Arc<[String]>>,
    mode: Mode,
) -> Result<Output> {
    futures_util::pin_mut!(stream);
    let mut rows = Vec::new();
    let mut first = None;
    let mut truncated = false;
    while let Some(r) = stream.try_next().await.map_err(map_err)? {
        match mode {
            Mode::First if first.is_some() => continue,
            Mode::Bounded { max, stop_early } if rows.len() >= max => {
                truncated = true;
                if stop_early {
                    break;
                }
                continue;
            }
            _ => {}
        }
        let names = names.get_or_insert_with(|| convert::column_names(r.columns()));
        let row = convert::row(names, &r).map_err(|e| e.with_backend(BACKEND))?;
        if mode == Mode::First {
            first = Some(row);
        } else {
            rows.push(row);
        }
    }
    Ok(match mode {
        Mode::First => Output::First(first),
        Mode::Bounded { .. } => Output::Bounded(BoundedRows::new(rows, truncated)),
        Mode::Query | Mode::Execute => Output::Rows(rows),
    })
}

/// `statement_cache=false`: unnamed statements, parsed, bound and run in one
/// round trip, so they work behind PgBouncer in transaction mode.
pub(crate) async fn run_unnamed(
    client: &ClientWrapper,
    sql: &str,
    params: &[Value],
    mode: Mode,
) -> Result<Output> {
    let scan = lex::scan(sql);
    if scan.max_param != params.len() {
        return Err(count_error(scan.max_param, params.len()));
    }
    let typed = params
        .iter()
        .enumerate()
        .map(|(i, v)| convert::untyped(i + 1, v).map_err(|e| e.with_backend(BACKEND)))
        .collect::<Result<Vec<_>>>()?;
    let items = typed
        .iter()
        .map(|(p, t)| (p as &(dyn ToSql + Sync), t.clone()));
    let stream = client.query_typed_raw(sql, items).await.map_err(map_err)?;
    match mode {
        Mode::Execute => {
            futures_util::pin_mut!(stream);
            while stream.try_next().await.map_err(map_err)?.is_some() {}
            let n = stream.rows_affected().unwrap_or(0);
            Ok(Output::Count(n))
        }
        Mode::Query | Mode::First | Mode::Bounded { .. } => collect(stream, None, mode).await,
    }
}

/// Run one of the driver's own statements, with declared parameter types.
/// tokio-postgres's futures are boxed apart, as in `run`.
pub(crate) async fn internal(
    handle: &Handle,
    s: &Settings,
    sql: &str,
    types: &[Type],
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>> {
    let client = handle.client();
    let rows = if s.statement_cache {
        let stmt = handle.stmts().internal(client, sql, types).await?;
        Box::pin(client.query_raw(&stmt, params.iter().copied())).await
    } else {
        let typed = params.iter().copied().zip(types.iter().cloned());
        Box::pin(client.query_typed_raw(sql, typed)).await
    };
    rows.map_err(map_err)?.try_collect().await.map_err(map_err)
}

/// Like [`internal`], returning the number of rows affected.
pub(crate) async fn internal_execute(
    handle: &Handle,
    s: &Settings,
    sql: &str,
    types: &[Type],
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    let client = handle.client();
    if s.statement_cache {
        let stmt = handle.stmts().internal(client, sql, types).await?;
        Box::pin(client.execute_raw(&stmt, params.iter().copied()))
            .await
            .map_err(map_err)
    } else {
        let typed: Vec<(&(dyn ToSql + Sync), Type)> =
            params.iter().copied().zip(types.iter().cloned()).collect();
        Box::pin(client.execute_typed(sql, &typed))
            .await
            .map_err(map_err)
    }
}
