//! The command line: clap types, parsed from `std::env::args`.
//!
//! Doc comments here are the `--help` text; keep them short and user-facing.

use crate::parse;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Talk to any dbx database (SQLite, Redis, PostgreSQL, MongoDB, Qdrant) from
/// the shell: health checks, SQL queries, key-value, documents and vectors.
///
/// A TARGET is a connection URL (`postgres://app@db/app`, `redis://127.0.0.1`,
/// `sqlite:app.db`...) or the name of a database in dbx.toml.
///
/// Exit codes: 0 success; 1 an operation failed (or a key was missing);
/// 2 the command line, the target or the config file is wrong (nothing was
/// attempted).
#[derive(Debug, Parser)]
#[command(name = "dbx", version, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub(crate) global: GlobalOpts,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The help heading of the options every command takes.
const GLOBAL: &str = "Global options";

/// Options accepted before or after any subcommand.
#[derive(Debug, Args)]
pub(crate) struct GlobalOpts {
    /// The dbx.toml naming the databases [default: ./dbx.toml when it exists].
    #[arg(long, global = true, value_name = "PATH", env = "DBX_CONFIG", help_heading = GLOBAL)]
    pub(crate) config: Option<PathBuf>,

    /// Machine-readable JSON output on stdout, for every command.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub(crate) json: bool,

    /// When to colour the output (`auto`: only on a terminal, and never when
    /// NO_COLOR is set).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = ColorChoice::Auto,
        value_name = "WHEN",
        help_heading = GLOBAL
    )]
    pub(crate) color: ColorChoice,

    /// Deadline for opening a connection, such as `500ms`, `5s` or `1m`
    /// (the database's `connect_timeout`).
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        value_parser = parse::duration,
        help_heading = GLOBAL
    )]
    pub(crate) timeout: Option<Duration>,

    /// On errors, also print the error's kind, code and underlying causes.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub(crate) verbose: bool,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is not set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check that databases answer: round trip latency, pool, circuit
    /// breaker and, for clusters and replicas, each node.
    ///
    /// Without TARGET, checks every database of dbx.toml. Exits 1 when any
    /// check failed (with --strict, also when a node is down).
    Health(HealthArgs),
    /// Run one SQL statement with parameters bound as $1..$N.
    Query(QueryArgs),
    /// Key-value commands (Redis, SQLite, PostgreSQL, MongoDB).
    Kv(KvArgs),
    /// Document commands (MongoDB).
    Docs(DocsArgs),
    /// Vector commands (Qdrant, SQLite).
    Vectors(VectorsArgs),
    /// Connect, make one health round trip, and print the client's
    /// statistics: operations, errors by kind, pool, breaker, latency, nodes.
    Stats(StatsArgs),
    /// Schema migrations (SQLite, PostgreSQL): a directory of versioned SQL
    /// files, applied in order, each once.
    Migrate(MigrateArgs),
    /// Print a shell completion script to stdout.
    ///
    /// For example: `dbx completions bash > ~/.local/share/bash-completion/completions/dbx`.
    Completions(CompletionsArgs),
}

/// `dbx health`.
#[derive(Debug, Args)]
pub(crate) struct HealthArgs {
    /// Databases to check: URLs or names from dbx.toml [default: all of dbx.toml].
    #[arg(value_name = "TARGET")]
    pub(crate) targets: Vec<String>,

    /// Also exit 1 when a database answers but one of its nodes (a cluster
    /// replica, a standby) is down or avoided ("degraded").
    #[arg(long)]
    pub(crate) strict: bool,
}

/// `dbx query`.
#[derive(Debug, Args)]
#[command(after_long_help = QUERY_HELP)]
pub(crate) struct QueryArgs {
    /// A URL or a name from dbx.toml.
    pub(crate) target: String,

    /// One SQL statement, with placeholders $1..$N.
    pub(crate) sql: String,

    /// Values for $1..$N, in order (see below for how each is typed).
    #[arg(value_name = "PARAM", allow_hyphen_values = true)]
    pub(crate) params: Vec<String>,

