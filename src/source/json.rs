//! JSON exports (an array of customer objects, or `{"rows": [...]}`) and NDJSON (one object per line).
//!
//! The array is streamed element by element through serde's visitor API, so a large file is never held in
//! memory whole. Values may be strings, numbers, booleans or null; an object or array where a value belongs
//! is a structural error.

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, Read};
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Encoding, Format, InputError, InputSpec, Location, SourceInfo, Visit, utf8_hint};
use crate::customer::RawCustomer;
use crate::mapping::{KeyMapper, Target};
use crate::protocol::FIELD_COUNT;

/// One record's values, reused from record to record.
#[derive(Default)]
struct RowBuf {
    values: [String; FIELD_COUNT],
    given: [bool; FIELD_COUNT],
    birth_date: Option<String>,
    full_name: Option<String>,
    accounts_receivable: Option<String>,
}

impl RowBuf {
    fn clear(&mut self) {
        self.given = [false; FIELD_COUNT];
        self.birth_date = None;
        self.full_name = None;
        self.accounts_receivable = None;
    }

    fn raw(&self) -> RawCustomer<'_> {
        let mut raw = RawCustomer::default();
        for (i, value) in self.values.iter().enumerate() {
            if self.given[i] {
                raw.fields[i] = Some(value);
            }
        }
        raw.birth_date = self.birth_date.as_deref();
        raw.full_name = self.full_name.as_deref();
        raw.accounts_receivable = self.accounts_receivable.as_deref();
        raw
    }
}

/// The state shared by the visitors of one input.
struct Rows<'a, 'v> {
    name: &'a str,
    visit: &'a mut Visit<'v>,
    mapper: KeyMapper,
    buf: RowBuf,
    records: u64,
    /// Newlines consumed so far (JSON), or the current line (NDJSON).
    line: Rc<Cell<u64>>,
    last_key: String,
    /// The callback's error, kept while serde unwinds.
    stopped: Option<InputError>,
}

impl Rows<'_, '_> {
    fn finish_record<E: de::Error>(&mut self, line: u64) -> Result<(), E> {
        self.records += 1;
        let at = Location {
            line,
            record: self.records,
        };
        (self.visit)(&self.buf.raw(), at).map_err(|e| {
            self.stopped = Some(e);
            E::custom("stopped")
        })
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            format: Format::Json,
            encoding: Encoding::Utf8,
            input_blake3: String::new(),
            unknown_columns: self.mapper.unknown(),
            shadowed_columns: Vec::new(),
        }
    }

    /// Turns a serde_json error into an input error, preferring the callback's own error.
    fn error(&mut self, e: serde_json::Error, line: Option<u64>, encoding: Encoding) -> InputError {
        if let Some(stopped) = self.stopped.take() {
            return stopped;
        }
        let text = e.to_string();
        let message = text
            .rfind(" at line ")
            .map_or(text.as_str(), |i| &text[..i]);
        let hint = if message.contains("unicode") || message.contains("UTF-8") {
            utf8_hint(encoding)
        } else {
            ""
        };
        let mut err = InputError::new(self.name, format!("malformed JSON: {message}{hint}"))
            .at_line(line.unwrap_or(e.line() as u64));
        if e.column() > 0 {
            let key = if self.last_key.is_empty() {
                String::new()
            } else {
                format!(" (near key {:?})", self.last_key)
            };
            err = err.in_column(format!("{}{key}", e.column()));
        }
        err
    }
}

/// Reads a JSON array of customers, or an object whose `rows` is one.
pub(super) fn read_json(
    reader: Box<dyn BufRead>,
    spec: &InputSpec,
    name: &str,
    visit: &mut Visit<'_>,
) -> Result<SourceInfo, InputError> {
    let line = Rc::new(Cell::new(0));
    let counting = CountLines {
        inner: reader,
        newlines: line.clone(),
    };
    let mut rows = new_rows(name, spec, visit, line);
    let mut de = serde_json::Deserializer::from_reader(counting);
    let parsed = TopSeed(&mut rows)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match parsed {
        Ok(()) => Ok(rows.info()),
        Err(e) => Err(rows.error(e, None, Encoding::Utf8)),
    }
}

