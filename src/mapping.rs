//! From an export's column names to the 25 customer fields (README "Input").
//!
//! A header maps when it equals a field name with case, spaces, `_` and `-` ignored, with or without the
//! `Customer` prefix, or when it is one of the built-in aliases below (listed in README). An exact name
//! beats an alias; of two columns of equal standing the first wins. The losing column is not dropped:
//! it fills the rows where the winner is empty, and the pairing is reported. A config `[mapping]`
//! ([`MappingRules`]) beats both. Pure code: no IO.

use std::collections::HashMap;

use crate::dates::DateOrder;
use crate::wire::Field;

/// Where one column's values go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Field(Field),
    /// A whole birth date, split into month, day and year.
    BirthDate,
    /// A whole name, split into first and last.
    FullName,
    /// The accounts-receivable number of a CRM.COM sync (a configured column, not a customer field).
    AccountsReceivable,
    Ignore,
}

/// Built-in aliases, by normalized header key. README's table is made from this list.
pub const ALIASES: &[(&str, Target)] = &[
    ("id", Target::Field(Field::PartnerCustomerId)),
    ("customerid", Target::Field(Field::PartnerCustomerId)),
    ("customernumber", Target::Field(Field::PartnerCustomerId)),
    ("customerno", Target::Field(Field::PartnerCustomerId)),
    ("custid", Target::Field(Field::PartnerCustomerId)),
    ("custno", Target::Field(Field::PartnerCustomerId)),
    ("rewardnumber", Target::Field(Field::RewardNumber)),
    ("rewardsnumber", Target::Field(Field::RewardNumber)),
    ("first", Target::Field(Field::FirstName)),
    ("fname", Target::Field(Field::FirstName)),
    ("givenname", Target::Field(Field::FirstName)),
    ("last", Target::Field(Field::LastName)),
    ("lname", Target::Field(Field::LastName)),
    ("surname", Target::Field(Field::LastName)),
    ("familyname", Target::Field(Field::LastName)),
    ("address1", Target::Field(Field::Address)),
    ("addressline1", Target::Field(Field::Address)),
    ("street", Target::Field(Field::Address)),
    ("streetaddress", Target::Field(Field::Address)),
    ("town", Target::Field(Field::City)),
    ("state", Target::Field(Field::StateProvince)),
    ("province", Target::Field(Field::StateProvince)),
    ("zip", Target::Field(Field::ZipOrPostalCode)),
    ("zipcode", Target::Field(Field::ZipOrPostalCode)),
    ("postalcode", Target::Field(Field::ZipOrPostalCode)),
    ("postcode", Target::Field(Field::ZipOrPostalCode)),
    ("countrycode", Target::Field(Field::Country)),
    ("phonetype", Target::Field(Field::PrimaryPhoneType)),
    ("mobile", Target::Field(Field::MobilePhone)),
    ("mobilenumber", Target::Field(Field::MobilePhone)),
    ("cell", Target::Field(Field::MobilePhone)),
    ("cellphone", Target::Field(Field::MobilePhone)),
    ("phone", Target::Field(Field::HomePhone)),
    ("home", Target::Field(Field::HomePhone)),
    ("telephone", Target::Field(Field::HomePhone)),
    ("work", Target::Field(Field::WorkPhone)),
    ("businessphone", Target::Field(Field::WorkPhone)),
    ("officephone", Target::Field(Field::WorkPhone)),
    ("club", Target::Field(Field::ClubName)),
    ("sex", Target::Field(Field::Gender)),
    ("emailaddress", Target::Field(Field::Email)),
    ("hognumber", Target::Field(Field::HogNumber)),
    ("hogexpiremonth", Target::Field(Field::HogExpireMonth)),
    ("hogexpiredate", Target::Field(Field::HogExpireDate)),
    ("hogexpireday", Target::Field(Field::HogExpireDate)),
    ("hogexpireyear", Target::Field(Field::HogExpireYear)),
    (
        "localhogchaptermember",
        Target::Field(Field::IsLocalHogChapterMember),
    ),
    (
        "localhogmember",
        Target::Field(Field::IsLocalHogChapterMember),
    ),
    (
        "hogchaptermember",
        Target::Field(Field::IsLocalHogChapterMember),
    ),
    ("birthdate", Target::BirthDate),
    ("dateofbirth", Target::BirthDate),
    ("dob", Target::BirthDate),
    // "Birthday" in exports is nearly always the whole date, not CustomerBirthDay's day of month.
    ("birthday", Target::BirthDate),
    ("name", Target::FullName),
    ("fullname", Target::FullName),
    ("customername", Target::FullName),
];

