//! Exit codes (docs/transaction.md) and the mapping from every failure to one of them. The table here is the one
//! README documents; tests and cron wrappers rely on each number.

use serde::Serialize;

use crate::api::CallError;
use crate::config::ConfigError;
use crate::driver::DriverError;
use crate::source::InputError;
use crate::wire::VendorError;

/// A process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Exit {
    Success,
    Internal,
    Usage,
    Partial,
    DataErr,
    Unavailable,
    Locked,
    Protocol,
    Auth,
    Config,
    Unknown,
    Interrupted,
    Terminated,
}

impl Exit {
    /// The exit whose code is `code`; unknown codes are internal errors.
    pub fn from_code(code: u8) -> Exit {
        ALL.into_iter()
            .find(|e| e.code() == code)
            .unwrap_or(Exit::Internal)
    }

    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Internal => 1,
            Exit::Usage => 2,
            Exit::Partial => 3,
            Exit::DataErr => 65,
            Exit::Unavailable => 69,
            Exit::Locked => 75,
            Exit::Protocol => 76,
            Exit::Auth => 77,
            Exit::Config => 78,
            Exit::Unknown => 79,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

const ALL: [Exit; 13] = [
    Exit::Success,
    Exit::Internal,
    Exit::Usage,
    Exit::Partial,
    Exit::DataErr,
    Exit::Unavailable,
    Exit::Locked,
    Exit::Protocol,
    Exit::Auth,
    Exit::Config,
    Exit::Unknown,
    Exit::Interrupted,
    Exit::Terminated,
];

/// The exit code for a failed call.
pub fn exit_for_call(error: &CallError) -> Exit {
    match error {
        CallError::Vendor {
            error: VendorError::AuthenticationFailed,
            ..
        } => Exit::Auth,
        CallError::Vendor { .. } | CallError::Wire { .. } => Exit::Protocol,
        CallError::Transport { .. } | CallError::Transient { .. } | CallError::Tls { .. } => {
            Exit::Unavailable
        }
    }
}

/// The exit code for a driver failure.
pub fn exit_for_driver(error: &DriverError) -> Exit {
    match error {
        DriverError::EmptyRefused => Exit::DataErr,
        DriverError::Call { source, .. } => exit_for_call(source),
        DriverError::Mismatch { .. } | DriverError::DuplicateAgain { .. } => Exit::Protocol,
        DriverError::EndUnknown { .. } => Exit::Unknown,
        DriverError::Spool { .. } => Exit::Internal,
        DriverError::Interrupted(signal) => match signal {
            crate::signal::Signal::Interrupt => Exit::Interrupted,
            crate::signal::Signal::Terminate => Exit::Terminated,
        },
    }
}

/// Any failure of a command, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A safety guard refused the run.
    #[error("{0}")]
    Refused(String),
    /// What was asked for (a store) does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl RunError {
    pub fn exit(&self) -> Exit {
        match self {
            RunError::Config(_) => Exit::Config,
            RunError::Input(_) => Exit::DataErr,
            RunError::Driver(e) => exit_for_driver(e),
            RunError::Lock(crate::lock::LockError::Held { .. }) => Exit::Locked,
            RunError::Lock(crate::lock::LockError::Io { .. }) => Exit::Config,
            RunError::Lock(crate::lock::LockError::Postgres(_)) => Exit::Unavailable,
            RunError::Ledger(crate::ledger::LedgerError::Dir { .. }) => Exit::Config,
            RunError::Ledger(crate::ledger::LedgerError::Sqlite { .. }) => Exit::Internal,
            RunError::Ledger(crate::ledger::LedgerError::Postgres(_)) => Exit::Unavailable,
            RunError::Refused(_) | RunError::NotFound(_) => Exit::DataErr,
            RunError::Auth(_) => Exit::Auth,
            RunError::Protocol(_) => Exit::Protocol,
            RunError::Unavailable(_) => Exit::Unavailable,
            RunError::Internal(_) => Exit::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Endpoint;

    #[test]
    fn every_documented_code_is_distinct() {
        let mut codes: Vec<u8> = ALL.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, [0, 1, 2, 3, 65, 69, 75, 76, 77, 78, 79, 130, 143]);
        assert!(ALL.iter().all(|e| Exit::from_code(e.code()) == *e));
    }

    #[test]
    fn authentication_failures_exit_77_and_other_vendor_errors_76() {
        let vendor = |error| CallError::Vendor {
            endpoint: Endpoint::BeginTransaction,
            status: 200,
            error,
        };
        assert_eq!(
            exit_for_call(&vendor(VendorError::AuthenticationFailed)),
            Exit::Auth
        );
        assert_eq!(
            exit_for_call(&vendor(VendorError::Other("Purged".into()))),
            Exit::Protocol
        );
        let tls = CallError::Tls {
            endpoint: Endpoint::ReadyFeed,
            detail: "invalid peer certificate".into(),
        };
        assert_eq!(exit_for_call(&tls), Exit::Unavailable);
    }
}
