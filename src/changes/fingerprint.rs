//! What the change report remembers of a customer's row: a 64-bit hash of the whole normalized row,
//! which decides whether the customer changed, and a one-byte fingerprint of each field, which names
//! the fields that did. Hashes are XXH3, a published algorithm: a fingerprint written by one rrfeed
//! release is read by the next.

use xxhash_rust::xxh3::xxh3_64;

use crate::wire::{FIELD_COUNT, Field};

/// The fingerprint of one normalized row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash of every field's hash, in field order.
    pub row: u64,
    /// The top byte of each field's hash (seeded by the field's position).
    pub fields: [u8; FIELD_COUNT],
}

impl Fingerprint {
    /// The fingerprint of a row's 25 values, in field order. An empty field hashes to 0 (most rows
    /// leave many empty); the array of field hashes is what the row hash covers, so a value moved to
    /// another field changes it.
    pub fn of<S: AsRef<str>>(values: &[S; FIELD_COUNT]) -> Self {
        let mut hashes = [0u8; FIELD_COUNT * 8];
        let mut fields = [0u8; FIELD_COUNT];
        for (i, value) in values.iter().enumerate() {
            let bytes = value.as_ref().as_bytes();
            if bytes.is_empty() {
                continue;
            }
            let hash = xxh3_64(bytes);
            hashes[i * 8..i * 8 + 8].copy_from_slice(&hash.to_le_bytes());
            fields[i] = (hash >> 56) as u8;
        }
        Self {
            row: xxh3_64(&hashes),
            fields,
        }
    }

    /// The row hash (little-endian) and the field fingerprints: 33 bytes, copied in one piece (this
    /// runs for every customer of an upload).
    pub fn to_bytes(self) -> [u8; 8 + FIELD_COUNT] {
        let mut bytes = [0; 8 + FIELD_COUNT];
        bytes[..8].copy_from_slice(&self.row.to_le_bytes());
        bytes[8..].copy_from_slice(&self.fields);
        bytes
    }

    /// Reads what [`Fingerprint::to_bytes`] gave.
    pub fn read_from(bytes: &[u8; 8 + FIELD_COUNT]) -> Self {
        Self {
            row: u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
            fields: bytes[8..].try_into().expect("25 bytes"),
        }
    }

    /// The fields whose fingerprints differ from `before`'s. A changed field whose one-byte
    /// fingerprint happens to match (1 time in 256) is not named; the row hash still counts the
    /// customer as changed.
    pub fn changed_fields(&self, before: &Self) -> impl Iterator<Item = Field> + '_ {
        let before = before.fields;
        Field::ALL
            .into_iter()
            .zip(self.fields.iter().zip(before))
            .filter(|(_, (now, then))| **now != *then)
            .map(|(field, _)| field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `of` gave for the test row when the format was made (`rrfeed-known 1`).
    const PINNED_ROW: u64 = 0xa1f8_2ac4_fbbb_b777;
    const PINNED_FIELDS: (u8, u8) = (117, 0);

    fn row(edit: impl FnOnce(&mut [String; FIELD_COUNT])) -> [String; FIELD_COUNT] {
        let mut values: [String; FIELD_COUNT] = std::array::from_fn(|i| format!("value {i}"));
        edit(&mut values);
        values
    }

    #[test]
    fn equal_rows_match_and_an_edited_field_is_named() {
        let before = Fingerprint::of(&row(|_| {}));
        assert_eq!(before, Fingerprint::of(&row(|_| {})));
        let after = Fingerprint::of(&row(|v| {
            v[Field::Email as usize] = "new@example.com".into()
        }));
        assert_ne!(before.row, after.row);
        assert_eq!(
            after.changed_fields(&before).collect::<Vec<_>>(),
            [Field::Email]
        );
    }

    #[test]
    fn a_value_moved_to_another_field_is_a_change() {
        let a = row(|v| {
            v[0] = "x".into();
            v[1] = String::new();
        });
        let b = row(|v| {
            v[0] = String::new();
            v[1] = "x".into();
        });
        assert_ne!(Fingerprint::of(&a).row, Fingerprint::of(&b).row);
    }

    #[test]
    fn the_hash_is_stable_across_releases() {
        // Last night's remembered upload is read by tonight's binary: these values must never move
        // (a change would count every customer as changed, and the churn guard would refuse).
        assert_eq!(xxh3_64(b""), 0x2d06_8005_38d3_94c2, "XXH3 as published");
        let fp = Fingerprint::of(&row(|v| v[3] = String::new()));
        assert_eq!(fp.row, PINNED_ROW, "{:#x}", fp.row);
        assert_eq!((fp.fields[0], fp.fields[3]), PINNED_FIELDS);
    }
}
