//! What the vendor POSTs when a customer edits their profile (README "Two-way sync"): one customer object with the 25
//! field names, or `{"rows": [...]}` of them. Each row is normalized by the same rules as an upload; a
//! value those rules cannot use refuses the whole request, since storing it emptied would later wipe
//! the dealer's copy of that field. Unknown keys are kept in the row's raw JSON. Pure code: no IO.

use serde_json::{Map, Value};

use crate::customer::{Normalizer, RawCustomer};
use crate::wire::{FIELD_COUNT, Field};

/// One customer update, ready for the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// Which customer: `P:` and the PartnerCustomerID, else `R:` and the CustomerRewardNumber.
    pub customer_key: String,
    /// The 25 fields as a JSON object: normalized strings, `null` for fields the update did not carry.
    pub customer: String,
    /// The row exactly as received (re-serialized), unknown keys included.
    pub raw: String,
    /// BLAKE3 of `raw`, in hex: a repeat of the same update has the same digest.
    pub digest: String,
}

/// Why a payload is refused (HTTP 400 or 413); the text is sent back to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed(String),
    Invalid(String),
    TooManyRows { rows: usize, max: usize },
}

impl Refused {
    pub fn status(&self) -> u16 {
        match self {
            Refused::Malformed(_) | Refused::Invalid(_) => 400,
            Refused::TooManyRows { .. } => 413,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refused::Malformed(why) => format!("malformed payload: {why}"),
            Refused::Invalid(why) => format!("invalid payload: {why}"),
            Refused::TooManyRows { rows, max } => {
                format!("too many rows: {rows} in one request, at most {max}")
            }
        }
    }
}

/// Parses and normalizes a request body.
///
/// Fails when the body is not a JSON object (or `{"rows": [...]}` of objects), has no row or more than
/// `max_rows`, or a row holds a value the upload rules refuse or cannot be matched to a customer.
pub fn parse(
    body: &[u8],
    max_rows: usize,
    normalizer: &Normalizer,
) -> Result<Vec<Update>, Refused> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Refused::Malformed(format!("not JSON ({e})")))?;
    let rows = match value {
        Value::Object(mut object) => match object.remove("rows") {
            Some(Value::Array(rows)) => rows,
            Some(_) => return Err(Refused::Malformed("\"rows\" is not an array".into())),
            None => vec![Value::Object(object)],
        },
        _ => {
            return Err(Refused::Malformed(
                "expected a customer object or {\"rows\": [...]}".into(),
            ));
        }
    };
    if rows.is_empty() {
        return Err(Refused::Invalid("\"rows\" is empty".into()));
    }
    if rows.len() > max_rows {
        return Err(Refused::TooManyRows {
            rows: rows.len(),
            max: max_rows,
        });
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| match row {
            Value::Object(row) => update(&row, normalizer).map_err(|why| at_row(i, why)),
            _ => Err(at_row(i, Refused::Malformed("not an object".into()))),
        })
        .collect()
}

fn at_row(index: usize, refused: Refused) -> Refused {
    match refused {
        Refused::Malformed(why) => Refused::Malformed(format!("row {}: {why}", index + 1)),
        Refused::Invalid(why) => Refused::Invalid(format!("row {}: {why}", index + 1)),
        other => other,
    }
}

/// One row: its field values as text (strings and numbers; `null` is "not given").
fn update(row: &Map<String, Value>, normalizer: &Normalizer) -> Result<Update, Refused> {
    let mut texts: [Option<String>; FIELD_COUNT] = Default::default();
    for (key, value) in row {
        let Some(field) = field_named(key) else {
            continue;
        };
        texts[field as usize] = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Null => None,
            _ => {
                return Err(Refused::Malformed(format!(
                    "{} is not a string or a number",
                    field.name()
                )));
            }
        };
    }
    let mut raw_customer = RawCustomer::default();
    for field in Field::ALL {
        if let Some(text) = &texts[field as usize] {
            raw_customer.set(field, text);
        }
    }
    let mut issues = Vec::new();
    let customer = normalizer.parse(&raw_customer, &mut issues);
    if let Some(issue) = issues.first() {
        return Err(Refused::Invalid(issue.reason()));
    }
    let customer_key = match (
        customer.get(Field::PartnerCustomerId),
        customer.get(Field::RewardNumber),
    ) {
        (id, _) if !id.is_empty() => format!("P:{id}"),
        (_, number) if !number.is_empty() => format!("R:{number}"),
        _ => {
            return Err(Refused::Invalid(
                "neither PartnerCustomerID nor CustomerRewardNumber is given: the update cannot be \
                 matched to a customer"
                    .into(),
            ));
        }
    };
    let fields = InFieldOrder(Field::ALL.map(|field| {
        texts[field as usize]
            .as_ref()
            .map(|_| customer.get(field).to_owned())
    }));
    let raw = Value::Object(row.clone()).to_string();
    Ok(Update {
        customer_key,
        customer: serde_json::to_string(&fields).expect("strings serialize"),
        digest: blake3::hash(raw.as_bytes()).to_hex().to_string(),
        raw,
    })
}

