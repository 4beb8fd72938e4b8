//! The transfer floor for `scripts/bench`: the least a client can do to upload a file's rows to a
//! server — ready, begin, the posts, end — with every row already serialized before the clock starts.
//! No reading, mapping or normalizing is timed; what remains is HTTP, the server and the network.
//! rrfeed's own upload is measured against this.
//!
//! ```sh
//! cargo run --release --example transfer_floor -- --url http://127.0.0.1:8080 --file customers.csv
//! ```
//! Credentials are the mock's demo ones unless `RRFEED_*` variables say otherwise.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use secrecy::SecretString;

use rrfeed::api::Api;
use rrfeed::client::{Client, StoreCredentials};
use rrfeed::config::ApiSettings;
use rrfeed::customer::{Customer, Normalizer};
use rrfeed::ingest::{IngestOptions, RowSink, ingest};
use rrfeed::source::{Format, InputSpec, Location};
use rrfeed::totals;
use rrfeed::warnings::Issue;
use rrfeed::wire::{
    BeginSummary, Count, EndSummary, FEED_CUSTOMERS, UploadSummary, write_upload_body,
};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    file: PathBuf,
}

/// Keeps every serialized row in memory (the floor may use memory; rrfeed may not).
struct Rows(Vec<Vec<u8>>);

impl RowSink for Rows {
    fn accept(&mut self, c: &Customer, _: Location, _: &[Issue]) -> std::io::Result<()> {
        let mut row = Vec::with_capacity(512);
        c.write_json(&mut row);
        self.0.push(row);
        Ok(())
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let spec = InputSpec {
        format: Format::from_path(&args.file),
        path: Some(args.file.clone()),
        encoding: None,
        delimiter: None,
        rules: Default::default(),
        ..InputSpec::default()
    };
    let options = IngestOptions {
        strict: false,
        normalizer: Normalizer::new(jiff::Zoned::now().date()),
    };
    let mut rows = Rows(Vec::new());
    ingest(&spec, options, &mut rows).expect("a readable export");
    let rows = rows.0;

    let store_id = env_or("RRFEED_STORE_ID", "1001");
    let partner_store_id = env_or("RRFEED_PARTNER_STORE_ID", "DEMO-1");
    let api = ApiSettings {
        base_url: args.url.parse().expect("a URL"),
        partner_key: SecretString::from(env_or("RRFEED_PARTNER_API_KEY", "demo-partner-key")),
        admin_password: None,
        ca_cert: None,
        timeout: Duration::from_secs(120),
        connect_timeout: Duration::from_secs(10),
    };
    let client = Client::new(
        &api,
        Some(StoreCredentials {
            store_id: store_id.clone(),
            store_key: SecretString::from(env_or("RRFEED_STORE_API_KEY", "demo-store-key")),
        }),
    )
    .expect("a client");

    let start = Instant::now();
    client.ready_feed().await.expect("ready");
    let begun = client
        .begin(&BeginSummary {
            partnertransactionid: "transfer-floor".into(),
            partnerstoreid: partner_store_id.clone(),
            rr_store_id: store_id.clone(),
            feedtype: FEED_CUSTOMERS.into(),
            startdate: None,
            enddate: None,
            expectedtotal: Count(rows.len() as u64),
        })
        .await
        .expect("begin");
    let txid = begun.transactionid.0;
    let mut calls = 2;
    for chunk in totals::chunks(rows.len() as u64, 1000) {
        let summary = UploadSummary {
            transactionid: txid.clone(),
            partnertransactionid: "transfer-floor".into(),
            partnerstoreid: partner_store_id.clone(),
            rr_store_id: store_id.clone(),
            feedtype: FEED_CUSTOMERS.into(),
            startdate: None,
            enddate: None,
            totalrowssent: Count(chunk.rows as u64),
        };
        let start_row = chunk.start as usize;
        let mut body = Vec::new();
        write_upload_body(
            &summary,
            rows[start_row..start_row + chunk.rows]
                .iter()
                .map(Vec::as_slice),
            &mut body,
        );
        client
            .upload(&txid, Bytes::from(body))
            .await
            .expect("upload");
        calls += 1;
    }
    client
        .end(&EndSummary {
            transactionid: txid.clone(),
            partnertransactionid: "transfer-floor".into(),
            partnerstoreid: partner_store_id,
            feedtype: FEED_CUSTOMERS.into(),
            startdate: None,
            enddate: None,
        })
        .await
        .expect("end");
    calls += 1;
    println!(
        "{{\"rows\":{},\"calls\":{calls},\"wall_ms\":{}}}",
        rows.len(),
        start.elapsed().as_millis()
    );
}
