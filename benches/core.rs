//! The core on one thread: read an export, normalize every row and serialize it as the vendor's JSON,
//! exactly as `upload` does before any network call (the spool is replaced by a reused buffer).
//!
//! `cargo bench --bench core`; the throughput is reported in rows per second, on one core (the calling
//! thread alone, what `upload` does on fewer than four cores) and on all cores (the reading pipeline
//! `upload` uses where it has four or more, here run on however many there are).

use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rrfeed::customer::{Customer, Normalizer};
use rrfeed::ingest::{IngestOptions, RowSink, ingest, ingest_with_workers};
use rrfeed::source::{Format, InputSpec, Location};
use rrfeed::warnings::Issue;

/// Serializes each row into a buffer it reuses, as the spool writer does before writing.
struct Serialize {
    buf: Vec<u8>,
    bytes: usize,
}

impl RowSink for Serialize {
    fn accept(&mut self, customer: &Customer, _: Location, _: &[Issue]) -> std::io::Result<()> {
        self.buf.clear();
        customer.write_json(&mut self.buf);
        self.bytes += self.buf.len();
        Ok(())
    }
}

/// The messy example export, its 300 rows repeated `times` times (ids repeat too: extra warnings).
fn export(times: usize, format: Format) -> (tempfile::NamedTempFile, u64) {
    let source = std::fs::read_to_string(match format {
        Format::Json | Format::Ndjson => "examples/customers.json",
        Format::Csv => "examples/customers.csv",
        _ => unreachable!("CSV, JSON and NDJSON only"),
    })
    .unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut rows = 0;
    if format == Format::Csv {
        let (header, body) = source.split_once("\r\n").unwrap();
        write!(file, "{header}\r\n").unwrap();
        for _ in 0..times {
            file.write_all(body.as_bytes()).unwrap();
            rows += 300;
        }
    } else {
        let doc: serde_json::Value = serde_json::from_str(&source).unwrap();
        let rows_of: Vec<&serde_json::Value> = doc["rows"].as_array().unwrap().iter().collect();
        let all: Vec<&serde_json::Value> =
            (0..times).flat_map(|_| rows_of.iter().copied()).collect();
        rows = all.len() as u64;
        let mut out = std::io::BufWriter::new(&mut file);
        if format == Format::Ndjson {
            for row in all {
                serde_json::to_writer(&mut out, row).unwrap();
                out.write_all(b"\n").unwrap();
            }
        } else {
            serde_json::to_writer(&mut out, &all).unwrap();
        }
    }
    (file, rows)
}

fn bench_format(c: &mut Criterion, format: Format, times: usize) {
    let (file, rows) = export(times, format);
    let spec = InputSpec {
        path: Some(file.path().to_owned()),
        format,
        encoding: None,
        delimiter: None,
        rules: Default::default(),
        ..InputSpec::default()
    };
    let options = IngestOptions {
        strict: false,
        normalizer: Normalizer::new(jiff::civil::date(2026, 11, 22)),
    };
    let mut group = c.benchmark_group("read_normalize_serialize");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    // One core: everything on the calling thread. All cores: what `upload` does.
    for (label, workers) in [("one_core", 1), ("all_cores", cores)] {
        let id = format!("{}/{label}", format!("{format:?}").to_lowercase());
        group.bench_function(id, |b| {
            b.iter(|| {
                let mut sink = Serialize {
                    buf: Vec::with_capacity(1024),
                    bytes: 0,
                };
                let ingested =
                    ingest_with_workers(&spec, options.clone(), &mut sink, workers).unwrap();
                assert_eq!(ingested.rows, rows);
                sink.bytes
            });
        });
    }
    group.finish();
}

/// References that bound what the whole pipeline can reach: the CSV tokenizer alone (no UTF-8 check,
/// no mapping, no normalization) over the same file, and serialization alone of rows already normalized.
fn bench_references(c: &mut Criterion, times: usize) {
    let (file, rows) = export(times, Format::Csv);
    let mut group = c.benchmark_group("reference");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    group.bench_function("csv_tokenize_only", |b| {
        b.iter(|| {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_path(file.path())
                .unwrap();
            let mut record = csv::ByteRecord::new();
            let mut count = 0u64;
            while reader.read_byte_record(&mut record).unwrap() {
                count += 1;
            }
            assert_eq!(count, rows);
        });
    });
    let normalizer = Normalizer::new(jiff::civil::date(2026, 11, 22));
    let spec = InputSpec {
        path: Some(file.path().to_owned()),
        format: Format::Csv,
        encoding: None,
        delimiter: None,
        rules: Default::default(),
        ..InputSpec::default()
    };
    let mut collect = Collect(Vec::new());
    let options = IngestOptions {
        strict: false,
        normalizer,
    };
    ingest(&spec, options, &mut collect).unwrap();
    group.bench_function("serialize_only", |b| {
        let mut buf = Vec::with_capacity(1024);
        b.iter(|| {
            let mut bytes = 0;
            for customer in &collect.0 {
                buf.clear();
                customer.write_json(&mut buf);
                bytes += buf.len();
            }
            bytes
        });
    });
    group.finish();
}

/// Keeps every normalized row, for the serialization reference.
struct Collect(Vec<Customer>);

impl RowSink for Collect {
    fn accept(&mut self, customer: &Customer, _: Location, _: &[Issue]) -> std::io::Result<()> {
        self.0.push(customer.clone());
        Ok(())
    }
}

fn core(c: &mut Criterion) {
    bench_format(c, Format::Csv, 200);
    bench_format(c, Format::Json, 500);
    bench_format(c, Format::Ndjson, 500);
    bench_references(c, 200);
}

criterion_group!(benches, core);
criterion_main!(benches);