/// The 25 fields as a JSON object in the vendor's order (`null` where not carried).
struct InFieldOrder([Option<String>; FIELD_COUNT]);

impl serde::Serialize for InFieldOrder {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(Field::ALL.iter().map(|f| (f.name(), &self.0[*f as usize])))
    }
}

/// The field a key names: its exact name, else the same name in another case.
fn field_named(key: &str) -> Option<Field> {
    Field::ALL
        .into_iter()
        .find(|f| f.name() == key)
        .or_else(|| {
            Field::ALL
                .into_iter()
                .find(|f| f.name().eq_ignore_ascii_case(key))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalizer() -> Normalizer {
        Normalizer::new(jiff::civil::date(2026, 11, 22))
    }

    fn parse_text(text: &str) -> Result<Vec<Update>, Refused> {
        parse(text.as_bytes(), 1000, &normalizer())
    }

    fn field(update: &Update, name: &str) -> Value {
        let customer: Value = serde_json::from_str(&update.customer).unwrap();
        customer[name].clone()
    }

    #[test]
    fn one_customer_object_is_one_normalized_update() {
        let got = parse_text(
            r#"{"PartnerCustomerID":"C-1","CustomerEmail":"Ann@Example.COM","CustomerMobilePhone":"(414) 555-0101","CustomerBirthYear":1985}"#,
        )
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].customer_key, "P:C-1");
        assert_eq!(field(&got[0], "CustomerEmail"), "ann@example.com");
        assert_eq!(field(&got[0], "CustomerMobilePhone"), "4145550101");
        assert_eq!(field(&got[0], "CustomerBirthYear"), "1985");
        assert_eq!(field(&got[0], "CustomerCity"), Value::Null);
    }

    #[test]
    fn rows_carry_several_customers_and_unknown_keys_stay_in_the_raw_json() {
        let got = parse_text(
            r#"{"rows":[{"PartnerCustomerID":"1","ProfilePhoto":"p.jpg"},{"CustomerRewardNumber":"AA12"}]}"#,
        )
        .unwrap();
        assert_eq!(got[0].customer_key, "P:1");
        assert!(got[0].raw.contains("\"ProfilePhoto\":\"p.jpg\""));
        assert_eq!(got[1].customer_key, "R:AA12");
    }

    #[test]
    fn the_same_row_twice_has_the_same_digest_and_another_row_another() {
        let a = parse_text(r#"{"PartnerCustomerID":"1","CustomerCity":"Oak Creek"}"#).unwrap();
        let b = parse_text(r#"{"PartnerCustomerID":"1","CustomerCity":"Oak Creek"}"#).unwrap();
        let c = parse_text(r#"{"PartnerCustomerID":"1","CustomerCity":"Milwaukee"}"#).unwrap();
        assert_eq!(a[0].digest, b[0].digest);
        assert_ne!(a[0].digest, c[0].digest);
    }

    #[test]
    fn refusals_say_why_and_where() {
        let cases = [
            ("not json", 400, "malformed payload: not JSON"),
            ("[1,2]", 400, "expected a customer object"),
            (r#"{"rows":{}}"#, 400, "\"rows\" is not an array"),
            (r#"{"rows":[]}"#, 400, "\"rows\" is empty"),
            (
                r#"{"rows":[{"PartnerCustomerID":"1"},7]}"#,
                400,
                "row 2: not an object",
            ),
            (
                r#"{"PartnerCustomerID":"1","CustomerEmail":"n/a"}"#,
                400,
                "row 1: CustomerEmail \"n/a\"",
            ),
            (
                r#"{"PartnerCustomerID":["1"]}"#,
                400,
                "PartnerCustomerID is not a string",
            ),
            (
                r#"{"CustomerCity":"Oak Creek"}"#,
                400,
                "neither PartnerCustomerID nor",
            ),
        ];
        for (body, status, text) in cases {
            let refused = parse_text(body).unwrap_err();
            assert_eq!(refused.status(), status, "{body}");
            assert!(
                refused.message().contains(text),
                "{body}: {}",
                refused.message()
            );
        }
    }

    #[test]
    fn more_rows_than_allowed_is_too_large() {
        let refused = parse(
            br#"{"rows":[{"PartnerCustomerID":"1"},{"PartnerCustomerID":"2"}]}"#,
            1,
            &normalizer(),
        )
        .unwrap_err();
        assert_eq!(refused, Refused::TooManyRows { rows: 2, max: 1 });
        assert_eq!(refused.status(), 413);
    }

    #[test]
    fn field_names_match_in_any_case() {
        let got = parse_text(r#"{"partnercustomerid":"7","customergender":"female"}"#).unwrap();
        assert_eq!(got[0].customer_key, "P:7");
        assert_eq!(field(&got[0], "CustomerGender"), "F");
    }
}