/// Reads one customer object per line; blank lines are skipped.
pub(super) fn read_ndjson(
    mut reader: Box<dyn BufRead>,
    spec: &InputSpec,
    name: &str,
    encoding: Encoding,
    visit: &mut Visit<'_>,
) -> Result<SourceInfo, InputError> {
    let line = Rc::new(Cell::new(0));
    let mut rows = new_rows(name, spec, visit, line.clone());
    let mut buf = Vec::new();
    let mut lines_before = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| InputError::new(name, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        // The row visitor names a record's line as newlines before it + 1, as for JSON.
        line.set(lines_before);
        lines_before += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut de = serde_json::Deserializer::from_slice(&buf);
        let parsed = RowSeed(&mut rows)
            .deserialize(&mut de)
            .and_then(|()| de.end());
        if let Err(e) = parsed {
            return Err(rows.error(e, Some(lines_before), encoding));
        }
    }
    let mut info = rows.info();
    info.format = Format::Ndjson;
    Ok(info)
}

fn new_rows<'a, 'v>(
    name: &'a str,
    spec: &InputSpec,
    visit: &'a mut Visit<'v>,
    line: Rc<Cell<u64>>,
) -> Rows<'a, 'v> {
    Rows {
        name,
        visit,
        mapper: KeyMapper::new(spec.rules.clone()),
        buf: RowBuf::default(),
        records: 0,
        line,
        last_key: String::new(),
        stopped: None,
    }
}

/// Counts the newlines read through it, so records can be given a line.
struct CountLines {
    inner: Box<dyn BufRead>,
    newlines: Rc<Cell<u64>>,
}

impl Read for CountLines {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let lines = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        self.newlines.set(self.newlines.get() + lines);
        Ok(n)
    }
}

/// The document: an array of rows, or an object with a `rows` array.
struct TopSeed<'r, 'a, 'v>(&'r mut Rows<'a, 'v>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an array of customer objects, or {"rows": [...]}"#)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        RowsSeed(self.0).visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "rows" && !found {
                map.next_value_seed(RowsSeed(&mut *self.0))?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if found {
            Ok(())
        } else {
            Err(de::Error::custom(
                r#"the object has no "rows" array; expected an array of customers or {"rows": [...]}"#,
            ))
        }
    }
}

/// An array of rows.
struct RowsSeed<'r, 'a, 'v>(&'r mut Rows<'a, 'v>);

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of customer objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(RowSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// One customer object.
struct RowSeed<'r, 'a, 'v>(&'r mut Rows<'a, 'v>);

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a customer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let rows = self.0;
        let line = rows.line.get() + 1;
        rows.buf.clear();
        while let Some(target) = map.next_key_seed(KeySeed(rows))? {
            let buf = &mut rows.buf;
            let slot = match target {
                Target::Field(f) => {
                    buf.given[f as usize] = true;
                    &mut buf.values[f as usize]
                }
                Target::BirthDate => buf.birth_date.insert(String::new()),
                Target::FullName => buf.full_name.insert(String::new()),
                Target::AccountsReceivable => buf.accounts_receivable.insert(String::new()),
                Target::Ignore => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            slot.clear();
            map.next_value_seed(ScalarSeed(slot))?;
        }
        rows.last_key.clear();
        rows.finish_record(line)
    }
}

/// A key, resolved to its target without allocating.
struct KeySeed<'r, 'a, 'v>(&'r mut Rows<'a, 'v>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_, '_> {
    type Value = Target;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Target, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_, '_, '_> {
    type Value = Target;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Target, E> {
        self.0.last_key.clear();
        self.0.last_key.push_str(key);
        Ok(self.0.mapper.target(key))
    }
}

