//! The rejects file: one CSV line per value that had to be dropped (`line,record,field,value,reason`),
//! written by `validate --rejects` and `upload --rejects` so the dealer system's people can fix them.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::customer::Customer;
use crate::ingest::RowSink;
use crate::source::Location;
use crate::warnings::Issue;
use crate::wire::Field;

/// Writes rejected values, and counts them.
pub struct Rejects {
    out: Option<csv::Writer<File>>,
    values: u64,
}

impl Rejects {
    /// Counts rejected values without writing them.
    pub fn count_only() -> Self {
        Self {
            out: None,
            values: 0,
        }
    }

    /// Creates the file at `path` with its header line.
    ///
    /// Fails when the file cannot be created or written.
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut out = csv::Writer::from_path(path)?;
        out.write_record(["line", "record", "field", "value", "reason"])?;
        Ok(Self {
            out: Some(out),
            values: 0,
        })
    }

    /// How many values were rejected.
    pub fn values(&self) -> u64 {
        self.values
    }

    /// Writes what is buffered. Fails when the file cannot be written.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl RowSink for Rejects {
    fn accept(&mut self, _: &Customer, at: Location, issues: &[Issue]) -> io::Result<()> {
        self.values += issues.len() as u64;
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        for issue in issues {
            out.write_record([
                at.line.to_string().as_str(),
                at.record.to_string().as_str(),
                issue.field.name(),
                issue.value.as_str(),
                issue.reason().as_str(),
            ])?;
        }
        Ok(())
    }

    fn repeated_id(&mut self, line: u64, first_line: u64, id: &str) -> io::Result<()> {
        self.values += 1;
        if let Some(out) = &mut self.out {
            out.write_record([
                line.to_string().as_str(),
                "",
                Field::PartnerCustomerId.name(),
                id,
                format!("repeats the PartnerCustomerID of line {first_line}").as_str(),
            ])?;
        }
        Ok(())
    }
}
