//! Values the server may send in more than one JSON type: counts as strings or numbers, texts as
//! strings, numbers or booleans.

use super::*;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;

/// A count on the wire: sent as a digit string, accepted as a string or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Count(pub u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl Visitor<'_> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative count as a string or a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                u64::try_from(v)
                    .map(Count)
                    .map_err(|_| E::custom(format!("negative count {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                if v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
                    Ok(Count(v as u64))
                } else {
                    Err(E::custom(format!("count {v} is not a whole number")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Count, E> {
                v.trim()
                    .parse()
                    .map(Count)
                    .map_err(|_| E::custom(format!("count {v:?} is not a whole number")))
            }
        }
        d.deserialize_any(CountVisitor)
    }
}

/// A text value from the server, accepted as a string, a number or a boolean.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Text(pub String);

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Text(s)),
            serde_json::Value::Number(n) => Ok(Text(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Text(b.to_string())),
            other => Err(de::Error::custom(format!("expected text, found {other}"))),
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.to_owned())
    }
}

/// Lenient optional text: missing, null, a string or a number.
pub(crate) type OptText = Option<Text>;

pub(crate) fn text(s: &str) -> OptText {
    Some(Text::from(s))
}
