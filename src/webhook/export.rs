//! `webhook export`: the latest pending update of each customer, as CSV or JSON, for the dealer system.
//!
//! A file is written beside its destination, synced, and renamed into place, and only then are the
//! updates marked exported: a crash or a full disk leaves them pending, never lost. Updates that arrive
//! while the export runs are not in it and stay pending.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;
use serde_json::value::RawValue;

use super::outbox::{Outbox, OutboxError, Row};
use crate::wire::{FIELD_NAMES, Field};

/// The file formats of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// `seq`, `received_at`, then the 25 fields; a field the update did not carry is empty.
    Csv,
    /// An array of `{"seq", "received_at", "customer": {25 fields, null if not carried}, "raw": {...}}`.
    Json,
}

/// What an export did.
#[derive(Clone, Debug, Serialize)]
pub struct Exported {
    /// Customers in the file.
    pub customers: usize,
    /// Pending updates marked exported (older updates of a customer count too).
    pub marked: u64,
    /// The newest update the export covers.
    pub up_to_seq: i64,
    pub out: Option<PathBuf>,
    pub format: ExportFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot write to stdout: {0}")]
    Stdout(io::Error),
}

/// Writes the latest update of each customer with a pending one (of every customer when `all`) to
/// `out` (stdout when `None`), then marks the pending updates it covered exported.
pub fn export(
    outbox: &mut dyn Outbox,
    format: ExportFormat,
    all: bool,
    out: Option<&Path>,
    now: Timestamp,
) -> Result<Exported, ExportError> {
    outbox.exclusive_export()?;
    let up_to_seq = outbox.last_seq()?;
    let rows = outbox.latest(up_to_seq, all)?;
    match out {
        Some(path) => write_file(path, format, &rows).map_err(|source| ExportError::Write {
            path: path.to_owned(),
            source,
        })?,
        None => {
            let mut stdout = io::stdout().lock();
            write_rows(&mut stdout, format, &rows)
                .and_then(|()| stdout.flush())
                .map_err(ExportError::Stdout)?;
        }
    }
    let marked = outbox.mark_exported(up_to_seq, now)?;
    Ok(Exported {
        customers: rows.len(),
        marked,
        up_to_seq,
        out: out.map(Path::to_owned),
        format,
    })
}

/// Writes a temporary file in the destination's directory, syncs it, renames it over `path`, and
/// syncs the directory so that the rename itself is durable.
fn write_file(path: &Path, format: ExportFormat, rows: &[Row]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".rrfeed-export-")
        .tempfile_in(dir)?;
    {
        let mut writer = io::BufWriter::new(file.as_file_mut());
        write_rows(&mut writer, format, rows)?;
        writer.flush()?;
    }
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

fn write_rows(out: &mut dyn Write, format: ExportFormat, rows: &[Row]) -> io::Result<()> {
    match format {
        ExportFormat::Csv => write_csv(out, rows),
        ExportFormat::Json => write_json(out, rows),
    }
}

fn write_csv(out: &mut dyn Write, rows: &[Row]) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    let mut header = vec!["seq", "received_at"];
    header.extend(FIELD_NAMES);
    csv.write_record(&header)?;
    for row in rows {
        let customer: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.customer).map_err(io::Error::other)?;
        let mut record = vec![row.seq.to_string(), row.received_at.clone()];
        record.extend(Field::ALL.into_iter().map(|f| {
            customer
                .get(f.name())
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        }));
        csv.write_record(&record)?;
    }
    csv.flush()
}

#[derive(Serialize)]
struct JsonRow<'a> {
    seq: i64,
    received_at: &'a str,
    customer: &'a RawValue,
    raw: &'a RawValue,
}

fn write_json(out: &mut dyn Write, rows: &[Row]) -> io::Result<()> {
    out.write_all(b"[")?;
    for (i, row) in rows.iter().enumerate() {
        let raw_value = |text: &str| -> io::Result<Box<RawValue>> {
            RawValue::from_string(text.to_owned()).map_err(io::Error::other)
        };
        let customer = raw_value(&row.customer)?;
        let raw = raw_value(&row.raw)?;
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(
            &mut *out,
            &JsonRow {
                seq: row.seq,
                received_at: &row.received_at,
                customer: &customer,
                raw: &raw,
            },
        )?;
    }
    out.write_all(b"\n]\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::Normalizer;
    use crate::webhook::outbox::sqlite::SqliteOutbox;
    use crate::webhook::payload;

    fn outbox_with(bodies: &[&str]) -> (tempfile::TempDir, SqliteOutbox) {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = SqliteOutbox::open(dir.path()).unwrap();
        let normalizer = Normalizer::new(jiff::civil::date(2026, 11, 22));
        for body in bodies {
            let updates = payload::parse(body.as_bytes(), 10, &normalizer).unwrap();
            outbox.store(&[&updates], Timestamp::UNIX_EPOCH).unwrap();
        }
        (dir, outbox)
    }

    fn export_to(outbox: &mut dyn Outbox, format: ExportFormat, all: bool, out: &Path) -> Exported {
        export(outbox, format, all, Some(out), Timestamp::UNIX_EPOCH).unwrap()
    }

    #[test]
    fn csv_has_the_latest_update_per_customer_and_marks_all_pending() {
        let (dir, mut outbox) = outbox_with(&[
            r#"{"PartnerCustomerID":"1","CustomerCity":"Oak Creek"}"#,
            r#"{"PartnerCustomerID":"2","CustomerEmail":"B@X.COM"}"#,
            r#"{"PartnerCustomerID":"1","CustomerCity":"Milwaukee"}"#,
        ]);
        let out = dir.path().join("updates.csv");
        let done = export_to(&mut outbox, ExportFormat::Csv, false, &out);
        assert_eq!((done.customers, done.marked), (2, 3));
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("seq,received_at,PartnerCustomerID,CustomerRewardNumber"));
        assert!(
            lines[1].starts_with("2,") && lines[1].contains("b@x.com"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("3,") && lines[2].contains("Milwaukee"),
            "{text}"
        );
        assert_eq!(lines.len(), 3);
        let again = export_to(&mut outbox, ExportFormat::Csv, false, &out);
        assert_eq!((again.customers, again.marked), (0, 0));
    }

    #[test]
    fn json_keeps_unknown_keys_in_raw_and_all_re_exports() {
        let (dir, mut outbox) =
            outbox_with(&[r#"{"PartnerCustomerID":"1","ProfilePhoto":"me.jpg"}"#]);
        let out = dir.path().join("updates.json");
        export_to(&mut outbox, ExportFormat::Json, false, &out);
        let again = export_to(&mut outbox, ExportFormat::Json, true, &out);
        assert_eq!(again.customers, 1);
        let rows: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(rows[0]["raw"]["ProfilePhoto"], "me.jpg");
        assert_eq!(rows[0]["customer"]["PartnerCustomerID"], "1");
        assert_eq!(rows[0]["customer"]["CustomerCity"], serde_json::Value::Null);
    }

    #[test]
    fn a_file_that_cannot_be_written_leaves_the_updates_pending() {
        let (dir, mut outbox) = outbox_with(&[r#"{"PartnerCustomerID":"1"}"#]);
        let out = dir.path().join("no-such-dir").join("updates.csv");
        let err = export(
            &mut outbox,
            ExportFormat::Csv,
            false,
            Some(&out),
            Timestamp::UNIX_EPOCH,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
        assert_eq!(outbox.counts().unwrap().pending, 1);
    }
}
