//! Whole dates in exports (a birth-date column) and the order of their day and month, decided over
//! the whole column, never value by value (README "Input"): `02/11/1980` is November 2 in a column
//! that also holds `25/12/1975`, and February 11 in one that holds `12/25/1975`. A column that never
//! shows its order is not guessed. Pure code: no IO.

use jiff::civil::Date;

use crate::source::quote;

/// Which part of a slashed date is the month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateOrder {
    /// Day first: `25/12/1980` (most of the world; always for dotted dates).
    Dmy,
    /// Month first: `12/25/1980` (the United States).
    Mdy,
}

impl DateOrder {
    /// Parses `dmy` or `mdy` (any case).
    pub fn from_name(name: &str) -> Option<DateOrder> {
        match name.trim().to_ascii_lowercase().as_str() {
            "dmy" => Some(DateOrder::Dmy),
            "mdy" => Some(DateOrder::Mdy),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DateOrder::Dmy => "dmy",
            DateOrder::Mdy => "mdy",
        }
    }
}

/// What one value says about its column's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateShape {
    /// `yyyy-mm-dd`: says nothing about the others.
    Iso,
    /// Day first for certain: dotted, or a first part above 12.
    DayFirst,
    /// Month first for certain: a second part above 12.
    MonthFirst,
    /// Both parts 12 or less: read month first until the column says otherwise.
    Ambiguous,
}

/// A whole date split into its parts, read month first where that is not yet known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitDate {
    pub month: i8,
    pub day: i8,
    pub year: i16,
    pub shape: DateShape,
}

/// Splits a whole date: `D.M.YYYY`, `A/B/YYYY` or `A-B-YYYY` (the order of A and B decided by the
/// column, see [`DateShape`]), `YYYY-MM-DD` or `YYYY/MM/DD`, each optionally followed by a time.
/// Impossible dates (`02/30/1980`, `31.02.1980`) and two-digit years give `None`.
pub fn split_date(value: &str) -> Option<SplitDate> {
    let date_part = value.split([' ', 'T']).next()?;
    let dotted = date_part.contains('.');
    // Exactly three parts, taken without collecting them (this runs for every row with a date).
    let mut parts = date_part.split(['/', '-', '.']);
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let num = |s: &str| -> Option<i16> {
        (s.len() <= 4)
            .then(|| parse_digits(s))
            .flatten()
            .and_then(|n| i16::try_from(n).ok())
    };
    let (year, month, day, shape) = if a.len() == 4 && !dotted {
        (num(a)?, num(b)?, num(c)?, DateShape::Iso)
    } else if c.len() == 4 {
        let (first, second) = (num(a)?, num(b)?);
        match (dotted, first > 12, second > 12) {
            (true, _, _) | (false, true, false) => (num(c)?, second, first, DateShape::DayFirst),
            (false, false, true) => (num(c)?, first, second, DateShape::MonthFirst),
            (false, false, false) => (num(c)?, first, second, DateShape::Ambiguous),
            (false, true, true) => return None,
        }
    } else {
        return None;
    };
    let date = Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()?;
    Some(SplitDate {
        month: date.month(),
        day: date.day(),
        year: date.year(),
        shape,
    })
}

/// The number that `text`, ASCII digits only, writes (`None` for anything else, or past `i32`).
pub(crate) fn parse_digits(text: &str) -> Option<i32> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0i32, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(i32::from(digit))
    })
}

/// What a date column has shown so far: the first value proving each order, and the values that
/// could be either.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DateEvidence {
    pub day_first: Option<(u64, String)>,
    pub month_first: Option<(u64, String)>,
    pub ambiguous: u64,
    pub ambiguous_examples: Vec<(u64, String)>,
}

/// How a column's order was settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No value needed an order (no dates, or only ISO ones, or every one proves itself).
    NotNeeded,
    /// The column's own values prove it.
    Proven(DateOrder),
    /// `date_order` in the config, or `--date-order`.
    Configured(DateOrder),
}

impl Decision {
    pub fn order(self) -> Option<DateOrder> {
        match self {
            Decision::NotNeeded => None,
            Decision::Proven(o) | Decision::Configured(o) => Some(o),
        }
    }

    /// For summaries: `dmy (proven by the values)`, `mdy (configured)`, `not needed`.
    pub fn describe(self) -> String {
        match self {
            Decision::NotNeeded => "not needed".to_owned(),
            Decision::Proven(o) => format!("{} (shown by the values)", o.name()),
            Decision::Configured(o) => format!("{} (configured)", o.name()),
        }
    }
}

impl DateEvidence {
    /// Notes one value of the column, read on `line`.
    pub fn note(&mut self, shape: DateShape, line: u64, text: &str) {
        let keep = || (line, quote(text.trim()).into_owned());
        match shape {
            DateShape::Iso => {}
            DateShape::DayFirst => {
                self.day_first.get_or_insert_with(keep);
            }
            DateShape::MonthFirst => {
                self.month_first.get_or_insert_with(keep);
            }
            DateShape::Ambiguous => {
                self.ambiguous += 1;
                if self.ambiguous_examples.len() < 2 {
                    self.ambiguous_examples.push(keep());
                }
            }
        }
    }

    /// The order the values shown so far prove, if they prove one.
    pub fn proven(&self) -> Option<DateOrder> {
        match (&self.day_first, &self.month_first) {
            (Some(_), None) => Some(DateOrder::Dmy),
            (None, Some(_)) => Some(DateOrder::Mdy),
            _ => None,
        }
    }

