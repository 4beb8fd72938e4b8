//! The normalized customer row and the rules that make one (README "Input").
//!
//! A [`Customer`] can only be made by [`Normalizer::parse_into`], so every row that reaches the spool and
//! the wire has been through the same rules; nothing downstream checks a row again. Pure code: no IO.

use std::sync::Arc;

use jiff::civil::Date;

use crate::dates::{DateOrder, DateShape, parse_digits, split_date};
use crate::mapping::{MappingRules, Target};
use crate::warnings::{Issue, WarningCode};
use crate::wire::{FIELD_COUNT, Field, write_customer_row};

/// A customer row after normalization: 25 values, empty where nothing usable was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Customer {
    values: [String; FIELD_COUNT],
    /// The accounts-receivable number, where a CRM.COM sync reads one (empty otherwise).
    accounts_receivable: String,
    /// What the whole birth date said about its column's order, if the birth fields came from one.
    birth_note: Option<BirthNote>,
    /// The whole birth date as written (for messages about its column).
    birth_text: String,
    /// No value holds a `"` or a `\`, so the values go into JSON as they are (see
    /// [`RawCustomer::escape_free`]).
    escape_free: bool,
}

/// How the birth fields of a row came from a whole date, so that the order of its column, known
/// only once the whole export is read, can be applied ([`Customer::settle_birth_date`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BirthNote {
    pub shape: DateShape,
    /// The date's first and second parts (month and day when read month first).
    first: i8,
    second: i8,
    month_derived: bool,
    day_derived: bool,
    year_derived: bool,
}

impl Customer {
    pub fn get(&self, field: Field) -> &str {
        &self.values[field as usize]
    }

    pub fn values(&self) -> &[String; FIELD_COUNT] {
        &self.values
    }

    /// The accounts-receivable number (CRM.COM), if the export gave one.
    pub fn accounts_receivable(&self) -> Option<&str> {
        Some(self.accounts_receivable.as_str()).filter(|v| !v.is_empty())
    }

    /// Appends the row as the vendor's JSON object (every key present, values as strings).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write_customer_row(&self.values, self.escape_free, out);
    }

    /// Whether no value holds a `"` or a `\` (so none needs escaping in JSON).
    pub fn escape_free(&self) -> bool {
        self.escape_free
    }

    /// What the row's whole birth date said about its column, if the birth fields came from one.
    pub fn birth_note(&self) -> Option<BirthNote> {
        self.birth_note
    }

    /// The whole birth date as written.
    pub fn birth_text(&self) -> &str {
        &self.birth_text
    }

    /// Applies the column's order to a date that could be read either way: day first swaps the
    /// month and day it gave.
    pub fn settle_birth_date(&mut self, order: DateOrder) {
        let Some(note) = self.birth_note.filter(|n| n.shape == DateShape::Ambiguous) else {
            return;
        };
        let (month, day) = match order {
            DateOrder::Mdy => (note.first, note.second),
            DateOrder::Dmy => (note.second, note.first),
        };
        let mut text = itoa::Buffer::new();
        if note.month_derived {
            replace(
                &mut self.values[Field::BirthMonth as usize],
                text.format(month),
            );
        }
        if note.day_derived {
            replace(&mut self.values[Field::BirthDay as usize], text.format(day));
        }
    }

    /// Empties the fields a whole birth date gave, when its column's order makes it impossible;
    /// returns the issue to report.
    pub fn reject_birth_date(&mut self) -> Issue {
        if let Some(note) = self.birth_note {
            for (derived, field) in [
                (note.month_derived, Field::BirthMonth),
                (note.day_derived, Field::BirthDay),
                (note.year_derived, Field::BirthYear),
            ] {
                if derived {
                    self.values[field as usize].clear();
                }
            }
        }
        Issue {
            field: Field::BirthYear,
            code: WarningCode::InvalidBirthDate,
            value: self.birth_text.clone(),
        }
    }
}

