//! Stopping on SIGINT/SIGTERM (README "Running it for real"): a signal asks the running upload to stop after the chunk in
//! flight, never calling endtransaction; a second signal ends the process at once. The driver only sees
//! a [`Stop`], so tests trigger it without signals.

use tokio::sync::watch;

/// The signal that asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The exit code: 130 for SIGINT, 143 for SIGTERM.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// A request to stop, shared by everything that should wind down.
#[derive(Clone, Debug)]
pub struct Stop(watch::Receiver<Option<Signal>>);

impl Stop {
    /// A stop that never comes.
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(None);
        // Keep the sender alive forever so that `wait` stays pending instead of erroring.
        std::mem::forget(tx);
        Stop(rx)
    }

    /// A stop triggered by the returned sender (tests).
    pub fn manual() -> (watch::Sender<Option<Signal>>, Self) {
        let (tx, rx) = watch::channel(None);
        (tx, Stop(rx))
    }

    /// The signal received, if any.
    pub fn requested(&self) -> Option<Signal> {
        *self.0.borrow()
    }

    /// Completes when a signal arrives.
    pub async fn wait(&mut self) -> Signal {
        loop {
            if let Some(signal) = *self.0.borrow_and_update() {
                return signal;
            }
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Listens for SIGINT and SIGTERM: the first asks to stop (and logs `what_happens`, e.g. "stopping after
/// the chunk in flight"), the second exits with its code at once.
pub fn listen(what_happens: &'static str) -> Stop {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut signals = Signals::new();
        let mut seen = false;
        loop {
            let signal = signals.next().await;
            if seen {
                eprintln!("rrfeed: {} again; stopping now", signal.name());
                std::process::exit(i32::from(signal.exit_code()));
            }
            seen = true;
            tracing::warn!(signal = signal.name(), "{what_happens}");
            let _ = tx.send(Some(signal));
        }
    });
    Stop(rx)
}

#[cfg(unix)]
struct Signals {
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

#[cfg(unix)]
impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
            .ok();
        Self { streams }
    }

    async fn next(&mut self) -> Signal {
        let Some((int, term)) = &mut self.streams else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => Signal::Interrupt,
            _ = term.recv() => Signal::Terminate,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> Self {
        Signals
    }

    async fn next(&mut self) -> Signal {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
