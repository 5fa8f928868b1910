//! The CLI's error, its exit code, and the redaction of secrets.

use std::sync::Mutex;

/// Exit code of a failed operation.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code of a wrong command line, target or config file (clap's too).
pub(crate) const EXIT_USAGE: u8 = 2;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The command line, a target name or the config file is wrong; nothing
    /// was attempted. Exit 2.
    Usage(String),
    /// A dbx operation failed. Exit 1.
    Db(dbx::Error),
    /// A dbx operation failed, with advice printed after the error. Exit 1.
    DbHint(dbx::Error, &'static str),
    /// Something else failed (a missing key, a file). Exit 1.
    Failed(String),
    /// The command printed its failures itself (health). Exit 1.
    Reported,
    /// Stdout's reader went away (`dbx ... | head`): not a failure. Exit 0.
    BrokenPipe,
}

impl CliError {
    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Db(_) | CliError::DbHint(..) | CliError::Failed(_) | CliError::Reported => {
                EXIT_FAILED
            }
            CliError::BrokenPipe => 0,
        }
    }
}

impl From<dbx::Error> for CliError {
    fn from(e: dbx::Error) -> Self {
        CliError::Db(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return CliError::BrokenPipe;
        }
        CliError::Failed(e.to_string())
    }
}

/// Result of a command.
pub(crate) type CliResult<T = ()> = Result<T, CliError>;

/// Secrets seen on the command line or in the config (passwords, secret
/// parameters). dbx already keeps them out of its messages; everything the
/// CLI prints about errors goes through [`redact`] as well, so that a driver
/// message quoting a URL could not leak one either.
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Shortest secret that is redacted by text search: shorter ones would
/// blank out ordinary words, and dbx's own redaction covers them.
const MIN_SECRET_LEN: usize = 3;

/// Remember a secret, to redact it from error output.
pub(crate) fn add_secret(secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    if let Ok(mut s) = SECRETS.lock()
        && !s.iter().any(|known| known == secret)
    {
        s.push(secret.to_owned());
        // Longest first, so a secret containing another is replaced whole.
        s.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// Remember the password in the userinfo of a raw URL (`scheme://user:pw@host`),
/// even one that does not parse as a connection URL.
pub(crate) fn add_url_secret(url: &str) {
    let Some((_, rest)) = url.split_once("://") else {
        return;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        add_secret(password);
        // The percent-decoded form too, as a driver might show that.
        add_secret(&percent_decode(password));
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with every remembered secret replaced by `***`.
pub(crate) fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    if let Ok(secrets) = SECRETS.lock() {
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_redacted() {
        add_url_secret("postgres://u:hunter%32pw@h:1/db");
        assert_eq!(redact("bad hunter%32pw"), "bad ***");
        assert_eq!(redact("bad hunter2pw!"), "bad ***!");
        add_url_secret("redis://127.0.0.1:6379");
        assert_eq!(redact("127.0.0.1:6379"), "127.0.0.1:6379");
        add_secret("ab");
        assert_eq!(redact("ab"), "ab");
    }
}