/// A header with case, spaces, `_` and `-` removed: `"E-mail Address"` → `"emailaddress"`.
pub fn header_key(header: &str) -> String {
    header
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '\u{feff}'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A store's mapping from its config: column renames, derived fields and constant defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MappingRules {
    /// Header key (see [`header_key`]) → target; beats names and aliases.
    pub columns: HashMap<String, Target>,
    /// A strftime-style format for the birth-date column, instead of the built-in ones.
    pub birth_date_format: Option<String>,
    /// Whole names are written last name first ("Doe John").
    pub last_name_first: bool,
    /// Values for fields the export leaves empty.
    pub defaults: Vec<(Field, String)>,
    /// The order of day and month in whole dates whose column does not show it.
    pub date_order: Option<DateOrder>,
    /// The export has no `PartnerCustomerID` column, on purpose.
    pub allow_missing_id: bool,
}

impl MappingRules {
    /// The same rules, reading `column` as the accounts-receivable number (CRM.COM, docs/crm.md).
    pub fn with_accounts_receivable(mut self, column: &str) -> Self {
        self.columns
            .insert(header_key(column), Target::AccountsReceivable);
        self
    }
}

/// A field by its wire name, ignoring case.
pub fn field_named(name: &str) -> Option<Field> {
    Field::ALL
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
}

pub fn unknown_field(name: &str) -> String {
    format!("{name:?} is not one of the 25 field names (e.g. CustomerEmail) nor \"ignore\"")
}

/// How strongly a header claims its target: configured beats exact names, which beat aliases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    Alias,
    Exact,
    Configured,
}

/// Resolves one header on its own.
fn resolve(header: &str, rules: &MappingRules) -> Option<(Target, Strength)> {
    let key = header_key(header);
    if key.is_empty() {
        return None;
    }
    if let Some(target) = rules.columns.get(&key) {
        return (*target != Target::Ignore).then_some((*target, Strength::Configured));
    }
    for field in Field::ALL {
        let full = header_key(field.name());
        if key == full {
            return Some((Target::Field(field), Strength::Exact));
        }
    }
    if let Some((_, target)) = ALIASES.iter().find(|(alias, _)| *alias == key) {
        return Some((*target, Strength::Alias));
    }
    // A field's name without its `Customer` prefix ("Home Phone") is as exact as the full one.
    Field::ALL
        .into_iter()
        .find(|f| f.name().strip_prefix("Customer").map(header_key) == Some(key.clone()))
        .map(|f| (Target::Field(f), Strength::Exact))
}

/// The targets of a header row, one per column, plus what was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnMap {
    /// The winning column's target, one per column (`Ignore` for the rest).
    pub targets: Vec<Target>,
    /// Every column that maps somewhere, with its target, strongest first and then in file order:
    /// read in this order, the first non-empty value of each target wins.
    pub order: Vec<(usize, Target)>,
    /// Headers that map to nothing (empty headers are not listed).
    pub unknown: Vec<String>,
    /// Headers that map to a target another column already supplies: (the column used, the column
    /// that fills the rows where it is empty).
    pub shadowed: Vec<(String, String)>,
}

impl ColumnMap {
    /// Maps a header row. The first column of the strongest kind wins each target.
    pub fn from_headers<S: AsRef<str>>(headers: &[S], rules: &MappingRules) -> Self {
        let resolved: Vec<Option<(Target, Strength)>> =
            headers.iter().map(|h| resolve(h.as_ref(), rules)).collect();
        let mut targets = vec![Target::Ignore; headers.len()];
        let mut unknown = Vec::new();
        let mut shadowed = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            let header = header.as_ref();
            let Some((target, _)) = resolved[i] else {
                let ignored_on_purpose =
                    rules.columns.get(&header_key(header)) == Some(&Target::Ignore);
                if !header_key(header).is_empty() && !ignored_on_purpose {
                    unknown.push(header.to_owned());
                }
                continue;
            };
            let winner = (0..headers.len())
                .filter(|&j| matches!(resolved[j], Some((t, _)) if t == target))
                .max_by_key(|&j| (resolved[j].map(|(_, s)| s), std::cmp::Reverse(j)))
                .expect("column i itself resolves to target");
            if winner == i {
                targets[i] = target;
            } else {
                shadowed.push((headers[winner].as_ref().to_owned(), header.to_owned()));
            }
        }
        let mut order: Vec<(usize, Target)> = (0..headers.len())
            .filter_map(|i| resolved[i].map(|(t, _)| (i, t)))
            .collect();
        order.sort_by_key(|&(i, _)| (std::cmp::Reverse(resolved[i].map(|(_, s)| s)), i));
        ColumnMap {
            targets,
            order,
            unknown,
            shadowed,
        }
    }
}

