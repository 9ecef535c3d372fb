//! The CLI's two kinds of failure, and the exit code each one means.
//!
//! A [`SettingsError`] is the user's to fix before anything runs (a bad
//! flag, variable or config value, a missing output): exit 2. A
//! [`CliError::Runtime`] stopped a command that had valid settings (the S3
//! client could not be set up, a live run could not start): exit 1, like a
//! failed input. The code follows from the type, so the same failure exits
//! the same way in every subcommand, wherever it was converted.

use vidpipe::config::ConfigError;

/// A setting that cannot be used: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A flag or environment variable has a bad value.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag and its variable.
        flag: String,
        /// What is wrong.
        reason: String,
    },
    /// The config file is bad (the message names the file, line and key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something required is missing, or flags do not go together.
    #[error("{0}")]
    Usage(String),
    /// A commentary script is bad (the message names its file and line).
    #[error(transparent)]
    Script(#[from] vidpipe::commentary::script::ScriptError),
}

/// Why a command could not run or go on.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad settings: exit 2.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A failure while running with valid settings: exit 1. `subject` is
    /// what failed (a file, a URL, `S3`), printed before the reason.
    #[error("{subject}: {reason}")]
    Runtime {
        /// What failed.
        subject: String,
        /// Why.
        reason: String,
    },
}

impl CliError {
    /// A runtime failure of `subject`.
    pub fn runtime(subject: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        CliError::Runtime {
            subject: subject.into(),
            reason: reason.to_string(),
        }
    }

    /// The documented exit code: 2 for usage, 1 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Settings(_) => 2,
            CliError::Runtime { .. } => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_decides_the_exit_code() {
        let usage: CliError = SettingsError::Usage("no output".into()).into();
        assert_eq!(usage.exit_code(), 2);
        assert_eq!(CliError::runtime("S3", "no route").exit_code(), 1);
        assert_eq!(
            CliError::runtime("S3", "no route").to_string(),
            "S3: no route"
        );
    }
}