    /// Output format [default: table, or json with --json].
    #[arg(long, short, value_enum)]
    pub(crate) format: Option<Format>,

    /// Bind every parameter as text, without guessing numbers, booleans or NULL.
    #[arg(long)]
    pub(crate) raw_params: bool,

    /// Run the statement as one that returns rows, whatever its first word.
    #[arg(long, conflicts_with = "execute")]
    pub(crate) rows: bool,

    /// Run the statement as one that returns no rows, and print the number of
    /// rows it changed.
    #[arg(long)]
    pub(crate) execute: bool,
}

const QUERY_HELP: &str = "\
Parameters are always bound, never put into the SQL text. Each PARAM is read as:
  null                    NULL
  true, false             a boolean
  42, -7                  an integer (no leading zeros: 007 stays text)
  1.5, -2e3               a float
  \"...\"                   the text between the quotes (a JSON string), so \"42\" is text
  @PATH                   the contents of the file PATH, as text (@@x is the text @x)
  anything else           text
With --raw-params, every PARAM is text (@PATH still reads a file).

A statement returns rows when its first word is SELECT, VALUES, SHOW, EXPLAIN,
WITH, TABLE, PRAGMA or DESCRIBE, or when it has a RETURNING clause (words inside
strings, quoted names and comments do not count). Other statements (INSERT,
UPDATE, DELETE, CREATE...) print \"N rows affected\". --rows and --execute
override the rule.

Examples:
  dbx query sqlite:app.db \"SELECT id, name FROM users WHERE id = $1\" 42
  dbx query main \"INSERT INTO notes (body) VALUES ($1)\" \"it's fine\"
  dbx query main \"SELECT * FROM users\" --format csv > users.csv";

/// `--format` of `dbx query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns, NULL shown as NULL, bytes as \x hex.
    Table,
    /// An array of objects, one per row.
    Json,
    /// RFC 4180 CSV with a header line.
    Csv,
}

/// `dbx kv`.
#[derive(Debug, Args)]
pub(crate) struct KvArgs {
    /// A URL or a name from dbx.toml.
    pub(crate) target: String,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: KvCommand,
}

/// The key-value subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KvCommand {
    /// Print a key's value (as text when it is UTF-8; exits 1 when the key
    /// does not exist).
    Get(KvGetArgs),
    /// Set a key's value, optionally with a time to live.
    Set(KvSetArgs),
    /// Delete a key.
    Del(KvKeyArg),
    /// List the keys that start with PREFIX (literally: no glob), sorted.
    Scan(KvScanArgs),
    /// Print a key's time to live: a duration, `persistent`, or `missing`
    /// (exit 1).
    Ttl(KvKeyArg),
}

/// `dbx kv get`.
#[derive(Debug, Args)]
pub(crate) struct KvGetArgs {
    /// The key.
    pub(crate) key: String,

    /// Print the value as hexadecimal.
    #[arg(long, conflicts_with_all = ["base64", "raw"])]
    pub(crate) hex: bool,

    /// Print the value as base64.
    #[arg(long, conflicts_with = "raw")]
    pub(crate) base64: bool,

    /// Write the value's bytes exactly as stored, without a newline.
    #[arg(long)]
    pub(crate) raw: bool,
}

/// `dbx kv set`.
#[derive(Debug, Args)]
pub(crate) struct KvSetArgs {
    /// The key.
    pub(crate) key: String,

    /// The value, as UTF-8 text.
    #[arg(required_unless_present = "file", allow_hyphen_values = true)]
    pub(crate) value: Option<String>,

    /// Read the value's bytes from a file instead (`-` for stdin).
    #[arg(long, value_name = "PATH", conflicts_with = "value")]
    pub(crate) file: Option<PathBuf>,

    /// Time to live, such as `10s`, `5m` or `250ms` [default: none].
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub(crate) ttl: Option<Duration>,
}

/// A subcommand that takes one key.
#[derive(Debug, Args)]
pub(crate) struct KvKeyArg {
    /// The key.
    pub(crate) key: String,
}

