//! The customer row: the 25 fields in the vendor's order, written as JSON once per row, and read back
//! (by the mock) with exactly those keys.

use super::*;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};

// ---------------------------------------------------------------------------------------------------
// Customer rows
// ---------------------------------------------------------------------------------------------------

/// The 25 fields of a customer row, in the vendor's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    PartnerCustomerId,
    RewardNumber,
    FirstName,
    LastName,
    Address,
    City,
    StateProvince,
    ZipOrPostalCode,
    Country,
    BirthMonth,
    BirthDay,
    BirthYear,
    PrimaryPhoneType,
    MobilePhone,
    HomePhone,
    WorkPhone,
    Class,
    ClubName,
    Gender,
    Email,
    HogNumber,
    HogExpireMonth,
    HogExpireDate,
    HogExpireYear,
    IsLocalHogChapterMember,
}

/// Number of fields in a customer row.
pub const FIELD_COUNT: usize = 25;

/// The wire names, indexed by `Field as usize`.
pub const FIELD_NAMES: [&str; FIELD_COUNT] = [
    "PartnerCustomerID",
    "CustomerRewardNumber",
    "CustomerFirstName",
    "CustomerLastName",
    "CustomerAddress",
    "CustomerCity",
    "CustomerStateProvince",
    "CustomerZipOrPostalCode",
    "CustomerCountry",
    "CustomerBirthMonth",
    "CustomerBirthDay",
    "CustomerBirthYear",
    "CustomerPrimaryPhoneType",
    "CustomerMobilePhone",
    "CustomerHomePhone",
    "CustomerWorkPhone",
    "CustomerClass",
    "CustomerClubName",
    "CustomerGender",
    "CustomerEmail",
    "CustomerNationalHOGNumber",
    "CustomerNationalHOGExpireMonth",
    "CustomerNationalHOGExpireDate",
    "CustomerNationalHOGExpireYear",
    "CustomerIsLocalHOGChapterMember",
];

impl Field {
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::PartnerCustomerId,
        Field::RewardNumber,
        Field::FirstName,
        Field::LastName,
        Field::Address,
        Field::City,
        Field::StateProvince,
        Field::ZipOrPostalCode,
        Field::Country,
        Field::BirthMonth,
        Field::BirthDay,
        Field::BirthYear,
        Field::PrimaryPhoneType,
        Field::MobilePhone,
        Field::HomePhone,
        Field::WorkPhone,
        Field::Class,
        Field::ClubName,
        Field::Gender,
        Field::Email,
        Field::HogNumber,
        Field::HogExpireMonth,
        Field::HogExpireDate,
        Field::HogExpireYear,
        Field::IsLocalHogChapterMember,
    ];

    /// The wire name, e.g. `CustomerFirstName`.
    pub fn name(self) -> &'static str {
        FIELD_NAMES[self as usize]
    }

    /// Finds a field by its exact wire name.
    pub fn from_name(name: &str) -> Option<Field> {
        FIELD_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Field::ALL[i])
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Serializes 25 values as a customer object, every key present, in the vendor's order.
pub struct CustomerJson<'a, S: AsRef<str>>(pub &'a [S; FIELD_COUNT]);

impl<S: AsRef<str>> Serialize for CustomerJson<'_, S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = s.serialize_map(Some(FIELD_COUNT))?;
        for (name, value) in FIELD_NAMES.iter().zip(self.0.iter()) {
            map.serialize_entry(name, value.as_ref())?;
        }
        map.end()
    }
}

/// Appends 25 values as a customer object, every key present, in the vendor's order: the same JSON as
/// [`CustomerJson`], written directly (this runs once per row, so it skips serde's generic path).
pub fn write_customer_json<S: AsRef<str>>(values: &[S; FIELD_COUNT], out: &mut Vec<u8>) {
    write_customer_row(
        &values.each_ref().map(|v| v.as_ref().as_bytes()),
        false,
        out,
    );
}

/// [`write_customer_json`] for values known to hold no control character, `"` or `\` when
/// `escape_free` is set (a normalized row whose reader checked its record, see
/// `customer::scan_record`): they are copied without looking at them.
///
/// The values are UTF-8 text as bytes (a normalized row's, or read back from its snapshot).
pub fn write_customer_row<S: AsRef<[u8]>>(
    values: &[S; FIELD_COUNT],
    escape_free: bool,
    out: &mut Vec<u8>,
) {
    let text: usize = values.iter().map(|v| v.as_ref().len()).sum();
    out.reserve(KEY_PREFIX_BYTES + KEY_PAD + text + 2);
    for (field, value) in values.iter().enumerate() {
        push_key_prefix(field, out);
        if escape_free {
            out.extend_from_slice(value.as_ref());
        } else {
            write_json_string_contents(value.as_ref(), out);
        }
    }
    out.extend_from_slice(b"\"}");
}