/// The values of one input record, mapped to fields but not yet normalized.
#[derive(Clone, Debug, Default)]
pub struct RawCustomer<'a> {
    pub fields: [Option<&'a str>; FIELD_COUNT],
    /// A whole birth date, split into month, day and year where those are not given.
    pub birth_date: Option<&'a str>,
    /// A whole name, split into first and last where those are not given.
    pub full_name: Option<&'a str>,
    /// A CRM.COM accounts-receivable number (not one of the 25 fields).
    pub accounts_receivable: Option<&'a str>,
    /// Set by a reader that checked the whole record at once (see [`scan_record`]): no value
    /// holds a control character, so none needs cleaning.
    pub plain: bool,
    /// Set the same way: no value holds a `"` or a `\`, the only characters a cleaned value would
    /// have to escape in JSON.
    pub escape_free: bool,
}

impl<'a> RawCustomer<'a> {
    pub fn set(&mut self, field: Field, value: &'a str) {
        self.fields[field as usize] = Some(value);
    }

    /// Gives `target` this value unless an earlier column already gave it one that is not blank:
    /// the second column for a field fills the rows where the first is empty.
    pub fn fill(&mut self, target: Target, value: &'a str) {
        let slot = match target {
            Target::Field(f) => &mut self.fields[f as usize],
            Target::BirthDate => &mut self.birth_date,
            Target::FullName => &mut self.full_name,
            Target::AccountsReceivable => &mut self.accounts_receivable,
            Target::Ignore => return,
        };
        if slot.is_none_or(is_blank) {
            *slot = Some(value);
        }
    }

    fn given(&self, field: Field) -> Option<&'a str> {
        self.fields[field as usize].filter(|v| !is_blank(v))
    }
}

/// Whether a value is empty or only whitespace; decides from the first byte in the common case.
fn is_blank(value: &str) -> bool {
    match value.as_bytes().first() {
        None => true,
        Some(b) if b.is_ascii_graphic() => false,
        _ => value.trim().is_empty(),
    }
}

/// Applies the rules of README "Input". Holds the current year, which bounds birth and HOG expiry years, and the
/// store's mapping rules for derived fields and defaults.
#[derive(Clone, Debug)]
pub struct Normalizer {
    this_year: i32,
    rules: Arc<MappingRules>,
    /// No configured default holds a `"` or a `\` (derived values are digits or parts of the record).
    defaults_escape_free: bool,
}

impl Normalizer {
    /// A normalizer for rows read on `today` (injected so tests do not depend on the clock).
    pub fn new(today: Date) -> Self {
        Self::with_rules(today, Arc::default())
    }

    /// The same, with a store's configured mapping.
    pub fn with_rules(today: Date, rules: Arc<MappingRules>) -> Self {
        let defaults_escape_free = rules
            .defaults
            .iter()
            .all(|(_, value)| !value.contains(['"', '\\']));
        Self {
            this_year: i32::from(today.year()),
            rules,
            defaults_escape_free,
        }
    }

    /// Normalizes `raw` into `out` (reusing its buffers). Values that cannot be normalized are left empty
    /// and reported in `issues`; the caller decides whether that is fatal (`--strict`).
    pub fn parse_into(&self, raw: &RawCustomer, out: &mut Customer, issues: &mut Vec<Issue>) {
        let derived = Derived::from_raw(raw, &self.rules, issues);
        out.escape_free = raw.escape_free && self.defaults_escape_free;
        clean_text(
            raw.accounts_receivable.unwrap_or_default(),
            raw.plain,
            &mut out.accounts_receivable,
        );
        out.birth_note = derived.note(raw);
        out.birth_text.clear();
        if out.birth_note.is_some() {
            out.birth_text.push_str(raw.birth_date.unwrap_or_default());
        }
        for field in Field::ALL {
            let slot = &mut out.values[field as usize];
            slot.clear();
            // Derived values and defaults were not part of what the reader checked.
            let (value, plain) = match raw.given(field) {
                Some(value) => (Some(value), raw.plain),
                None => (
                    derived.get(field).or_else(|| self.default_for(field)),
                    false,
                ),
            };
            if let Some(value) = value {
                self.normalize_field(field, value, plain, slot, issues);
            }
        }
    }

