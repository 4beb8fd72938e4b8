//! Exit codes (SPEC §4) and the mapping from every failure to one of them. The table here is the one
//! README documents; tests and cron wrappers rely on each number.

use serde::Serialize;

use crate::client::CallError;
use crate::config::ConfigError;
use crate::driver::DriverError;
use crate::protocol::VendorError;
use crate::source::InputError;

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
            RunError::Unavailable(_) => Exit::Unavailable,
            RunError::Internal(_) => Exit::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Endpoint;

    #[test]
    fn every_documented_code_is_distinct() {
        let all = [
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
        let mut codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, [0, 1, 2, 3, 65, 69, 75, 76, 77, 78, 79, 130, 143]);
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
