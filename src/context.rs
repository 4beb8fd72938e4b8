//! What a run needs from the outside world — today's date, the clock, the environment — injected, so
//! that tests are deterministic.

/// Reads an environment variable; empty counts as unset.
pub type EnvFn = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What every command may need from the outside world, injected for tests.
pub struct Context {
    /// Today's date, which bounds birth and HOG expiry years.
    pub today: jiff::civil::Date,
    /// Reads an environment variable (empty counts as unset).
    pub env: EnvFn,
    /// The current time, for the ledger and the resume window.
    pub now: Box<dyn Fn() -> jiff::Timestamp + Send + Sync>,
}

impl Context {
    /// The real clock and environment.
    pub fn from_process() -> Self {
        Self {
            today: jiff::Zoned::now().date(),
            env: Box::new(crate::config::process_env),
            now: Box::new(jiff::Timestamp::now),
        }
    }
}
