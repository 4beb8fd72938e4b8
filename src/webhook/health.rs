//! The receiver's dead-man's switch (`[webhook] ping_url`): every few minutes, while the outbox can be
//! read and its writer is running, a plain "alive" ping; otherwise a `fail` ping saying why. A receiver
//! that died, hangs or lost its disk stops pinging, and the monitoring service notices.

use std::time::Duration;

use super::writer::WriterHandle;
use crate::monitor::ping::Ping;
use crate::state::State;

/// How often a healthy receiver pings, unless `--ping-every` says otherwise.
pub const DEFAULT_PING_EVERY: Duration = Duration::from_secs(300);

/// Pings `ping` every `every`, the first time at once; runs until dropped.
pub async fn keep_pinging(ping: Ping, state: State, writer: WriterHandle, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let state = state.clone();
        let readable = tokio::task::spawn_blocking(move || check(&state))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match readable {
            Ok(()) if writer.is_alive() => ping.alive().await,
            Ok(()) => ping.fail("the outbox writer stopped").await,
            Err(e) => ping.fail(&format!("the outbox cannot be read: {e}")).await,
        }
    }
}

fn check(state: &State) -> Result<(), String> {
    let mut outbox = super::outbox::open(state).map_err(|e| e.to_string())?;
    outbox.counts().map(|_| ()).map_err(|e| e.to_string())
}
