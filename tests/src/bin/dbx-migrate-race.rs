//! One contender of the migration race test: connects to `argv[1]`, runs
//! the migrations of directory `argv[2]` with bookkeeping table `argv[3]`,
//! and prints the versions this process applied, one per line.

use std::io::Write;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, dir, table] = args.as_slice() else {
        let _ = writeln!(std::io::stderr(), "usage: dbx-migrate-race URL DIR TABLE");
        return std::process::ExitCode::from(2);
    };
    match run(url, dir, table).await {
        Ok(versions) => {
            let mut out = std::io::stdout().lock();
            for v in versions {
                let _ = writeln!(out, "{v}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(url: &str, dir: &str, table: &str) -> dbx::Result<Vec<u64>> {
    let db = dbx::Dbx::connect(url).await?;
    let migrator =
        dbx::migrate::Migrator::new(dbx::migrate::Migrations::from_dir(dir)?).table(table)?;
    let done = migrator.up(db.database()).await?;
    db.close().await;
    Ok(done.into_iter().map(|d| d.version).collect())
}