/// A value as text: strings as they are, numbers and booleans as written, null as empty.
struct ScalarSeed<'s>(&'s mut String);

impl<'de> DeserializeSeed<'de> for ScalarSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text, a number, true/false or null (not an object or array)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        use std::fmt::Write;
        write!(self.0, "{v}").expect("writing to a String cannot fail");
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Field;

    type Got = Vec<(Location, String, String)>;

    fn collect(
        text: &'static str,
        read: fn(&'static [u8], &mut Visit<'_>) -> Result<SourceInfo, InputError>,
    ) -> Result<Got, InputError> {
        let mut out = Vec::new();
        read(text.as_bytes(), &mut |raw, at| {
            let get = |f: Field| raw.fields[f as usize].unwrap_or("-").to_owned();
            out.push((at, get(Field::FirstName), get(Field::ZipOrPostalCode)));
            Ok(())
        })?;
        Ok(out)
    }

    fn spec(format: Format) -> InputSpec {
        InputSpec {
            path: None,
            format,
            encoding: None,
            delimiter: None,
            rules: Default::default(),
        }
    }

    fn json(text: &'static [u8], visit: &mut Visit<'_>) -> Result<SourceInfo, InputError> {
        read_json(Box::new(text), &spec(Format::Json), "t.json", visit)
    }

    fn ndjson(text: &'static [u8], visit: &mut Visit<'_>) -> Result<SourceInfo, InputError> {
        read_ndjson(
            Box::new(text),
            &spec(Format::Ndjson),
            "t.ndjson",
            Encoding::Utf8,
            visit,
        )
    }

    #[test]
    fn reads_an_array_with_numbers_and_nulls_as_text() {
        let got = collect(
            "[\n {\"First Name\": \"Ann\", \"Zip\": 53154},\n {\"firstname\": null, \"zip\": \"02134\"}\n]",
            json,
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].1.as_str(), got[0].2.as_str()), ("Ann", "53154"));
        assert_eq!(got[0].0, Location { line: 2, record: 1 });
        assert_eq!((got[1].1.as_str(), got[1].2.as_str()), ("", "02134"));
        assert_eq!(got[1].0.line, 3);
    }

    #[test]
    fn reads_the_rows_of_a_wrapping_object_and_lists_unknown_keys() {
        let mut unknown = Vec::new();
        let text = br#"{"exported": "2026-11-01", "rows": [{"First Name": "Ann", "Fax": "1"}]}"#;
        let info = json(text, &mut |_, _| Ok(())).unwrap();
        unknown.extend(info.unknown_columns);
        assert_eq!(unknown, vec!["Fax".to_owned()]);
        let err = json(br#"{"customers": []}"#, &mut |_, _| Ok(())).unwrap_err();
        assert!(err.message.contains("\"rows\""), "{err}");
    }

    #[test]
    fn a_nested_value_is_a_structural_error_with_its_key() {
        let err = collect(
            "[{\"First Name\": \"Ann\",\n \"Zip\": {\"code\": 1}}]",
            json,
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.column.unwrap().contains("Zip"));
    }

    #[test]
    fn ndjson_names_the_line_of_a_broken_record() {
        let got = collect(
            "{\"First Name\":\"Ann\"}\n\n{\"First Name\":\"Bob\"}\n",
            ndjson,
        )
        .unwrap();
        assert_eq!(got[1].0, Location { line: 3, record: 2 });
        let err = collect(
            "{\"First Name\":\"Ann\"}\n{\"First Name\":\"Bob\"\n",
            ndjson,
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.starts_with("malformed JSON"), "{err}");
    }

    #[test]
    fn a_callback_error_stops_reading_and_is_returned_as_is() {
        let err = json(
            br#"[{"First Name": "Ann"}, {"First Name": "Bob"}]"#,
            &mut |_, at| {
                if at.record == 2 {
                    Err(InputError::new("t.json", "refused"))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert_eq!(err.message, "refused");
    }
}
