//! From an export's column names to the 25 customer fields (SPEC §3).
//!
//! A header maps when it equals a field name with case, spaces, `_` and `-` ignored, with or without the
//! `Customer` prefix, or when it is one of the built-in aliases below (listed in README). An exact name
//! beats an alias; of two columns for one field the first wins and the other is reported as ignored.
//! Pure code: no IO.

use crate::protocol::Field;

/// Where one column's values go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Field(Field),
    /// A whole birth date, split into month, day and year.
    BirthDate,
    /// A whole name, split into first and last.
    FullName,
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

/// How strongly a header claims its target: exact names beat aliases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    Alias,
    Exact,
}

/// Resolves one header on its own.
fn resolve(header: &str) -> Option<(Target, Strength)> {
    let key = header_key(header);
    if key.is_empty() {
        return None;
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
    Field::ALL
        .into_iter()
        .find(|f| f.name().strip_prefix("Customer").map(header_key) == Some(key.clone()))
        .map(|f| (Target::Field(f), Strength::Alias))
}

/// The targets of a header row, one per column, plus what was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnMap {
    pub targets: Vec<Target>,
    /// Headers that map to nothing (empty headers are not listed).
    pub unknown: Vec<String>,
    /// Headers that map to a target another column already supplies: (header, the column used).
    pub shadowed: Vec<(String, String)>,
}

impl ColumnMap {
    /// Maps a header row. The first column of the strongest kind wins each target.
    pub fn from_headers<S: AsRef<str>>(headers: &[S]) -> Self {
        let resolved: Vec<Option<(Target, Strength)>> =
            headers.iter().map(|h| resolve(h.as_ref())).collect();
        let mut targets = vec![Target::Ignore; headers.len()];
        let mut unknown = Vec::new();
        let mut shadowed = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            let header = header.as_ref();
            let Some((target, _)) = resolved[i] else {
                if !header_key(header).is_empty() {
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
                shadowed.push((header.to_owned(), headers[winner].as_ref().to_owned()));
            }
        }
        ColumnMap {
            targets,
            unknown,
            shadowed,
        }
    }
}

/// Maps keys one at a time, for JSON records whose keys vary from row to row; remembers each answer.
#[derive(Debug, Default)]
pub struct KeyMapper {
    cache: std::collections::HashMap<String, Target>,
    unknown: std::collections::BTreeSet<String>,
}

impl KeyMapper {
    pub fn target(&mut self, key: &str) -> Target {
        if let Some(t) = self.cache.get(key) {
            return *t;
        }
        let target = resolve(key).map_or(Target::Ignore, |(t, _)| t);
        if target == Target::Ignore && !header_key(key).is_empty() && self.unknown.len() < 100 {
            self.unknown.insert(key.to_owned());
        }
        self.cache.insert(key.to_owned(), target);
        target
    }

    /// Keys seen that map to nothing (the first hundred).
    pub fn unknown(&self) -> Vec<String> {
        self.unknown.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(header: &str) -> Option<Target> {
        resolve(header).map(|(t, _)| t)
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
        let map = ColumnMap::from_headers(&["Phone", "CustomerHomePhone", "Notes", ""]);
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
            vec![("Phone".to_owned(), "CustomerHomePhone".to_owned())]
        );
    }

    #[test]
    fn of_two_equal_columns_the_first_wins() {
        let map = ColumnMap::from_headers(&["Email", "E-mail"]);
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
}
