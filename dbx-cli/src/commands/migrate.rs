//! `dbx migrate new|up|down|status|verify`, on `dbx::migrate`.

use super::{App, close};
use crate::cli::{MigrateArgs, MigrateCommand, MigrateNewArgs, MigrateRunArgs};
use crate::error::{CliError, CliResult};
use crate::output::{Cell, Style, Table, json_array, millis, plural};
use dbx::migrate::{Direction, Done, Event, Migrations, Migrator, State, Step};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Run a migrate subcommand.
pub(crate) async fn run(app: &App, args: MigrateArgs) -> CliResult {
    match args.command {
        MigrateCommand::New(a) => new(app, &args.dir, &a),
        MigrateCommand::Up(a) => apply(app, &args.dir, &args.table, a, Direction::Up).await,
        MigrateCommand::Down(a) => apply(app, &args.dir, &args.table, a, Direction::Down).await,
        MigrateCommand::Status(a) => status(app, &args.dir, &args.table, &a.target).await,
        MigrateCommand::Verify(a) => verify(app, &args.dir, &args.table, &a.target).await,
    }
}

/// Read the directory and name the table: both are usage errors when wrong
/// (nothing is connected yet).
fn migrator(dir: &Path, table: &str) -> CliResult<Migrator> {
    let migrations = Migrations::from_dir(dir).map_err(|e| CliError::Usage(e.to_string()))?;
    Migrator::new(migrations)
        .table(table)
        .map_err(|e| CliError::Usage(e.to_string()))
}

fn new(app: &App, dir: &Path, args: &MigrateNewArgs) -> CliResult {
    let name = &args.name;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(CliError::Usage(format!(
            "migration name {name:?}: use letters, digits, `_` and `-` (create_users)"
        )));
    }
    let (next, width) = if dir.exists() {
        let existing = Migrations::from_dir(dir).map_err(|e| CliError::Usage(e.to_string()))?;
        let last = existing.versions().map(|(v, _)| v).max().unwrap_or(0);
        (last + 1, widest_version(dir).max(4))
    } else {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        (1, 4)
    };
    let base = format!("{next:0width$}_{name}");
    let mut created = vec![dir.join(format!("{base}.sql"))];
    if !args.no_down {
        created.push(dir.join(format!("{base}.down.sql")));
    }
    for (i, path) in created.iter().enumerate() {
        let text = if i == 0 {
            format!("-- {next} {name}: applied by `dbx migrate up`.\n")
        } else {
            format!("-- Reverts {next} {name}: run by `dbx migrate down`.\n")
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", path.display())))?;
    }
    if app.out.json {
        let files: Vec<String> = created.iter().map(|p| p.display().to_string()).collect();
        app.out
            .json_value(&json!({ "version": next, "name": name, "files": files }))?;
    } else {
        for path in &created {
            app.out.line(&format!("created {}", path.display()))?;
        }
    }
    Ok(())
}

/// The most digits a version of the directory's files is written with
/// (new files follow the directory's style: `0001_` or `00001_`).
fn widest_version(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sql"))
        .filter_map(|n| {
            let digits = n.split('_').next()?.len();
            (digits > 0).then_some(digits)
        })
        .max()
        .unwrap_or(0)
}

async fn apply(
    app: &App,
    dir: &Path,
    table: &str,
    args: MigrateRunArgs,
    direction: Direction,
) -> CliResult {
    let migrator = migrator(dir, table)?;
    let (_, db) = app.connect(&args.target).await?;
    let result = if args.dry_run {
        let plan = match direction {
            Direction::Up => migrator.plan_up(db.database(), args.to).await,
            _ => migrator.plan_down(db.database(), args.to).await,
        };
        match plan {
            Ok(steps) => print_plan(app, &steps, direction),
            Err(e) => Err(e.into()),
        }
    } else {
        let progress = progress_bar(app);
        let bar = progress.clone();
        let migrator = migrator.on_event(move |e| match e {
            Event::Locking => bar.set_message("waiting for other migrators"),
            Event::Planned(n) => {
                bar.set_length(*n as u64);
                bar.set_message("");
            }
            Event::Started { version, name, .. } => bar.set_message(format!("{version} {name}")),
            Event::Finished(_) => bar.inc(1),
            _ => {}
        });
        let ran = match (direction, args.to) {
            (Direction::Up, None) => migrator.up(db.database()).await,
            (Direction::Up, Some(v)) => migrator.up_to(db.database(), v).await,
            (_, None) => migrator.down(db.database()).await,
            (_, Some(v)) => migrator.down_to(db.database(), v).await,
        };
        progress.finish_and_clear();
        match ran {
            Ok(done) => print_done(app, &done, direction),
            Err(e) => Err(e.into()),
        }
    };
    close(&db).await;
    result
}