/// `dbx kv scan`.
#[derive(Debug, Args)]
pub(crate) struct KvScanArgs {
    /// The prefix (empty: every key).
    #[arg(default_value = "")]
    pub(crate) prefix: String,

    /// Stop after this many keys (which ones is up to the database).
    #[arg(long, short = 'n', value_name = "N")]
    pub(crate) limit: Option<usize>,
}

/// `dbx docs`.
#[derive(Debug, Args)]
pub(crate) struct DocsArgs {
    /// A URL or a name from dbx.toml.
    pub(crate) target: String,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: DocsCommand,
}

/// The document subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DocsCommand {
    /// Print the documents matching a MongoDB filter, one JSON document per
    /// line (a JSON array with --json), in relaxed Extended JSON.
    Find(DocsFindArgs),
}

/// `dbx docs find`.
#[derive(Debug, Args)]
pub(crate) struct DocsFindArgs {
    /// The collection.
    pub(crate) collection: String,

    /// A MongoDB query document, such as '{"age": {"$gte": 18}}'.
    #[arg(default_value = "{}", value_name = "FILTER_JSON", value_parser = parse::json_object)]
    pub(crate) filter: serde_json::Value,

    /// Most documents to print.
    #[arg(long, short = 'n', value_name = "N")]
    pub(crate) limit: Option<u64>,

    /// Documents to skip first.
    #[arg(long, value_name = "N")]
    pub(crate) skip: Option<u64>,

    /// Sort order, such as '{"age": -1}'.
    #[arg(long, value_name = "JSON", value_parser = parse::json_object)]
    pub(crate) sort: Option<serde_json::Value>,

    /// Fields to include or exclude, such as '{"name": 1, "_id": 0}'.
    #[arg(long, value_name = "JSON", value_parser = parse::json_object)]
    pub(crate) projection: Option<serde_json::Value>,
}

/// `dbx vectors`.
#[derive(Debug, Args)]
pub(crate) struct VectorsArgs {
    /// A URL or a name from dbx.toml.
    pub(crate) target: String,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: VectorsCommand,
}

/// The vector subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum VectorsCommand {
    /// Print the points nearest to a vector: id, score and payload, best first.
    Search(VectorSearchArgs),
    /// List the collections.
    List,
    /// Print a collection's dimension, distance and number of points.
    Info(VectorInfoArgs),
}

/// `dbx vectors search`.
#[derive(Debug, Args)]
pub(crate) struct VectorSearchArgs {
    /// The collection.
    pub(crate) collection: String,

    /// The query vector as a JSON array, such as "[0.1, 0.2, 0.3]".
    #[arg(long, value_name = "JSON", value_parser = parse::vector, allow_hyphen_values = true)]
    pub(crate) vector: parse::QueryVector,

    /// How many points to return.
    #[arg(long, short = 'n', default_value_t = 10, value_name = "N")]
    pub(crate) limit: usize,

    /// A Qdrant payload filter, such as '{"must": [{"key": "lang", "match": {"value": "en"}}]}'.
    #[arg(long, value_name = "JSON", value_parser = parse::json_object)]
    pub(crate) filter: Option<serde_json::Value>,

    /// Keep only scores at least this good (a similarity floor for cosine
    /// and dot, a distance ceiling for euclid and manhattan).
    #[arg(long, value_name = "SCORE", allow_hyphen_values = true)]
    pub(crate) score_threshold: Option<f32>,

    /// Compare with every point, bypassing an approximate index (Qdrant's
    /// HNSW, SQLite's `vector_index=hnsw`).
    #[arg(long)]
    pub(crate) exact: bool,

    /// The HNSW candidate list for this search (1-10000): more recall for
    /// more time.
    #[arg(long, value_name = "N")]
    pub(crate) hnsw_ef: Option<usize>,

    /// Also print each point's stored vector.
    #[arg(long)]
    pub(crate) with_vectors: bool,
}