    /// A convenience for tests and one-off callers.
    pub fn parse(&self, raw: &RawCustomer, issues: &mut Vec<Issue>) -> Customer {
        let mut out = Customer::default();
        self.parse_into(raw, &mut out, issues);
        out
    }

    fn default_for(&self, field: Field) -> Option<&str> {
        self.rules
            .defaults
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v.as_str())
    }

    fn normalize_field(
        &self,
        field: Field,
        value: &str,
        plain: bool,
        out: &mut String,
        issues: &mut Vec<Issue>,
    ) {
        clean_text(value, plain, out);
        let rule = match field {
            Field::MobilePhone | Field::HomePhone | Field::WorkPhone => phone(out),
            Field::Gender => gender(out),
            Field::IsLocalHogChapterMember => yes_no(out),
            Field::Email => email(out),
            Field::BirthMonth | Field::HogExpireMonth => month(out),
            Field::BirthDay | Field::HogExpireDate => {
                number_in(out, 1, 31, WarningCode::InvalidDay)
            }
            Field::BirthYear => number_in(out, 1900, self.this_year, WarningCode::InvalidYear),
            Field::HogExpireYear => {
                number_in(out, 1983, self.this_year + 10, WarningCode::InvalidYear)
            }
            Field::Country => {
                country(out);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(code) = rule {
            issues.push(Issue {
                field,
                code,
                value: std::mem::take(out),
            });
        }
    }
}

/// Fields derived from a whole birth date or a whole name, borrowed or on the stack (this runs for
/// every row of exports that have such columns).
#[derive(Default)]
struct Derived<'a> {
    birth: Option<[NumText; 3]>,
    /// The shape of a whole birth date read with the built-in formats, and its first two parts.
    shape: Option<(DateShape, i8, i8)>,
    names: Option<(&'a str, &'a str)>,
}

impl<'a> Derived<'a> {
    fn from_raw(raw: &RawCustomer<'a>, rules: &MappingRules, issues: &mut Vec<Issue>) -> Self {
        let mut derived = Derived::default();
        if let Some(date) = raw.birth_date.map(str::trim).filter(|d| !d.is_empty()) {
            let split = match &rules.birth_date_format {
                Some(format) => split_date_with(date, format),
                None => split_date(date).map(|d| {
                    derived.shape = Some((d.shape, d.month, d.day));
                    (d.month, d.day, d.year)
                }),
            };
            match split {
                Some((m, d, y)) => {
                    derived.birth = Some([
                        NumText::new(m.into()),
                        NumText::new(d.into()),
                        NumText::new(y),
                    ]);
                }
                None => issues.push(Issue {
                    field: Field::BirthYear,
                    code: WarningCode::InvalidBirthDate,
                    value: date.to_owned(),
                }),
            }
        }
        if let Some(name) = raw.full_name.filter(|n| !n.trim().is_empty()) {
            derived.names = Some(split_name(name, rules.last_name_first));
        }
        derived
    }

    /// How the birth fields came from a whole date read with the built-in formats.
    fn note(&self, raw: &RawCustomer) -> Option<BirthNote> {
        let (shape, first, second) = self.shape?;
        let derived = |field: Field| raw.given(field).is_none();
        Some(BirthNote {
            shape,
            first,
            second,
            month_derived: derived(Field::BirthMonth),
            day_derived: derived(Field::BirthDay),
            year_derived: derived(Field::BirthYear),
        })
    }

    fn get(&self, field: Field) -> Option<&str> {
        let birth = |i: usize| self.birth.as_ref().map(|b| b[i].as_str());
        match field {
            Field::BirthMonth => birth(0),
            Field::BirthDay => birth(1),
            Field::BirthYear => birth(2),
            Field::FirstName => self.names.map(|(first, _)| first),
            Field::LastName => self.names.map(|(_, last)| last),
            _ => None,
        }
        .filter(|v| !v.is_empty())
    }
}