/// Appends the [`KEY_PREFIXES`] entry of field number `field`. The prefixes are copied from a table
/// where each is padded to one length: a copy of a fixed size, which the compiler inlines, instead
/// of a call to `memcpy` for each of a row's 25 keys (most of the bytes of a row's JSON). The padding
/// is cut off again.
fn push_key_prefix(field: usize, out: &mut Vec<u8>) {
    let len = out.len();
    out.extend_from_slice(&PADDED_KEY_PREFIXES[field]);
    out.truncate(len + KEY_PREFIXES[field].len());
}

/// The longest key prefix, rounded up to a multiple of 8.
const KEY_PAD: usize = {
    let mut longest = 0;
    let mut i = 0;
    while i < FIELD_COUNT {
        if KEY_PREFIXES[i].len() > longest {
            longest = KEY_PREFIXES[i].len();
        }
        i += 1;
    }
    longest.next_multiple_of(8)
};

/// [`KEY_PREFIXES`], each padded with zeros to [`KEY_PAD`] bytes.
const PADDED_KEY_PREFIXES: [[u8; KEY_PAD]; FIELD_COUNT] = {
    let mut table = [[0; KEY_PAD]; FIELD_COUNT];
    let mut i = 0;
    while i < FIELD_COUNT {
        let key = KEY_PREFIXES[i].as_bytes();
        let mut j = 0;
        while j < key.len() {
            table[i][j] = key[j];
            j += 1;
        }
        i += 1;
    }
    table
};

/// Appends a row whose 25 values are given as one text, each value followed by `separator` but the
/// last, as [`write_customer_row`] would with `escape_free` set. The values must hold neither a
/// control character, `"` nor `\`.
///
/// This runs for every row of every post. Separators are found eight bytes at a time
/// ([`find_byte`]), and a value of at most [`VALUE_BLOCK`] bytes (nearly all of them) is copied as a
/// block of that fixed size, which the compiler inlines, then cut back to its length. A byte-by-byte
/// copy took a quarter longer, and `memchr` (a call for every value) was slower in a real upload
/// (BENCHMARKS.md, "Fifth pass").
///
/// Returns false, having appended part of a row, when the text does not hold exactly 25 values.
pub fn write_separated_row(values: &[u8], separator: u8, out: &mut Vec<u8>) -> bool {
    out.reserve(KEY_PREFIX_BYTES + KEY_PAD + values.len() + VALUE_BLOCK + 2);
    let (mut start, mut fields) = (0, 0);
    loop {
        if fields == FIELD_COUNT {
            return false;
        }
        let end = find_byte(&values[start..], separator).map_or(values.len(), |at| start + at);
        push_key_prefix(fields, out);
        let len = out.len();
        match values.get(start..start + VALUE_BLOCK) {
            Some(block) if end - start <= VALUE_BLOCK => {
                out.extend_from_slice(block);
                out.truncate(len + end - start);
            }
            _ => out.extend_from_slice(&values[start..end]),
        }
        fields += 1;
        if end == values.len() {
            break;
        }
        start = end + 1;
    }
    out.extend_from_slice(b"\"}");
    fields == FIELD_COUNT
}

/// The size of the block in which [`write_separated_row`] copies a short value.
const VALUE_BLOCK: usize = 16;