/// `dbx vectors info`.
#[derive(Debug, Args)]
pub(crate) struct VectorInfoArgs {
    /// The collection.
    pub(crate) collection: String,
}

/// `dbx stats`.
#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// A URL or a name from dbx.toml.
    pub(crate) target: String,
}

/// `dbx migrate`.
#[derive(Debug, Args)]
#[command(after_long_help = MIGRATE_HELP)]
pub(crate) struct MigrateArgs {
    /// The migrations directory.
    #[arg(
        long,
        short,
        global = true,
        value_name = "DIR",
        default_value = "migrations"
    )]
    pub(crate) dir: PathBuf,

    /// The bookkeeping table.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = "dbx_migrations"
    )]
    pub(crate) table: String,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: MigrateCommand,
}

/// The rules of migration files, after `dbx migrate --help`.
const MIGRATE_HELP: &str = "\
Files: <version>_<name>[.sqlite|.postgres][.down].sql, e.g. 0001_create_users.sql
and 0001_create_users.down.sql. A dialect's file wins over the generic one. A line
`-- dbx:no-transaction` runs a migration outside a transaction (CREATE INDEX
CONCURRENTLY). Checksums ignore comments and whitespace; an applied migration whose
SQL was edited, or whose file is gone, stops every run until it is put back.";

/// `dbx migrate ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCommand {
    /// Create the next migration file (and its down file) in the directory.
    New(MigrateNewArgs),
    /// Apply the pending migrations (all, or up to --to).
    Up(MigrateRunArgs),
    /// Revert the last applied migration (or every one above --to; 0: all).
    Down(MigrateRunArgs),
    /// List every migration: pending, applied (when), edited, or missing its file.
    Status(MigrateTargetArgs),
    /// Check the applied migrations against the files; exit 1 on a difference.
    Verify(MigrateTargetArgs),
}

/// `dbx migrate new`.
#[derive(Debug, Args)]
pub(crate) struct MigrateNewArgs {
    /// The name: letters, digits, `_` and `-` (`create_users`).
    pub(crate) name: String,

    /// Create no down file.
    #[arg(long)]
    pub(crate) no_down: bool,
}

/// `dbx migrate up|down`.
#[derive(Debug, Args)]
pub(crate) struct MigrateRunArgs {
    /// A URL or a name from dbx.toml.
    pub(crate) target: String,

    /// Up: apply up to this version, included. Down: revert every applied
    /// version above it (0 reverts all).
    #[arg(long, value_name = "VERSION")]
    pub(crate) to: Option<u64>,

    /// Print the steps and their SQL, changing nothing (the bookkeeping
    /// table is created if missing).
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// `dbx migrate status|verify`.
#[derive(Debug, Args)]
pub(crate) struct MigrateTargetArgs {
    /// A URL or a name from dbx.toml.
    pub(crate) target: String,
}

/// `dbx completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every value parser's type matches its field (clap checks that only
    /// when the argument is present).
    #[test]
    fn typed_arguments_parse() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(args)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let ok = [
            &["dbx", "--timeout", "2s", "health", "x"][..],
            &[
                "dbx",
                "vectors",
                "t",
                "search",
                "c",
                "--vector",
                "[1, 2]",
                "--filter",
                "{}",
                "--score-threshold",
                "-0.5",
            ],
            &[
                "dbx",
                "docs",
                "t",
                "find",
                "c",
                "{}",
                "--sort",
                "{\"a\": 1}",
                "--projection",
                "{}",
                "--limit",
                "1",
                "--skip",
                "1",
            ],
            &["dbx", "kv", "t", "set", "k", "v", "--ttl", "10s"],
            &["dbx", "kv", "t", "set", "k", "--file", "-"],
            &["dbx", "kv", "t", "scan", "p", "--limit", "3"],
            &[
                "dbx",
                "query",
                "t",
                "SELECT $1",
                "-5",
                "--format",
                "csv",
                "--raw-params",
            ],
            &["dbx", "completions", "bash"],
        ];
        for args in ok {
            assert_eq!(parse(args), Ok(()), "{args:?}");
        }
    }
}