/// A small number as text, without a heap allocation.
#[derive(Clone, Copy, Default)]
struct NumText {
    digits: [u8; 6],
    len: u8,
}

impl NumText {
    fn new(n: i16) -> Self {
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(n).as_bytes();
        let mut digits = [0; 6];
        digits[..text.len()].copy_from_slice(text);
        Self {
            digits,
            len: text.len() as u8,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).expect("itoa writes ASCII")
    }
}

/// Whether `bytes` may hold a control character: C0, DEL, or C1 (which UTF-8 writes after a 0xC2
/// byte). One pass without early exit, so that the compiler vectorizes it.
fn has_control_bytes(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |seen, &b| seen | control_byte(b))
}

/// A byte of a control character (C1 ones start with 0xC2), compared without branches.
fn control_byte(b: u8) -> bool {
    (b < 0x20) | (b == 0x7f) | (b == 0xc2)
}

/// What a whole record's bytes hold, for [`RawCustomer::plain`] and [`RawCustomer::escape_free`]:
/// readers run this once over a record instead of checking each value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordScan {
    pub plain: bool,
    pub escape_free: bool,
}

/// Scans a record's bytes in one pass without early exit (which the compiler vectorizes).
pub fn scan_record(bytes: &[u8]) -> RecordScan {
    let seen = bytes.iter().fold(0u8, |seen, &b| {
        seen | u8::from(control_byte(b)) | (u8::from((b == b'"') | (b == b'\\')) << 1)
    });
    RecordScan {
        plain: seen & 1 == 0,
        escape_free: seen & 2 == 0,
    }
}

/// The same for a JSON record's bytes, whose values were string literals, numbers or booleans. A string
/// literal cannot hold a raw byte below 0x20 (the parser refuses it), so bytes below 0x20 are whitespace
/// between tokens and say nothing; what matters is what an escape could hide: a `\` anywhere rules out
/// both, and a DEL or a C1 character (written raw) rules out `plain`. A raw `"` only delimits strings.
pub fn scan_json_record(bytes: &[u8]) -> RecordScan {
    let seen = bytes.iter().fold(0u8, |seen, &b| {
        seen | u8::from((b == 0x7f) | (b == 0xc2)) | (u8::from(b == b'\\') * 3)
    });
    RecordScan {
        plain: seen & 1 == 0,
        escape_free: seen & 2 == 0,
    }
}

/// Trims, turns line breaks and other control characters into spaces, and collapses the runs of spaces
/// that this makes (README "Input": internal line breaks become one space). `plain` says that the value is
/// known to hold no control character.
///
/// Inlined for the common case (a value without control characters is trimmed and copied): this runs
/// for every value of every row, and the call cost more than the copy.
#[inline]
fn clean_text(value: &str, plain: bool, out: &mut String) {
    out.clear();
    let value = trim(value);
    if plain || !has_control_bytes(value.as_bytes()) {
        out.push_str(value);
    } else {
        clean_controls(value, out);
    }
}

/// [`clean_text`] for a value that may hold control characters.
#[inline(never)]
fn clean_controls(value: &str, out: &mut String) {
    let mut pending_space = false;
    for c in value.chars() {
        if c.is_control() || (pending_space && c == ' ') {
            pending_space = true;
            continue;
        }
        if pending_space {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
        }
        out.push(c);
    }
    // Removing control characters can bare whitespace that the first trim did not see ("\0\u{a0}A").
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    let leading = out.len() - out.trim_start().len();
    out.drain(..leading);
}

/// `str::trim`, deciding from the end bytes in the common case (a value that starts and ends with a
/// visible ASCII character).
fn trim(value: &str) -> &str {
    match value.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => value,
        [only] if only.is_ascii_graphic() => value,
        _ => value.trim(),
    }
}

type Rule = Result<(), WarningCode>;

