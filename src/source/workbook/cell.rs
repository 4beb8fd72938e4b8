//! One workbook cell as text: what a customer field receives from a typed cell. Numbers lose the `.0`
//! and exponent a spreadsheet shows (`53154`, `4143264100`); dates become `YYYY-MM-DD`, which says its
//! order of day and month itself; error cells are empty (and reported by the caller).

use std::fmt::Write;

use calamine::{CellErrorType, Data, DataRef, ExcelDateTime};

/// What kind of value a cell held, for the checks that depend on it (totals rows, ZIP codes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    Empty,
    Text,
    Number,
    Date,
    Bool,
    Error,
}

/// A cell's value, borrowed from whichever reader produced it.
pub enum Value<'a> {
    Empty,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(ExcelDateTime),
    /// OpenDocument: `YYYY-MM-DD`, maybe followed by `T` and a time.
    DateIso(&'a str),
    Error(&'a CellErrorType),
}

impl<'a> From<&'a DataRef<'a>> for Value<'a> {
    fn from(data: &'a DataRef<'a>) -> Self {
        match data {
            DataRef::Empty => Value::Empty,
            DataRef::SharedString(s) => Value::Text(s),
            DataRef::String(s) | DataRef::DurationIso(s) => Value::Text(s),
            DataRef::DateTimeIso(s) => Value::DateIso(s),
            DataRef::Int(i) => Value::Int(*i),
            DataRef::Float(f) => Value::Float(*f),
            DataRef::Bool(b) => Value::Bool(*b),
            DataRef::DateTime(d) => Value::Date(*d),
            DataRef::Error(e) => Value::Error(e),
        }
    }
}

impl<'a> From<&'a Data> for Value<'a> {
    fn from(data: &'a Data) -> Self {
        match data {
            Data::Empty => Value::Empty,
            Data::String(s) | Data::DurationIso(s) => Value::Text(s),
            Data::DateTimeIso(s) => Value::DateIso(s),
            Data::Int(i) => Value::Int(*i),
            Data::Float(f) => Value::Float(*f),
            Data::Bool(b) => Value::Bool(*b),
            Data::DateTime(d) => Value::Date(*d),
            Data::Error(e) => Value::Error(e),
        }
    }
}

/// Writes the cell's text into `out` (which the caller has cleared) and says what kind it was; an
/// error cell writes nothing.
pub fn write_text(value: &Value<'_>, out: &mut String) -> Kind {
    match value {
        Value::Empty => Kind::Empty,
        Value::Text(s) => {
            out.push_str(s);
            if s.trim().is_empty() {
                Kind::Empty
            } else {
                Kind::Text
            }
        }
        Value::Int(i) => {
            out.push_str(itoa::Buffer::new().format(*i));
            Kind::Number
        }
        Value::Float(f) => {
            write_number(*f, out);
            Kind::Number
        }
        Value::Bool(b) => {
            out.push_str(if *b { "true" } else { "false" });
            Kind::Bool
        }
        Value::Date(d) if d.is_duration() => {
            write_number(d.as_f64(), out);
            Kind::Number
        }
        Value::Date(d) => {
            write_date(d, out);
            Kind::Date
        }
        Value::DateIso(s) => {
            out.push_str(s.split_once('T').map_or(*s, |(date, _)| date));
            Kind::Date
        }
        Value::Error(_) => Kind::Error,
    }
}

/// A number as a person reads it in the cell: whole numbers without `.0` or exponent, others in the
/// shortest form that reads back the same (Rust never writes an exponent for `f64`).
fn write_number(f: f64, out: &mut String) {
    // Below 2^53 every whole f64 is exact as an i64.
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        out.push_str(itoa::Buffer::new().format(f as i64));
    } else {
        let _ = write!(out, "{f}");
    }
}

/// A date cell as `YYYY-MM-DD`, whichever date system (1900 or 1904) the workbook uses; a time of day
/// alone (a serial below 1) as `HH:MM:SS`, which no date field takes.
fn write_date(d: &ExcelDateTime, out: &mut String) {
    let (year, month, day, hour, minute, second, _) = d.to_ymd_hms_milli();
    if d.as_f64() < 1.0 {
        let _ = write!(out, "{hour:02}:{minute:02}:{second:02}");
    } else {
        let _ = write!(out, "{year:04}-{month:02}-{day:02}");
    }
}

/// The column's letters: 0 is `A`, 25 `Z`, 26 `AA`.
pub fn column_letters(column: u32) -> String {
    let mut letters = Vec::new();
    let mut n = u64::from(column) + 1;
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        letters.push(b'A' + rem);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

/// A cell as Excel writes a reference to it: `Customers!D17`, `'Store 12'!D17` (0-based row and column).
pub fn reference(sheet: &str, row: u32, column: u32) -> String {
    let plain = sheet.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !sheet.starts_with(|c: char| c.is_ascii_digit());
    let letters = column_letters(column);
    let row = u64::from(row) + 1;
    if plain {
        format!("{sheet}!{letters}{row}")
    } else {
        format!("'{}'!{letters}{row}", sheet.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::ExcelDateTimeType;

    fn text(value: Value<'_>) -> (String, Kind) {
        let mut out = String::new();
        let kind = write_text(&value, &mut out);
        (out, kind)
    }

    #[test]
    fn numbers_read_as_they_show() {
        assert_eq!(text(Value::Float(53154.0)).0, "53154");
        assert_eq!(text(Value::Float(4_143_264_100.0)).0, "4143264100");
        assert_eq!(text(Value::Float(1e20)).0, "100000000000000000000");
        assert_eq!(text(Value::Float(12.5)).0, "12.5");
        assert_eq!(text(Value::Float(-3.0)).0, "-3");
        assert_eq!(text(Value::Int(501)), ("501".into(), Kind::Number));
    }

    #[test]
    fn dates_in_both_systems() {
        let date = |serial, is_1904| {
            Value::Date(ExcelDateTime::new(
                serial,
                ExcelDateTimeType::DateTime,
                is_1904,
            ))
        };
        // 1985-03-07 is 31113 in the 1900 system and 29651 in the 1904 system.
        assert_eq!(
            text(date(31113.0, false)),
            ("1985-03-07".into(), Kind::Date)
        );
        assert_eq!(text(date(29651.0, true)), ("1985-03-07".into(), Kind::Date));
        // A date with a time of day keeps the date.
        assert_eq!(text(date(31113.75, false)).0, "1985-03-07");
        // Excel's day that never was stays impossible, so the date check refuses it.
        assert_eq!(text(date(60.0, false)).0, "1900-02-29");
        assert_eq!(text(date(0.5, false)).0, "12:00:00");
        assert_eq!(text(Value::DateIso("1985-03-07T00:00:00")).0, "1985-03-07");
    }

    #[test]
    fn blank_text_and_errors_are_empty() {
        assert_eq!(text(Value::Text("  ")).1, Kind::Empty);
        assert_eq!(
            text(Value::Error(&CellErrorType::NA)),
            (String::new(), Kind::Error)
        );
        assert_eq!(text(Value::Bool(true)).0, "true");
    }

    #[test]
    fn references() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
        assert_eq!(reference("Customers", 16, 3), "Customers!D17");
        assert_eq!(reference("Store 12", 0, 0), "'Store 12'!A1");
        assert_eq!(reference("Bob's", 0, 1), "'Bob''s'!B1");
    }
}