/// One key as the [`KeyMapper`] resolved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub target: Target,
    /// How strongly the key claims its target: of two keys of one record for the same target, the
    /// stronger one wins where both have a value.
    pub rank: u8,
    /// The key's number, for [`KeyMapper::name`].
    pub id: u16,
}

/// Maps keys one at a time, for JSON records whose keys vary from row to row; remembers each answer.
#[derive(Debug, Default)]
pub struct KeyMapper {
    rules: MappingRules,
    cache: HashMap<String, Key>,
    /// The keys of the last record, in its order, as resolved (see [`KeyMapper::key_at`]).
    by_position: Vec<(String, Key)>,
    names: Vec<String>,
    unknown: std::collections::BTreeSet<String>,
    /// Pairs of keys that gave one record two values for one target: (the one used, the other).
    pairs: std::collections::BTreeSet<(u16, u16)>,
}

/// Distinct keys remembered; past this many a record's keys are still mapped, just not cached.
const MAX_KEYS: usize = 1000;

impl KeyMapper {
    pub fn new(rules: MappingRules) -> Self {
        Self {
            rules,
            ..Self::default()
        }
    }

    #[cfg(test)]
    pub fn target(&mut self, key: &str) -> Target {
        self.key(key).target
    }

    /// Resolves a key, with its rank and number.
    pub fn key(&mut self, key: &str) -> Key {
        if let Some(k) = self.cache.get(key) {
            return *k;
        }
        let resolved = resolve(key, &self.rules);
        let target = resolved.map_or(Target::Ignore, |(t, _)| t);
        let configured = self.rules.columns.contains_key(&header_key(key));
        if target == Target::Ignore
            && !configured
            && !header_key(key).is_empty()
            && self.unknown.len() < 100
        {
            self.unknown.insert(key.to_owned());
        }
        let resolved = Key {
            target,
            rank: resolved.map_or(0, |(_, s)| s as u8),
            id: self.names.len().min(usize::from(u16::MAX)) as u16,
        };
        if self.names.len() < MAX_KEYS {
            self.names.push(key.to_owned());
            self.cache.insert(key.to_owned(), resolved);
        }
        resolved
    }

    /// [`KeyMapper::key`] for the key in place `position` of a record (0 for its first). Exports
    /// write every record's keys in one order, so the key that the last record had in this place is
    /// compared first: one short comparison instead of hashing the key, which took a tenth of the
    /// time of reading a JSON export. Places must be asked in order from 0 within each record.
    pub fn key_at(&mut self, position: usize, key: &str) -> Key {
        if let Some((last, resolved)) = self.by_position.get(position)
            && last == key
        {
            return *resolved;
        }
        let resolved = self.key(key);
        if let Some(slot) = self.by_position.get_mut(position) {
            slot.0.clear();
            slot.0.push_str(key);
            slot.1 = resolved;
        } else if position == self.by_position.len() && position < MAX_KEYS {
            self.by_position.push((key.to_owned(), resolved));
        }
        resolved
    }

    /// The key numbered `id`.
    pub fn name(&self, id: u16) -> &str {
        self.names.get(usize::from(id)).map_or("?", String::as_str)
    }

    /// Notes that one record had two keys for one target.
    pub fn pair(&mut self, used: u16, other: u16) {
        if self.pairs.len() < 100 {
            self.pairs.insert((used, other));
        }
    }

    /// Keys seen that map to nothing (the first hundred).
    pub fn unknown(&self) -> Vec<String> {
        self.unknown.iter().cloned().collect()
    }