/// Phones keep their digits and a leading `+`; punctuation goes. Letters make the value invalid.
fn phone(value: &mut String) -> Rule {
    if value.is_empty() {
        return Ok(());
    }
    let plus = value.starts_with('+');
    let mut digits = 0;
    for b in value.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b' ' | b'-' | b'.' | b'(' | b')' | b'/' | b'+' => {}
            _ => return Err(WarningCode::InvalidPhone),
        }
    }
    if digits == 0 {
        return Err(WarningCode::InvalidPhone);
    }
    if digits == value.len() {
        return Ok(());
    }
    value.retain(|c| c.is_ascii_digit());
    if plus {
        value.insert(0, '+');
    }
    Ok(())
}

/// The code of the first word list that `value` is in, ignoring ASCII case (no allocation: this runs
/// for several fields of every row). Each code is in its own list, so a value already written as a
/// code (most are) is found by one exact comparison per code before the lists are searched.
fn code_of(value: &str, codes: &[(&'static str, &[&str])]) -> Option<&'static str> {
    if let Some((code, _)) = codes.iter().find(|(code, _)| *code == value) {
        return Some(code);
    }
    codes
        .iter()
        .find(|(_, words)| words.iter().any(|w| value.eq_ignore_ascii_case(w)))
        .map(|(code, _)| *code)
}

fn gender(value: &mut String) -> Rule {
    const CODES: &[(&str, &[&str])] = &[
        ("", &[""]),
        ("M", &["m", "male", "man"]),
        ("F", &["f", "female", "woman"]),
    ];
    let code = code_of(value, CODES).ok_or(WarningCode::InvalidGender)?;
    replace(value, code);
    Ok(())
}

fn yes_no(value: &mut String) -> Rule {
    const CODES: &[(&str, &[&str])] = &[
        ("", &[""]),
        ("Y", &["y", "yes", "true", "1"]),
        ("N", &["n", "no", "false", "0"]),
    ];
    let code = code_of(value, CODES).ok_or(WarningCode::InvalidYesNo)?;
    replace(value, code);
    Ok(())
}

/// Emails are lowercased; a value that is plainly not an address ("none", "n/a") is dropped.
fn email(value: &mut str) -> Rule {
    if value.is_empty() {
        return Ok(());
    }
    value.make_ascii_lowercase();
    let plausible = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !value.contains(char::is_whitespace)
        }
        None => false,
    };
    if plausible {
        Ok(())
    } else {
        Err(WarningCode::InvalidEmail)
    }
}

const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Months are 1-12, written without leading zeros; month names are accepted.
fn month(value: &mut String) -> Rule {
    let named = value.len() >= 3 && value.chars().all(|c| c.is_ascii_alphabetic() || c == '.');
    if named
        && let Some(index) = MONTH_NAMES
            .iter()
            .position(|m| value[..3].eq_ignore_ascii_case(m))
    {
        replace(value, itoa::Buffer::new().format(index + 1));
        return Ok(());
    }
    number_in(value, 1, 12, WarningCode::InvalidMonth)
}

/// Whole numbers in `lo..=hi`, written without leading zeros ("07" → "7"; "1985.0" → "1985").
fn number_in(value: &mut String, lo: i32, hi: i32, code: WarningCode) -> Rule {
    if value.is_empty() {
        return Ok(());
    }
    let digits = value.strip_suffix(".0").unwrap_or(value);
    match parse_digits(digits) {
        Some(n) if (lo..=hi).contains(&n) => {
            // Written as it should be already (most are, and every derived birth field): kept.
            if digits.len() < value.len() || digits.starts_with('0') {
                replace(value, itoa::Buffer::new().format(n));
            }
            Ok(())
        }
        _ => Err(code),
    }
}

/// Countries: the three the vendor names get their 3-letter codes; others are uppercased as given.
fn country(value: &mut String) {
    const CODES: &[(&str, &[&str])] = &[
        (
            "USA",
            &["us", "usa", "united states", "united states of america"],
        ),
        ("CAN", &["ca", "can", "canada"]),
        ("AUS", &["au", "aus", "australia"]),
    ];
    let code = if value.contains('.') {
        code_of(&value.replace('.', ""), CODES)
    } else {
        code_of(value, CODES)
    };
    match code {
        Some(code) => replace(value, code),
        None if value.is_ascii() => value.make_ascii_uppercase(),
        None => *value = value.to_uppercase(),
    }
}

fn replace(value: &mut String, with: &str) {
    value.clear();
    value.push_str(with);
}

/// Splits a date with a configured strftime-style format.
fn split_date_with(value: &str, format: &str) -> Option<(i8, i8, i16)> {
    let date = jiff::fmt::strtime::parse(format, value)
        .ok()?
        .to_date()
        .ok()?;
    Some((date.month(), date.day(), date.year()))
}

/// Splits a whole name: `Last, First` always; otherwise `First [Middle] Last`, or `Last First [Middle]`
/// when the store's export puts the last name first.
fn split_name(value: &str, last_name_first: bool) -> (&str, &str) {
    let value = value.trim();
    if let Some((last, first)) = value.split_once(',') {
        return (first.trim(), last.trim());
    }
    let split = if last_name_first {
        value
            .split_once(char::is_whitespace)
            .map(|(last, first)| (first, last))
    } else {
        value.rsplit_once(char::is_whitespace)
    };
    match split {
        Some((first, last)) => (first.trim(), last.trim()),
        None => (value, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_bared_by_removing_control_characters_is_trimmed_too() {
        let mut out = String::new();
        clean_text("\0\u{a0}A\u{a0}\u{1}", false, &mut out);
        assert_eq!(out, "A");
        clean_text("a\u{1}\n b", false, &mut out);
        assert_eq!(out, "a b");
    }

    fn norm() -> Normalizer {
        Normalizer::new(Date::new(2026, 11, 22).unwrap())
    }

    fn one(field: Field, value: &str) -> (String, Vec<Issue>) {
        let mut raw = RawCustomer::default();
        raw.set(field, value);
        let mut issues = Vec::new();
        let c = norm().parse(&raw, &mut issues);
        (c.get(field).to_owned(), issues)
    }

    fn ok(field: Field, value: &str) -> String {
        let (v, issues) = one(field, value);
        assert!(issues.is_empty(), "{value:?} gave {issues:?}");
        v
    }

    fn bad(field: Field, value: &str) -> WarningCode {
        let (v, issues) = one(field, value);
        assert_eq!(v, "", "{value:?} should be left empty");
        assert_eq!(issues.len(), 1, "{value:?}");
        issues[0].code
    }

    #[test]
    fn text_is_trimmed_and_line_breaks_collapse_to_one_space() {
        assert_eq!(
            ok(Field::Address, "  12 Main St \r\n Apt 4 "),
            "12 Main St Apt 4"
        );
        assert_eq!(ok(Field::City, "Oak\nCreek"), "Oak Creek");
        assert_eq!(ok(Field::City, "Oak\u{0}Creek"), "Oak Creek");
        assert_eq!(ok(Field::ClubName, "  VIP  "), "VIP");
    }

    #[test]
    fn phones_keep_digits_and_a_leading_plus() {
        assert_eq!(ok(Field::MobilePhone, "(414) 326-4100"), "4143264100");
        assert_eq!(ok(Field::HomePhone, "+1 414.326.4100"), "+14143264100");
        assert_eq!(ok(Field::WorkPhone, ""), "");
        assert_eq!(bad(Field::WorkPhone, "n/a"), WarningCode::InvalidPhone);
        assert_eq!(
            bad(Field::MobilePhone, "555-CALL"),
            WarningCode::InvalidPhone
        );
        assert_eq!(ok(Field::MobilePhone, "4143264100"), "4143264100");
        assert_eq!(ok(Field::MobilePhone, "414+326/4100"), "4143264100");
        for no_digits in ["+", "(-)", "４１４"] {
            assert_eq!(
                bad(Field::MobilePhone, no_digits),
                WarningCode::InvalidPhone,
                "{no_digits}"
            );
        }
    }

    #[test]
    fn primary_phone_type_is_only_trimmed() {
        assert_eq!(
            ok(Field::PrimaryPhoneType, " (414) 326-4100 "),
            "(414) 326-4100"
        );
    }

    #[test]
    fn genders_become_m_or_f() {
        for (v, want) in [
            ("Male", "M"),
            ("female", "F"),
            ("m", "M"),
            (" F ", "F"),
            ("", ""),
        ] {
            assert_eq!(ok(Field::Gender, v), want);
        }
        assert_eq!(bad(Field::Gender, "Unknown"), WarningCode::InvalidGender);
    }

    #[test]
    fn hog_chapter_membership_becomes_y_or_n() {
        for (v, want) in [
            ("yes", "Y"),
            ("No", "N"),
            ("true", "Y"),
            ("0", "N"),
            ("y", "Y"),
        ] {
            assert_eq!(ok(Field::IsLocalHogChapterMember, v), want);
        }
        assert_eq!(
            bad(Field::IsLocalHogChapterMember, "maybe"),
            WarningCode::InvalidYesNo
        );
    }

    #[test]
    fn emails_are_lowercased_and_non_addresses_dropped() {
        assert_eq!(
            ok(Field::Email, " John.Doe@Example.COM "),
            "john.doe@example.com"
        );
        assert_eq!(bad(Field::Email, "none"), WarningCode::InvalidEmail);
        assert_eq!(bad(Field::Email, "a@b"), WarningCode::InvalidEmail);
    }

    #[test]
    fn months_days_and_years_are_range_checked() {
        assert_eq!(ok(Field::BirthMonth, "07"), "7");
        assert_eq!(ok(Field::BirthMonth, "March"), "3");
        assert_eq!(ok(Field::BirthDay, "31"), "31");
        assert_eq!(ok(Field::BirthYear, "1955"), "1955");
        assert_eq!(ok(Field::BirthYear, "2026"), "2026");
        assert_eq!(ok(Field::HogExpireYear, "2036"), "2036");
        assert_eq!(bad(Field::BirthMonth, "13"), WarningCode::InvalidMonth);
        assert_eq!(bad(Field::BirthDay, "0"), WarningCode::InvalidDay);
        assert_eq!(bad(Field::BirthYear, "1899"), WarningCode::InvalidYear);
        assert_eq!(bad(Field::BirthYear, "2027"), WarningCode::InvalidYear);
        assert_eq!(bad(Field::BirthYear, "85"), WarningCode::InvalidYear);
        assert_eq!(bad(Field::HogExpireYear, "1982"), WarningCode::InvalidYear);
        assert_eq!(bad(Field::HogExpireYear, "2037"), WarningCode::InvalidYear);
    }

    #[test]
    fn countries_get_the_vendors_codes() {
        for (v, want) in [
            ("US", "USA"),
            ("United States", "USA"),
            ("u.s.a.", "USA"),
            ("ca", "CAN"),
            ("Canada", "CAN"),
            ("Australia", "AUS"),
            ("mex", "MEX"),
            ("", ""),
        ] {
            assert_eq!(ok(Field::Country, v), want, "{v}");
        }
    }

    #[test]
    fn a_birth_date_fills_the_three_birth_fields_unless_they_are_given() {
        let mut raw = RawCustomer {
            birth_date: Some("03/15/1980 12:00:00 AM"),
            ..Default::default()
        };
        let mut issues = Vec::new();
        let c = norm().parse(&raw, &mut issues);
        assert_eq!(
            (
                c.get(Field::BirthMonth),
                c.get(Field::BirthDay),
                c.get(Field::BirthYear)
            ),
            ("3", "15", "1980")
        );
        raw.set(Field::BirthYear, "1981");
        let c = norm().parse(&raw, &mut issues);
        assert_eq!(c.get(Field::BirthYear), "1981");
        assert!(issues.is_empty());
    }

    #[test]
    fn impossible_birth_dates_are_reported() {
        let raw = RawCustomer {
            birth_date: Some("02/30/1980"),
            ..Default::default()
        };
        let mut issues = Vec::new();
        norm().parse(&raw, &mut issues);
        assert_eq!(issues[0].code, WarningCode::InvalidBirthDate);
    }

    #[test]
    fn a_full_name_is_split_when_first_and_last_are_missing() {
        assert_eq!(split_name("Doe, John", false), ("John", "Doe"));
        assert_eq!(split_name("Mary Ann Smith", false), ("Mary Ann", "Smith"));
        assert_eq!(split_name("Smith Mary Ann", true), ("Mary Ann", "Smith"));
        assert_eq!(split_name("Cher", false), ("Cher", ""));
        let mut raw = RawCustomer {
            full_name: Some("Jane Roe"),
            ..Default::default()
        };
        raw.set(Field::FirstName, "Janet");
        let c = norm().parse(&raw, &mut Vec::new());
        assert_eq!(
            (c.get(Field::FirstName), c.get(Field::LastName)),
            ("Janet", "Roe")
        );
    }

    #[test]
    fn configured_formats_and_defaults_apply() {
        let rules = MappingRules {
            birth_date_format: Some("%d.%m.%Y".into()),
            defaults: vec![(Field::Country, "usa".into())],
            ..MappingRules::default()
        };
        let norm = Normalizer::with_rules(Date::new(2026, 11, 22).unwrap(), Arc::new(rules));
        let mut raw = RawCustomer {
            birth_date: Some("15.03.1980"),
            ..Default::default()
        };
        let c = norm.parse(&raw, &mut Vec::new());
        assert_eq!(
            (c.get(Field::BirthMonth), c.get(Field::BirthDay)),
            ("3", "15")
        );
        assert_eq!(c.get(Field::Country), "USA", "defaults are normalized too");
        raw.set(Field::Country, "Canada");
        assert_eq!(norm.parse(&raw, &mut Vec::new()).get(Field::Country), "CAN");
    }

    #[test]
    fn rows_serialize_with_all_25_keys_in_order() {
        let mut raw = RawCustomer::default();
        raw.set(Field::FirstName, "John");
        let c = norm().parse(&raw, &mut Vec::new());
        let mut out = Vec::new();
        c.write_json(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            r#"{"PartnerCustomerID":"","CustomerRewardNumber":"","CustomerFirstName":"John""#
        ));
        assert_eq!(text.matches("\":").count(), FIELD_COUNT);
    }

    #[test]
    fn a_record_scanned_free_of_quotes_is_copied_and_anything_else_is_escaped() {
        let scan = |text: &str| scan_record(text.as_bytes());
        assert_eq!(
            scan("Ann,1 Main St"),
            RecordScan {
                plain: true,
                escape_free: true
            }
        );
        assert!(!scan("2 \"Elm\" St").escape_free);
        assert!(!scan("C:\\x").escape_free);
        assert!(!scan("a\tb").plain && scan("a\tb").escape_free);
        let rules = MappingRules {
            defaults: vec![(Field::ClubName, "The \"Riders\"".into())],
            ..MappingRules::default()
        };
        let with_default =
            Normalizer::with_rules(Date::new(2026, 11, 22).unwrap(), Arc::new(rules));
        for (norm, address) in [(norm(), "2 \"Elm\" St"), (with_default, "1 Main St")] {
            let record = format!("{address}Ann");
            let scan = scan(&record);
            let mut raw = RawCustomer {
                plain: scan.plain,
                escape_free: scan.escape_free,
                ..RawCustomer::default()
            };
            raw.set(Field::Address, &record[..address.len()]);
            raw.set(Field::FirstName, &record[address.len()..]);
            let mut out = Vec::new();
            norm.parse(&raw, &mut Vec::new()).write_json(&mut out);
            let row: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(row["CustomerAddress"], address);
            assert_eq!(row["CustomerFirstName"], "Ann");
        }
    }
}
