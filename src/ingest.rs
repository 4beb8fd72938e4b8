//! Reading and validating a whole export (SPEC §2.1, §3): every record is mapped, normalized, counted and
//! handed to a sink (the spool for uploads, a tally for `validate`), with warnings counted by kind.
//! Synchronous; nothing here talks to the network.

use std::io;

use tracing::warn;

use crate::customer::{Customer, Normalizer};
use crate::protocol::Field;
use crate::repeats::IdLog;
use crate::source::{self, InputError, InputSpec, Location, SourceInfo};
use crate::warnings::{Issue, WarningCode, Warnings, shorten};

/// Where validated rows go.
pub trait RowSink {
    /// Takes one normalized row with the issues found in it. An IO error stops the reading.
    fn accept(&mut self, customer: &Customer, at: Location, issues: &[Issue]) -> io::Result<()>;

    /// Hears, once the whole export is read, of a record whose `PartnerCustomerID` repeats the one
    /// of the record at `first_line`.
    fn repeated_id(&mut self, _line: u64, _first_line: u64) -> io::Result<()> {
        Ok(())
    }
}

/// How to validate.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Refuse the input on the first value that cannot be normalized, or a repeated customer id.
    pub strict: bool,
    pub normalizer: Normalizer,
}

/// What a complete read found.
#[derive(Clone, Debug)]
pub struct Ingested {
    pub rows: u64,
    pub warnings: Warnings,
    pub source: SourceInfo,
}

/// Reads all of `spec`, normalizing each record and passing it to `sink`.
///
/// Fails on a structural error in the input, a strict-mode refusal, or an IO error of the sink.
pub fn ingest(
    spec: &InputSpec,
    options: IngestOptions,
    sink: &mut dyn RowSink,
) -> Result<Ingested, InputError> {
    let name = spec.display_name();
    let mut warnings = Warnings::default();
    let mut ids = IdLog::default();
    let io_error =
        |e: io::Error| InputError::new(&name, format!("cannot check for repeated ids: {e}"));
    let mut customer = Customer::default();
    let mut issues = Vec::new();
    let mut rows = 0u64;
    let source = source::read_rows(spec, &mut |raw, at| {
        issues.clear();
        options
            .normalizer
            .parse_into(raw, &mut customer, &mut issues);
        let id = customer.get(Field::PartnerCustomerId);
        if !id.is_empty() {
            ids.push(id, at.line).map_err(io_error)?;
        }
        if options.strict
            && let Some(issue) = issues.first()
        {
            return Err(strict_refusal(&name, at, issue));
        }
        for issue in &issues {
            warnings.add(issue.code, || format!("{at}: {}", issue.reason()));
        }
        rows += 1;
        sink.accept(&customer, at, &issues)
            .map_err(|e| InputError::new(&name, format!("cannot write the snapshot: {e}")))
    })?;
    ids.repeats(io_error, |line, first_line| {
        if options.strict {
            return Err(InputError::new(
                &name,
                format!("PartnerCustomerID repeats that of line {first_line} (--strict refuses repeated ids)"),
            )
            .at_line(line)
            .in_column(Field::PartnerCustomerId.name()));
        }
        warnings.add(WarningCode::DuplicateCustomerId, || {
            format!("line {line}: PartnerCustomerID repeats that of line {first_line}")
        });
        sink.repeated_id(line, first_line).map_err(io_error)
    })?;
    note_columns(&source, &mut warnings);
    Ok(Ingested {
        rows,
        warnings,
        source,
    })
}

fn strict_refusal(name: &str, at: Location, issue: &Issue) -> InputError {
    InputError::new(name, format!("{} (--strict refuses it)", issue.reason()))
        .at_line(at.line)
        .in_column(issue.field.name())
}

