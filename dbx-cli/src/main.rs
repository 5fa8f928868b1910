//! The `dbx` command-line tool (being written).

fn main() {}
