//! `--changes FILE`: one CSV line per customer added, removed or changed since the last upload —
//! `change,PartnerCustomerID,fields` — in id order. Field names only: customer data stays out of the
//! file unless `--changes-values` adds a `values` column (the new values, as a JSON object).

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use super::log::Entry;
use crate::wire::Field;

/// The change report being written.
pub struct ChangeReport {
    out: csv::Writer<BufWriter<File>>,
    path: PathBuf,
    values: bool,
}

impl ChangeReport {
    /// Creates the file with its header line; `values` adds the values column.
    ///
    /// Fails when the file cannot be created.
    pub fn create(path: &Path, values: bool) -> io::Result<Self> {
        let file = File::create(path)?;
        let mut out = csv::Writer::from_writer(BufWriter::new(file));
        let mut header = vec!["change", "PartnerCustomerID", "fields"];
        if values {
            header.push("values");
        }
        out.write_record(&header)?;
        Ok(Self {
            out,
            path: path.to_owned(),
            values,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A customer the last upload did not have; with values, every non-empty one.
    pub(super) fn added(&mut self, entry: &Entry) -> io::Result<()> {
        let filled: Vec<Field> = Field::ALL
            .into_iter()
            .filter(|f| entry.value(*f).is_some_and(|v| !v.is_empty()))
            .collect();
        self.line("added", &entry.id, &[], Some((entry, &filled)))
    }

    /// A customer of the last upload that tonight's export lacks.
    pub(super) fn removed(&mut self, id: &[u8]) -> io::Result<()> {
        self.line("removed", id, &[], None)
    }

    /// A customer whose row differs from the last upload's, with the fields that differ.
    pub(super) fn changed(&mut self, entry: &Entry, fields: &[Field]) -> io::Result<()> {
        self.line("changed", &entry.id, fields, Some((entry, fields)))
    }

    fn line(
        &mut self,
        change: &str,
        id: &[u8],
        fields: &[Field],
        values: Option<(&Entry, &[Field])>,
    ) -> io::Result<()> {
        let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
        let mut record: Vec<String> = vec![
            change.to_owned(),
            String::from_utf8_lossy(id).into_owned(),
            names.join(";"),
        ];
        if self.values {
            let shown = values.map(|(entry, fields)| {
                let object: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|f| (f.name().to_owned(), entry.value(*f).unwrap_or("").into()))
                    .collect();
                serde_json::Value::Object(object).to_string()
            });
            record.push(shown.unwrap_or_default());
        }
        self.out.write_record(&record)?;
        Ok(())
    }

    /// Writes what is buffered.
    ///
    /// Fails when the file cannot be written.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