/// The position of the first `byte` in `bytes`, looking at eight bytes at a time: a word XORed with
/// the byte repeated has a zero byte where `byte` was, and `(w - 0x01..01) & !w & 0x80..80` marks the
/// lowest zero byte exactly (a borrow can only mark bytes above it). Inlined, this beats a call to
/// `memchr` over the few bytes of a value.
fn find_byte(bytes: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = u64::from_ne_bytes([byte; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ pattern;
        let zeros = w.wrapping_sub(ONES) & !w & HIGHS;
        if zeros != 0 {
            return Some(at + (zeros.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words.remainder();
    tail.iter().position(|&b| b == byte).map(|i| at + i)
}

/// The bytes of every key prefix together.
const KEY_PREFIX_BYTES: usize = {
    let mut total = 0;
    let mut i = 0;
    while i < FIELD_COUNT {
        total += KEY_PREFIXES[i].len();
        i += 1;
    }
    total
};

/// What precedes each value in [`write_customer_json`]: `{"PartnerCustomerID":"`, then
/// `","CustomerRewardNumber":"` and so on, so that each field costs one copy of its key.
pub(crate) const KEY_PREFIXES: [&str; FIELD_COUNT] = [
    "{\"PartnerCustomerID\":\"",
    "\",\"CustomerRewardNumber\":\"",
    "\",\"CustomerFirstName\":\"",
    "\",\"CustomerLastName\":\"",
    "\",\"CustomerAddress\":\"",
    "\",\"CustomerCity\":\"",
    "\",\"CustomerStateProvince\":\"",
    "\",\"CustomerZipOrPostalCode\":\"",
    "\",\"CustomerCountry\":\"",
    "\",\"CustomerBirthMonth\":\"",
    "\",\"CustomerBirthDay\":\"",
    "\",\"CustomerBirthYear\":\"",
    "\",\"CustomerPrimaryPhoneType\":\"",
    "\",\"CustomerMobilePhone\":\"",
    "\",\"CustomerHomePhone\":\"",
    "\",\"CustomerWorkPhone\":\"",
    "\",\"CustomerClass\":\"",
    "\",\"CustomerClubName\":\"",
    "\",\"CustomerGender\":\"",
    "\",\"CustomerEmail\":\"",
    "\",\"CustomerNationalHOGNumber\":\"",
    "\",\"CustomerNationalHOGExpireMonth\":\"",
    "\",\"CustomerNationalHOGExpireDate\":\"",
    "\",\"CustomerNationalHOGExpireYear\":\"",
    "\",\"CustomerIsLocalHOGChapterMember\":\"",
];

/// Appends `bytes`, UTF-8 text, escaped for the inside of a JSON string.
fn write_json_string_contents(bytes: &[u8], out: &mut Vec<u8>) {
    let needs_escape = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    // One pass without early exit, which the compiler vectorizes; escapes are rare.
    if !bytes.iter().fold(false, |seen, &b| {
        seen | (b < 0x20) | (b == b'"') | (b == b'\\')
    }) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            other => out.extend_from_slice(format!("\\u{other:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A customer row as a server receives it: exactly the 25 keys, each a string or null.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CustomerRecord(pub [Option<String>; FIELD_COUNT]);

impl CustomerRecord {
    pub fn get(&self, field: Field) -> Option<&str> {
        self.0[field as usize].as_deref()
    }
}

impl Serialize for CustomerRecord {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = s.serialize_map(Some(FIELD_COUNT))?;
        for (name, value) in FIELD_NAMES.iter().zip(self.0.iter()) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for CustomerRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = CustomerRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a customer object with the 25 documented keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CustomerRecord, A::Error> {
        let mut record = CustomerRecord::default();
        visit_fields(map, |field, map| {
            record.0[field as usize] = map.next_value::<Option<String>>()?;
            Ok(())
        })?;
        Ok(record)
    }
}

/// Checks that a customer row has exactly the 25 keys, each a string or null, without keeping the
/// values (a server storing the row as it came needs no more).
pub struct CustomerRowCheck;

impl<'de> Deserialize<'de> for CustomerRowCheck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckVisitor)
    }
}

struct CheckVisitor;

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = CustomerRowCheck;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a customer object with the 25 documented keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CustomerRowCheck, A::Error> {
        visit_fields(map, |_, map| map.next_value::<StringOrNull>().map(|_| ()))?;
        Ok(CustomerRowCheck)
    }
}

/// A value that must be a string or null; not kept.
struct StringOrNull;

impl<'de> Deserialize<'de> for StringOrNull {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StringOrNull;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<StringOrNull, E> {
                Ok(StringOrNull)
            }
            fn visit_unit<E: de::Error>(self) -> Result<StringOrNull, E> {
                Ok(StringOrNull)
            }
            fn visit_none<E: de::Error>(self) -> Result<StringOrNull, E> {
                Ok(StringOrNull)
            }
        }
        d.deserialize_any(V)
    }
}

/// Walks a customer object's keys: each must be one of the 25, once; all 25 must be there. `value`
/// reads the value of each key.
fn visit_fields<'de, A: MapAccess<'de>>(
    mut map: A,
    mut value: impl FnMut(Field, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    let mut seen = [false; FIELD_COUNT];
    let mut next = 0;
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        // Keys nearly always come in the documented order: try the expected one before searching.
        let field = match FIELD_NAMES.get(next) {
            Some(name) if *name == key => Some(Field::ALL[next]),
            _ => Field::from_name(&key),
        };
        let Some(field) = field else {
            return Err(de::Error::custom(format!("unknown key {key:?}")));
        };
        if std::mem::replace(&mut seen[field as usize], true) {
            return Err(de::Error::custom(format!("key {key:?} appears twice")));
        }
        next = field as usize + 1;
        value(field, &mut map)?;
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(de::Error::custom(format!(
            "key {:?} is missing",
            FIELD_NAMES[missing]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::find_byte;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_word_search_finds_the_first_byte(
            bytes in proptest::collection::vec(prop_oneof![Just(0x1fu8), Just(0x9f), Just(0x1e), Just(0x20), any::<u8>()], 0..40),
        ) {
            prop_assert_eq!(find_byte(&bytes, 0x1f), bytes.iter().position(|&b| b == 0x1f));
        }
    }
}
