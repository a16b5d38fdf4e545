//! User-facing errors: bad input that the user can fix. They exit with code 2 and one line.

use std::fmt;

/// An error caused by user input (spec, data, CLI). `main` prints it on one line and exits 2.
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Build a [`UserError`] wrapped in `anyhow::Error`.
pub fn user(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}