    /// Keys that met another key for the same target in one record: (the one used, the other).
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .map(|&(a, b)| (self.name(a).to_owned(), self.name(b).to_owned()))
            .collect()
    }

    /// The keys seen (the first thousand).
    pub fn keys(&self) -> Vec<String> {
        self.names.clone()
    }

    /// The keys seen that map to `target`.
    pub fn keys_for(&self, target: Target) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| self.cache.get(*n).is_some_and(|k| k.target == target))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(header: &str) -> Option<Target> {
        resolve(header, &MappingRules::default()).map(|(t, _)| t)
    }

    #[test]
    fn field_names_match_ignoring_case_spaces_underscores_and_dashes() {
        for h in [
            "CustomerFirstName",
            "customer_first_name",
            "Customer First-Name",
            "FIRSTNAME",
        ] {
            assert_eq!(field_of(h), Some(Target::Field(Field::FirstName)), "{h}");
        }
        assert_eq!(
            field_of("partner_customer_id"),
            Some(Target::Field(Field::PartnerCustomerId))
        );
    }

    #[test]
    fn common_export_headers_map_through_aliases() {
        let cases = [
            ("First Name", Target::Field(Field::FirstName)),
            ("E-mail", Target::Field(Field::Email)),
            ("Zip", Target::Field(Field::ZipOrPostalCode)),
            ("Postal Code", Target::Field(Field::ZipOrPostalCode)),
            ("Mobile", Target::Field(Field::MobilePhone)),
            ("Birth Date", Target::BirthDate),
            ("DOB", Target::BirthDate),
            ("Birthday", Target::BirthDate),
            ("Name", Target::FullName),
        ];
        for (h, want) in cases {
            assert_eq!(field_of(h), Some(want), "{h}");
        }
        assert_eq!(field_of("Fax"), None);
    }

    #[test]
    fn an_exact_name_beats_an_alias_and_the_loser_is_reported() {
        let map = ColumnMap::from_headers(
            &["Phone", "CustomerHomePhone", "Notes", ""],
            &MappingRules::default(),
        );
        assert_eq!(
            map.targets,
            vec![
                Target::Ignore,
                Target::Field(Field::HomePhone),
                Target::Ignore,
                Target::Ignore
            ]
        );
        assert_eq!(map.unknown, vec!["Notes".to_owned()]);
        assert_eq!(
            map.shadowed,
            vec![("CustomerHomePhone".to_owned(), "Phone".to_owned())]
        );
        assert_eq!(
            map.order,
            [
                (1, Target::Field(Field::HomePhone)),
                (0, Target::Field(Field::HomePhone))
            ]
        );
    }

    #[test]
    fn a_field_name_without_its_prefix_beats_an_alias() {
        let map = ColumnMap::from_headers(&["Phone", "Home Phone"], &MappingRules::default());
        assert_eq!(
            map.targets,
            [Target::Ignore, Target::Field(Field::HomePhone)]
        );
    }

    #[test]
    fn of_two_equal_columns_the_first_wins() {
        let map = ColumnMap::from_headers(&["Email", "E-mail"], &MappingRules::default());
        assert_eq!(map.targets[0], Target::Field(Field::Email));
        assert_eq!(map.targets[1], Target::Ignore);
    }

    #[test]
    fn the_key_mapper_lists_unknown_keys_once() {
        let mut m = KeyMapper::default();
        assert_eq!(m.target("email"), Target::Field(Field::Email));
        assert_eq!(m.target("Fax"), Target::Ignore);
        assert_eq!(m.target("Fax"), Target::Ignore);
        assert_eq!(m.unknown(), vec!["Fax".to_owned()]);
    }

    #[test]
    fn keys_in_a_new_order_or_a_new_place_are_resolved_afresh() {
        let mut m = KeyMapper::default();
        let record = |m: &mut KeyMapper, keys: &[&str]| -> Vec<Key> {
            keys.iter()
                .enumerate()
                .map(|(i, k)| m.key_at(i, k))
                .collect()
        };
        let first = record(&mut m, &["email", "Fax", "Zip"]);
        assert_eq!(first, record(&mut m, &["email", "Fax", "Zip"]));
        let swapped = record(&mut m, &["Zip", "email", "Fax", "City"]);
        assert_eq!(swapped[..3], [first[2], first[0], first[1]]);
        assert_eq!(swapped[3].target, Target::Field(Field::City));
        let fewer = record(&mut m, &["Fax"]);
        assert_eq!(fewer, [first[1]]);
        assert_eq!(record(&mut m, &["email", "email"]), [first[0], first[0]]);
        assert_eq!(m.unknown(), vec!["Fax".to_owned()]);
    }
}
