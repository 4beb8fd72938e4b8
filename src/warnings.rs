//! Counted warnings about the input: what was changed or dropped while normalizing, tallied by kind with
//! one example each, so a summary can say "312 invalid phones, e.g. line 17 …" instead of 312 log lines.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::wire::Field;

/// The kinds of warning, as shown in summaries (`code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningCode {
    InvalidPhone,
    InvalidGender,
    InvalidYesNo,
    InvalidEmail,
    InvalidMonth,
    InvalidDay,
    InvalidYear,
    InvalidBirthDate,
    DuplicateCustomerId,
    UnknownColumns,
    BlankRow,
    DuplicateColumns,
    /// CRM.COM holds another name for a participant (names are set only when it is created).
    CrmNameDiffers,
    /// Workbooks: a cell holding an error (`#N/A`, `#REF!`), read as empty.
    ErrorCell,
    /// Workbooks: a ZIP code stored as a number, too short for a US ZIP (its leading zero is gone).
    ZipLostLeadingZero,
    /// Workbooks: a row with no customer id and only numbers (a totals row), skipped.
    TotalsRow,
    /// Workbooks: a row above the header that names no field (a title, a report date), skipped.
    TitleRow,
    /// Workbooks: a header split over two rows (merged cells above the column names).
    TwoRowHeader,
    /// Workbooks: a hidden worksheet passed over when choosing the first one.
    HiddenSheet,
}

impl WarningCode {
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::InvalidPhone => "invalid-phone",
            WarningCode::InvalidGender => "invalid-gender",
            WarningCode::InvalidYesNo => "invalid-yes-no",
            WarningCode::InvalidEmail => "invalid-email",
            WarningCode::InvalidMonth => "invalid-month",
            WarningCode::InvalidDay => "invalid-day",
            WarningCode::InvalidYear => "invalid-year",
            WarningCode::InvalidBirthDate => "invalid-birth-date",
            WarningCode::DuplicateCustomerId => "duplicate-customer-id",
            WarningCode::UnknownColumns => "unknown-columns",
            WarningCode::BlankRow => "blank-row",
            WarningCode::DuplicateColumns => "duplicate-columns",
            WarningCode::CrmNameDiffers => "crm-name-differs",
            WarningCode::ErrorCell => "error-cell",
            WarningCode::ZipLostLeadingZero => "zip-lost-leading-zero",
            WarningCode::TotalsRow => "totals-row",
            WarningCode::TitleRow => "title-row",
            WarningCode::TwoRowHeader => "two-row-header",
            WarningCode::HiddenSheet => "hidden-sheet",
        }
    }

    /// Whether `--strict` refuses the run for this warning (unknown columns, blank rows, a second
    /// column for a field, and the rows and sheets a workbook reader skips lose no customer data).
    pub fn fails_strict(self) -> bool {
        !matches!(
            self,
            WarningCode::UnknownColumns
                | WarningCode::BlankRow
                | WarningCode::DuplicateColumns
                | WarningCode::CrmNameDiffers
                | WarningCode::TotalsRow
                | WarningCode::TitleRow
                | WarningCode::TwoRowHeader
                | WarningCode::HiddenSheet
        )
    }
}

/// A value that could not be normalized and was left empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub field: Field,
    pub code: WarningCode,
    pub value: String,
}

impl Issue {
    /// The reason as a sentence, e.g. `CustomerGender "Unknown" is not a gender; left empty`.
    pub fn reason(&self) -> String {
        let what = match self.code {
            WarningCode::InvalidPhone => "is not a phone number",
            WarningCode::InvalidGender => "is not a gender (M/F)",
            WarningCode::InvalidYesNo => "is not yes or no",
            WarningCode::InvalidEmail => "is not an email address",
            WarningCode::InvalidMonth => "is not a month (1-12)",
            WarningCode::InvalidDay => "is not a day of the month (1-31)",
            WarningCode::InvalidYear => "is not a year in the allowed range",
            WarningCode::InvalidBirthDate => "is not a date",
            WarningCode::DuplicateCustomerId => "repeats an earlier row's customer id",
            WarningCode::UnknownColumns => "is not a known column",
            WarningCode::BlankRow => "has no value in any column",
            WarningCode::DuplicateColumns => "maps to a field another column also gives",
            WarningCode::CrmNameDiffers => "differs from the name CRM.COM holds",
            WarningCode::ErrorCell => "is an error cell; left empty",
            WarningCode::ZipLostLeadingZero => "was stored as a number and lost its leading zero",
            WarningCode::TotalsRow => "is a totals row; skipped",
            WarningCode::TitleRow => "is a title above the header; skipped",
            WarningCode::TwoRowHeader => "continues the header row",
            WarningCode::HiddenSheet => "is a hidden sheet; passed over",
        };
        format!("{} {:?} {what}", self.field, shorten(&self.value))
    }
}

/// One line of a summary's warnings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WarningSummary {
    pub code: WarningCode,
    pub count: u64,
    pub example: String,
}

/// The tally of warnings of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warnings {
    by_code: BTreeMap<WarningCode, (u64, String)>,
}

impl Warnings {
    /// Counts one warning; the first of each kind is kept as the example.
    pub fn add(&mut self, code: WarningCode, example: impl FnOnce() -> String) {
        self.add_many(code, 1, example);
    }

    pub fn add_many(&mut self, code: WarningCode, count: u64, example: impl FnOnce() -> String) {
        self.by_code
            .entry(code)
            .and_modify(|(n, _)| *n += count)
            .or_insert_with(|| (count, example()));
    }

    /// Adds every count of `other`, keeping this tally's examples where it has one.
    pub fn merge(&mut self, other: &Warnings) {
        for (code, (count, example)) in &other.by_code {
            self.add_many(*code, *count, || example.clone());
        }
    }

    pub fn count(&self, code: WarningCode) -> u64 {
        self.by_code.get(&code).map_or(0, |(n, _)| *n)
    }

    pub fn total(&self) -> u64 {
        self.by_code.values().map(|(n, _)| n).sum()
    }

    /// The first kind that `--strict` refuses, if any.
    pub fn first_strict_failure(&self) -> Option<WarningSummary> {
        self.summaries().into_iter().find(|w| w.code.fails_strict())
    }

    pub fn summaries(&self) -> Vec<WarningSummary> {
        self.by_code
            .iter()
            .map(|(code, (count, example))| WarningSummary {
                code: *code,
                count: *count,
                example: example.clone(),
            })
            .collect()
    }
}

/// Cuts a value shown in a message to 60 characters.
pub fn shorten(value: &str) -> String {
    if value.chars().count() <= 60 {
        value.to_owned()
    } else {
        value.chars().take(57).chain("...".chars()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_example_and_counts_the_rest() {
        let mut w = Warnings::default();
        w.add(WarningCode::InvalidPhone, || "line 2".into());
        w.add(WarningCode::InvalidPhone, || "line 9".into());
        w.add_many(WarningCode::UnknownColumns, 3, || {
            "Notes, Fax, Pager".into()
        });
        assert_eq!(w.count(WarningCode::InvalidPhone), 2);
        assert_eq!(w.total(), 5);
        let s = w.summaries();
        assert_eq!(s[0].example, "line 2");
        assert_eq!(
            w.first_strict_failure().map(|s| s.code),
            Some(WarningCode::InvalidPhone)
        );
    }

    #[test]
    fn unknown_columns_alone_do_not_fail_strict_runs() {
        let mut w = Warnings::default();
        w.add(WarningCode::UnknownColumns, || "Fax".into());
        assert_eq!(w.first_strict_failure(), None);
    }
}
