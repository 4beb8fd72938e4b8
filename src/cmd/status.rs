//! `rrfeed status`: every store's last run and last success, and a verdict fit for a monitoring check
//! (Nagios, Icinga, Zabbix, or a CI step): exit 0 when every store's last run succeeded and its last
//! success is younger than `--max-age`, exit 3 otherwise. The first line says which stores are not
//! well, as such checks show the first line.

use serde::Serialize;

use crate::cli::{GlobalArgs, StatusArgs};
use crate::config::{Config, Destination, Overrides};
use crate::error::{Exit, RunError};
use crate::ledger::{self, CRM, RIDER_REWARDS};
use crate::monitor::status::{StoreStatus, age_text, assess};
use crate::summary::table;

use super::{Context, print_result};

#[derive(Serialize)]
struct Report {
    ok: bool,
    max_age_seconds: u64,
    stores: Vec<StoreStatus>,
}

pub fn run(args: &StatusArgs, global: &GlobalArgs, ctx: &Context) -> Exit {
    match report(args, global, ctx) {
        Ok(report) => {
            print_result(args.json, &report, || render(&report));
            if report.ok {
                Exit::Success
            } else {
                Exit::Partial
            }
        }
        Err(e) => {
            tracing::error!("rrfeed status: {e}");
            e.exit()
        }
    }
}

fn report(args: &StatusArgs, global: &GlobalArgs, ctx: &Context) -> Result<Report, RunError> {
    let config = Config::load(global.config.as_deref())?;
    let overrides = Overrides {
        state_dir: global.state_dir.clone(),
        ..Overrides::default()
    };
    // A query never creates a ledger.
    let known = match ledger::open_existing(&config.state(&overrides, &ctx.env)?)? {
        Some(ledger) => ledger.overview()?,
        None => Vec::new(),
    };
    let mut configured = Vec::new();
    for name in config.store_names() {
        let destination = match config.destination_of(name)? {
            Destination::Crm => CRM,
            Destination::RiderRewards => RIDER_REWARDS,
        };
        configured.push((name.to_owned(), destination.to_owned()));
    }
    let now = (ctx.now)().as_millisecond() as f64 / 1000.0;
    let stores = assess(&configured, &known, now, args.max_age);
    Ok(Report {
        ok: !stores.is_empty() && stores.iter().all(|s| s.ok),
        max_age_seconds: args.max_age.as_secs(),
        stores,
    })
}

fn render(report: &Report) -> String {
    let failing: Vec<String> = report
        .stores
        .iter()
        .filter_map(|s| s.problem.as_ref().map(|p| format!("{}: {p}", s.store)))
        .collect();
    let headline = if report.stores.is_empty() {
        "rrfeed status: FAILING — no store is configured or has run".to_owned()
    } else if report.ok {
        format!(
            "rrfeed status: OK — {} store(s), each succeeded within {}",
            report.stores.len(),
            age_text(report.max_age_seconds)
        )
    } else {
        format!("rrfeed status: FAILING — {}", failing.join("; "))
    };
    let rows: Vec<[String; 7]> = report
        .stores
        .iter()
        .map(|s| {
            let dash = || "-".to_owned();
            [
                s.store.clone(),
                s.last_run_at.as_deref().map_or_else(dash, when),
                match (&s.last_state, s.last_exit_code) {
                    (Some(state), Some(code)) => format!("{state} ({code})"),
                    _ => dash(),
                },
                s.rows.map_or_else(dash, |r| r.to_string()),
                s.last_success_at.as_deref().map_or_else(dash, when),
                s.success_age_seconds.map_or_else(dash, age_text),
                if s.ok { "ok".into() } else { "FAILING".into() },
            ]
        })
        .collect();
    let header = [
        "store",
        "last run",
        "state (exit)",
        "rows",
        "last success",
        "age",
        "verdict",
    ];
    format!("{headline}\n{}", table(&header, &rows))
}

/// A ledger time to the second, for a person.
fn when(time: &str) -> String {
    time.parse::<jiff::Timestamp>().map_or_else(
        |_| time.to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}