/// A bar on stderr when it is a terminal (and not `--json`), else hidden.
fn progress_bar(app: &App) -> ProgressBar {
    let target = if app.out.stderr_tty && !app.out.json {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// What a run with no step says.
fn nothing_to_do(direction: Direction) -> &'static str {
    match direction {
        Direction::Up => "nothing to apply: every migration is applied",
        _ => "nothing to revert",
    }
}

fn print_plan(app: &App, steps: &[Step], direction: Direction) -> CliResult {
    if app.out.json {
        let items = steps.iter().map(|s| {
            json!({
                "version": s.version,
                "name": s.name,
                "direction": s.direction.to_string(),
                "transactional": s.transactional,
                "sql": s.sql,
            })
            .to_string()
        });
        app.out.line(&json_array(items))?;
        return Ok(());
    }
    if steps.is_empty() {
        app.out.line(nothing_to_do(direction))?;
        return Ok(());
    }
    for s in steps {
        let how = if s.transactional {
            "in a transaction"
        } else {
            "without a transaction"
        };
        app.out.line(&app.out.paint(
            Style::Bold,
            &format!("-- {} {} ({}, {how})", s.version, s.name, s.direction),
        ))?;
        app.out.line(s.sql.trim_end())?;
        app.out.line("")?;
    }
    app.out.line(&format!(
        "-- dry run: {} would run; nothing was changed",
        plural(steps.len() as u64, "migration", "migrations")
    ))?;
    Ok(())
}

fn print_done(app: &App, done: &[Done], direction: Direction) -> CliResult {
    if app.out.json {
        let items = done.iter().map(|d| {
            json!({
                "version": d.version,
                "name": d.name,
                "direction": d.direction.to_string(),
                "elapsed_ms": millis(d.elapsed),
            })
            .to_string()
        });
        app.out.line(&json_array(items))?;
        return Ok(());
    }
    if done.is_empty() {
        app.out.line(nothing_to_do(direction))?;
        return Ok(());
    }
    let verb = match direction {
        Direction::Up => "applied",
        _ => "reverted",
    };
    for d in done {
        app.out.line(&format!(
            "{} {} {} ({:.1} ms)",
            app.out.paint(Style::Green, verb),
            d.version,
            d.name,
            d.elapsed.as_secs_f64() * 1000.0
        ))?;
    }
    Ok(())
}

async fn status(app: &App, dir: &Path, table: &str, target: &str) -> CliResult {
    let migrator = migrator(dir, table)?;
    let (_, db) = app.connect(target).await?;
    let result = migrator.status(db.database()).await;
    close(&db).await;
    let lines = result?;
    if app.out.json {
        let items = lines.iter().map(|s| {
            let (state, at) = state_of(&s.state);
            json!({ "version": s.version, "name": s.name, "state": state, "applied_at": at })
                .to_string()
        });
        app.out.line(&json_array(items))?;
        return Ok(());
    }
    if lines.is_empty() {
        app.out
            .line(&format!("no migrations in {}", dir.display()))?;
        return Ok(());
    }
    let mut t = Table::new(["VERSION", "NAME", "STATE", "APPLIED AT"]);
    for s in &lines {
        let (state, at) = state_of(&s.state);
        let style = match s.state {
            State::Applied { .. } => Style::Green,
            State::Pending => Style::Plain,
            _ => Style::Red,
        };
        t.push(vec![
            Cell::number(s.version.to_string()),
            Cell::text(s.name.clone()),
            Cell::text(state).style(style),
            Cell::neutral(at.unwrap_or_default()),
        ]);
    }
    app.out.write(&t.render(&app.out))?;
    Ok(())
}

fn state_of(state: &State) -> (&'static str, Option<String>) {
    match state {
        State::Pending => ("pending", None),
        State::Applied { at } => ("applied", Some(at.clone())),
        State::Edited { at } => ("edited", Some(at.clone())),
        State::Missing { at } => ("missing file", Some(at.clone())),
        _ => ("unknown", None),
    }
}

async fn verify(app: &App, dir: &Path, table: &str, target: &str) -> CliResult {
    let migrator = migrator(dir, table)?;
    let (_, db) = app.connect(target).await?;
    let checked = migrator.verify(db.database()).await;
    let applied = match &checked {
        Ok(()) => migrator.status(db.database()).await.map(|s| {
            s.iter()
                .filter(|s| matches!(s.state, State::Applied { .. }))
                .count()
        }),
        Err(_) => Ok(0),
    };
    close(&db).await;
    checked?;
    let applied = applied?;
    if app.out.json {
        app.out
            .json_value(&json!({ "ok": true, "applied": applied }))?;
    } else {
        app.out.line(&format!(
            "{} {} match their files",
            app.out.paint(Style::Green, "ok:"),
            plural(applied as u64, "applied migration", "applied migrations")
        ))?;
    }
    Ok(())
}
