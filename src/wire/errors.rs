//! The vendor's documented error texts, the failures they stand for, and what an answer that cannot be
//! read is.

use super::*;

/// Error texts the vendor documents. Matching is done by [`VendorError::classify`].
pub mod error_text {
    pub const AUTHENTICATION_FAILED: &str = "Authentication failed";
    pub const TOO_MANY_ROWS: &str = "There are more than 1000 rows of data within the post";

    /// The vendor's text (sic) when a post would take the running total past the declared total.
    pub fn over_expected(rows: usize) -> String {
        format!(
            "Tried to upload {rows}, causing the total to go larger then the expected upload total. "
        )
    }
}

/// Why a body could not be read as an answer. Always a protocol error (docs/transaction.md, exit code 76).
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("the answer is not JSON ({detail}): {snippet}")]
    NotJson { detail: String, snippet: String },
    #[error("the answer has no `results` object: {snippet}")]
    NoResults { snippet: String },
    /// `message` is as it appeared in the answer (JSON), or `missing`.
    #[error("the answer's message is {message}, not \"Success\"")]
    NotSuccess { message: String },
    #[error("the answer's results are not as documented: {detail}")]
    BadResults { detail: String },
}

/// A `results.error` from the vendor, sorted into what the driver must tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VendorError {
    /// `Authentication failed`.
    AuthenticationFailed,
    /// `There are more than 1000 rows of data within the post`.
    TooManyRows,
    /// `Tried to upload N, causing the total to go larger then the expected upload total.`
    OverExpected { rows: Option<u64> },
    /// Any other text: undocumented, never retried.
    Other(String),
}

impl VendorError {
    /// Sorts an error text; the documented texts are matched loosely (case, spacing, "than"/"then").
    pub fn classify(text: &str) -> VendorError {
        let t = text.trim().to_ascii_lowercase();
        if t == error_text::AUTHENTICATION_FAILED.to_ascii_lowercase() {
            VendorError::AuthenticationFailed
        } else if t.starts_with("there are more than 1000 rows") {
            VendorError::TooManyRows
        } else if t.starts_with("tried to upload")
            && (t.contains("larger then the expected") || t.contains("larger than the expected"))
        {
            let rows = t
                .trim_start_matches("tried to upload")
                .split(',')
                .next()
                .and_then(|n| n.trim().parse().ok());
            VendorError::OverExpected { rows }
        } else {
            VendorError::Other(text.trim().to_owned())
        }
    }
}

impl fmt::Display for VendorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VendorError::AuthenticationFailed => f.write_str(error_text::AUTHENTICATION_FAILED),
            VendorError::TooManyRows => f.write_str(error_text::TOO_MANY_ROWS),
            VendorError::OverExpected { rows: Some(n) } => {
                f.write_str(error_text::over_expected(*n as usize).trim_end())
            }
            VendorError::OverExpected { rows: None } => {
                f.write_str("the post would take the total past the expected total")
            }
            VendorError::Other(text) => f.write_str(text),
        }
    }
}