    /// The order for the whole column once every value has been seen.
    ///
    /// Fails, naming `column` and two of its values, when the values prove both orders, or when
    /// some value needs an order that neither the values nor `configured` give.
    pub fn decide(&self, column: &str, configured: Option<DateOrder>) -> Result<Decision, String> {
        if let Some(order) = configured {
            return Ok(Decision::Configured(order));
        }
        let fix = "set date_order = \"dmy\" or \"mdy\" for the store (in rrfeed.toml, or its \
                   [mapping]) or pass --date-order dmy|mdy";
        match (&self.day_first, &self.month_first) {
            (Some(d), Some(m)) => Err(format!(
                "the dates in column \"{}\" are day-first on line {} (\"{}\") but month-first on \
                 line {} (\"{}\"); {fix} (values that contradict it are then reported as invalid)",
                quote(column),
                d.0,
                d.1,
                m.0,
                m.1
            )),
            (Some(_), None) => Ok(Decision::Proven(DateOrder::Dmy)),
            (None, Some(_)) => Ok(Decision::Proven(DateOrder::Mdy)),
            (None, None) if self.ambiguous == 0 => Ok(Decision::NotNeeded),
            (None, None) => {
                let examples: Vec<String> = self
                    .ambiguous_examples
                    .iter()
                    .map(|(line, text)| format!("line {line}: \"{text}\""))
                    .collect();
                Err(format!(
                    "every date in column \"{}\" could be day-first or month-first ({}), so its \
                     order cannot be told; {fix}",
                    quote(column),
                    examples.join(", ")
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(value: &str) -> Option<(i8, i8, i16, DateShape)> {
        split_date(value).map(|d| (d.month, d.day, d.year, d.shape))
    }

    #[test]
    fn each_value_says_what_it_can_about_the_order() {
        use DateShape::*;
        assert_eq!(split("1980-02-29"), Some((2, 29, 1980, Iso)));
        assert_eq!(split("02.11.1980"), Some((11, 2, 1980, DayFirst)));
        assert_eq!(split("25/12/1980"), Some((12, 25, 1980, DayFirst)));
        assert_eq!(split("12/25/1980 00:00"), Some((12, 25, 1980, MonthFirst)));
        assert_eq!(split("02/11/1980"), Some((2, 11, 1980, Ambiguous)));
        assert_eq!(split("02/30/1980"), None);
        assert_eq!(split("31.02.1980"), None);
        assert_eq!(split("25/13/1980"), None);
        assert_eq!(split("15/03/80"), None);
    }

    #[test]
    fn an_undecided_column_is_refused_naming_two_values_and_the_setting() {
        let mut e = DateEvidence::default();
        e.note(DateShape::Ambiguous, 2, "02/11/1980");
        e.note(DateShape::Ambiguous, 3, "05/06/1975");
        e.note(DateShape::Iso, 4, "1980-01-30");
        let err = e.decide("DOB", None).unwrap_err();
        assert!(err.contains("\"DOB\""), "{err}");
        assert!(
            err.contains("line 2: \"02/11/1980\", line 3: \"05/06/1975\""),
            "{err}"
        );
        assert!(
            err.contains("date_order") && err.contains("--date-order"),
            "{err}"
        );
        assert_eq!(
            e.decide("DOB", Some(DateOrder::Dmy)),
            Ok(Decision::Configured(DateOrder::Dmy))
        );
    }

    #[test]
    fn a_column_proving_both_orders_is_refused() {
        let mut e = DateEvidence::default();
        e.note(DateShape::DayFirst, 7, "25/12/1980");
        assert_eq!(e.proven(), Some(DateOrder::Dmy));
        e.note(DateShape::MonthFirst, 9, "12/25/1980");
        assert_eq!(e.proven(), None);
        let err = e.decide("Birthday", None).unwrap_err();
        assert!(err.contains("line 7") && err.contains("line 9"), "{err}");
    }

    proptest! {
        /// Whatever the order a column was written in, the values read back are the dates written,
        /// or the column is refused; never a swapped date.
        #[test]
        fn a_column_is_read_right_or_refused_never_swapped(
            day_first in any::<bool>(),
            dates in prop::collection::vec((1i8..=12, 1i8..=28, 1900i16..2026), 1..40),
        ) {
            let written: Vec<String> = dates
                .iter()
                .map(|(m, d, y)| if day_first { format!("{d:02}/{m:02}/{y}") } else { format!("{m}/{d}/{y}") })
                .collect();
            let mut evidence = DateEvidence::default();
            let mut read = Vec::new();
            for (line, text) in written.iter().enumerate() {
                let split = split_date(text).expect("a real date");
                evidence.note(split.shape, line as u64, text);
                read.push(split);
            }
            if let Ok(decision) = evidence.decide("DOB", None) {
                for (split, (m, d, y)) in read.iter().zip(&dates) {
                    let (month, day) = match (split.shape, decision.order()) {
                        (DateShape::Ambiguous, Some(DateOrder::Dmy)) => (split.day, split.month),
                        (DateShape::Ambiguous, None) => unreachable!("an ambiguous value needs an order"),
                        _ => (split.month, split.day),
                    };
                    prop_assert_eq!((month, day, split.year), (*m, *d, *y));
                }
            }
        }
    }

    proptest! {
        #[test]
        fn digits_read_as_the_standard_parser_reads_them(text in "[0-9+\\- .a]{0,12}|[0-9]{8,12}") {
            let standard = text
                .parse::<i32>()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(parse_digits(&text), standard);
        }
    }
}