/// One warning listing every unknown column; shadowed columns are logged.
fn note_columns(source: &SourceInfo, warnings: &mut Warnings) {
    if !source.unknown_columns.is_empty() {
        let list = source.unknown_columns.join(", ");
        warn!(columns = %list, "ignoring columns that map to no customer field");
        warnings.add_many(
            WarningCode::UnknownColumns,
            source.unknown_columns.len() as u64,
            || shorten(&list),
        );
    }
    for (column, used) in &source.shadowed_columns {
        warn!(column = %column, used = %used, "ignoring a second column for the same field");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct Collect(Vec<(u64, String)>);
    impl RowSink for Collect {
        fn accept(&mut self, c: &Customer, at: Location, _: &[Issue]) -> io::Result<()> {
            self.0.push((at.line, c.get(Field::Email).to_owned()));
            Ok(())
        }
    }

    fn ingest_text(
        text: &[u8],
        strict: bool,
        sink: &mut dyn RowSink,
    ) -> Result<Ingested, InputError> {
        let mut file = tempfile::NamedTempFile::with_suffix(".csv").unwrap();
        file.write_all(text).unwrap();
        let spec = InputSpec {
            path: Some(file.path().to_owned()),
            format: source::Format::Csv,
            encoding: None,
            delimiter: None,
            rules: Default::default(),
        };
        let options = IngestOptions {
            strict,
            normalizer: Normalizer::new(jiff::civil::date(2026, 11, 22)),
        };
        ingest(&spec, options, sink)
    }

    fn run(text: &str, strict: bool) -> (Result<Ingested, InputError>, Vec<(u64, String)>) {
        let mut sink = Collect(Vec::new());
        let result = ingest_text(text.as_bytes(), strict, &mut sink);
        (result, sink.0)
    }

    #[test]
    fn counts_rows_and_warnings_by_kind() {
        let text = "ID,Email,Gender,Fax\n1,A@B.COM,Male,x\n2,none,Unknown,y\n1,c@d.ef,F,z\n";
        let (result, rows) = run(text, false);
        let got = result.unwrap();
        assert_eq!(got.rows, 3);
        assert_eq!(rows[0], (2, "a@b.com".to_owned()));
        assert_eq!(got.warnings.count(WarningCode::InvalidEmail), 1);
        assert_eq!(got.warnings.count(WarningCode::InvalidGender), 1);
        assert_eq!(got.warnings.count(WarningCode::DuplicateCustomerId), 1);
        assert_eq!(got.warnings.count(WarningCode::UnknownColumns), 1);
        let repeat = got
            .warnings
            .summaries()
            .into_iter()
            .find(|w| w.code == WarningCode::DuplicateCustomerId);
        assert_eq!(
            repeat.unwrap().example,
            "line 4: PartnerCustomerID repeats that of line 2"
        );
        let example = &got.warnings.summaries()[0].example;
        assert!(
            example.starts_with("line 3: CustomerGender \"Unknown\""),
            "{example}"
        );
    }

    #[test]
    fn a_quoted_line_break_in_a_csv_value_becomes_one_space() {
        struct Addresses(Vec<String>);
        impl RowSink for Addresses {
            fn accept(&mut self, c: &Customer, _: Location, _: &[Issue]) -> io::Result<()> {
                self.0.push(c.get(Field::Address).to_owned());
                Ok(())
            }
        }
        let mut sink = Addresses(Vec::new());
        ingest_text(
            b"ID,Address\n1,\"1 Main\r\nSt\"\n2,2 Elm St\n",
            false,
            &mut sink,
        )
        .unwrap();
        assert_eq!(sink.0, ["1 Main St", "2 Elm St"]);
    }

    #[test]
    fn strict_mode_refuses_the_first_bad_value_with_its_line_and_field() {
        let (result, _) = run("ID,Email\n1,a@b.com\n2,none\n", true);
        let err = result.unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.column.as_deref(), Some("CustomerEmail"));
    }

    #[test]
    fn strict_mode_refuses_duplicate_customer_ids() {
        let (result, _) = run("ID,Email\n1,a@b.com\n1,c@b.com\n", true);
        assert!(result.unwrap_err().message.contains("repeats"));
    }
}
