//! DynamoDB attribute values in their JSON wire form (`{"S": "x"}`,
//! `{"N": "1"}`, `{"SS": [..]}`, …), checked and normalised on the way in
//! as DynamoDB does, and compared the way its expressions compare them.

use super::number::Decimal;
use crate::reply::ApiError;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// An item: attribute name → value.
pub(crate) type Item = BTreeMap<String, Attr>;

/// One attribute value; serde's external tagging is DynamoDB's JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Attr {
    S(String),
    N(String),
    /// Base64 text, as on the wire.
    B(String),
    #[serde(rename = "SS")]
    Ss(Vec<String>),
    #[serde(rename = "NS")]
    Ns(Vec<String>),
    #[serde(rename = "BS")]
    Bs(Vec<String>),
    M(Item),
    L(Vec<Attr>),
    #[serde(rename = "NULL")]
    Null(bool),
    #[serde(rename = "BOOL")]
    Bool(bool),
}

fn number(text: &str) -> Result<Decimal, ApiError> {
    Decimal::parse(text).map_err(|e| ApiError::validation(e.to_string()))
}

fn bytes(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|_| b64.as_bytes().to_vec())
}

fn no_duplicates<T: Ord + Clone + std::fmt::Debug>(
    kind: &str,
    values: &[T],
) -> Result<(), ApiError> {
    if values.is_empty() {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: An {kind} set  may not be empty"
        )));
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Input collection {values:?} contains duplicates."
        )));
    }
    Ok(())
}

impl Attr {
    /// The value as DynamoDB stores it: numbers in their shortest form,
    /// sets non-empty and without duplicates, `NULL` only `true`.
    pub fn normalized(self) -> Result<Attr, ApiError> {
        Ok(match self {
            Attr::N(n) => Attr::N(number(&n)?.to_text()),
            Attr::Ns(ns) => {
                let numbers = ns.iter().map(|n| number(n)).collect::<Result<Vec<_>, _>>()?;
                no_duplicates("number", &numbers)?;
                Attr::Ns(numbers.iter().map(Decimal::to_text).collect())
            }
            Attr::Ss(ss) => {
                no_duplicates("string", &ss)?;
                Attr::Ss(ss)
            }
            Attr::Bs(bs) => {
                no_duplicates("binary", &bs.iter().map(|b| bytes(b)).collect::<Vec<_>>())?;
                Attr::Bs(bs)
            }
            Attr::M(m) => Attr::M(normalized_item(m)?),
            Attr::L(l) => Attr::L(l.into_iter().map(Attr::normalized).collect::<Result<_, _>>()?),
            Attr::Null(false) => {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: Null attribute value types must have the value of true",
                ))
            }
            other => other,
        })
    }

    /// The type name `attribute_type` compares with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Attr::S(_) => "S",
            Attr::N(_) => "N",
            Attr::B(_) => "B",
            Attr::Ss(_) => "SS",
            Attr::Ns(_) => "NS",
            Attr::Bs(_) => "BS",
            Attr::M(_) => "M",
            Attr::L(_) => "L",
            Attr::Null(_) => "NULL",
            Attr::Bool(_) => "BOOL",
        }
    }

    /// Equality as `=` sees it: numbers by value, sets unordered.
    pub fn equals(&self, other: &Attr) -> bool {
        let same_set = |a: &[String], b: &[String], eq: &dyn Fn(&String, &String) -> bool| {
            a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| eq(x, y)))
        };
        match (self, other) {
            (Attr::N(a), Attr::N(b)) => numbers_equal(a, b),
            (Attr::B(a), Attr::B(b)) => bytes(a) == bytes(b),
            (Attr::Ss(a), Attr::Ss(b)) => same_set(a, b, &|x, y| x == y),
            (Attr::Ns(a), Attr::Ns(b)) => same_set(a, b, &|x, y| numbers_equal(x, y)),
            (Attr::Bs(a), Attr::Bs(b)) => same_set(a, b, &|x, y| bytes(x) == bytes(y)),
            (Attr::M(a), Attr::M(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| v.equals(w)))
            }
            (Attr::L(a), Attr::L(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            (a, b) => a == b,
        }
    }

    /// Order as `<`, `<=`, `>`, `>=` and `BETWEEN` see it: defined for two
    /// numbers, two strings (by UTF-8 bytes) or two binaries; `None`
    /// otherwise, which makes the comparison false.
    pub fn order(&self, other: &Attr) -> Option<Ordering> {
        match (self, other) {
            (Attr::N(a), Attr::N(b)) => Some(Decimal::parse(a).ok()?.cmp(&Decimal::parse(b).ok()?)),
            (Attr::S(a), Attr::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Attr::B(a), Attr::B(b)) => Some(bytes(a).cmp(&bytes(b))),
            _ => None,
        }
    }

    /// `size(path)`: bytes of a string or binary, elements of a set, list
    /// or map; `None` for other types.
    pub fn size(&self) -> Option<usize> {
        match self {
            Attr::S(s) => Some(s.len()),
            Attr::B(b) => Some(bytes(b).len()),
            Attr::Ss(v) | Attr::Ns(v) | Attr::Bs(v) => Some(v.len()),
            Attr::L(l) => Some(l.len()),
            Attr::M(m) => Some(m.len()),
            _ => None,
        }
    }

    /// `contains(path, operand)`: a substring of a string, an element of a
    /// set of the operand's type, or an element of a list.
    pub fn contains(&self, operand: &Attr) -> bool {
        match (self, operand) {
            (Attr::S(s), Attr::S(sub)) => s.contains(sub.as_str()),
            (Attr::Ss(set), Attr::S(x)) => set.contains(x),
            (Attr::Ns(set), Attr::N(x)) => set.iter().any(|n| numbers_equal(n, x)),
            (Attr::Bs(set), Attr::B(x)) => set.iter().any(|b| bytes(b) == bytes(x)),
            (Attr::L(list), x) => list.iter().any(|e| e.equals(x)),
            _ => false,
        }
    }

    /// `begins_with(path, operand)` on strings and binaries.
    pub fn begins_with(&self, prefix: &Attr) -> bool {
        match (self, prefix) {
            (Attr::S(s), Attr::S(p)) => s.starts_with(p.as_str()),
            (Attr::B(b), Attr::B(p)) => bytes(b).starts_with(&bytes(p)),
            _ => false,
        }
    }
}

fn numbers_equal(a: &str, b: &str) -> bool {
    match (Decimal::parse(a), Decimal::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// An item with every value normalised.
pub(crate) fn normalized_item(item: Item) -> Result<Item, ApiError> {
    item.into_iter()
        .map(|(k, v)| Ok((k, v.normalized()?)))
        .collect()
}

/// An item as JSON.
pub(crate) fn item_json(item: &Item) -> serde_json::Value {
    serde_json::to_value(item).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(json: &str) -> Attr {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_wire_form_round_trips() {
        for json in [
            r#"{"S":"x"}"#,
            r#"{"N":"1.5"}"#,
            r#"{"SS":["a","b"]}"#,
            r#"{"M":{"a":{"BOOL":true},"b":{"NULL":true}}}"#,
            r#"{"L":[{"N":"1"},{"B":"AAE="}]}"#,
        ] {
            assert_eq!(serde_json::to_string(&attr(json)).unwrap(), json);
        }
        assert!(serde_json::from_str::<Attr>(r#"{"X":"1"}"#).is_err());
    }

    #[test]
    fn values_are_stored_normalised_and_invalid_ones_refused() {
        assert_eq!(
            attr(r#"{"N":"01.50"}"#).normalized().unwrap(),
            Attr::N("1.5".into())
        );
        assert_eq!(
            attr(r#"{"M":{"n":{"NS":["1.0","2"]}}}"#)
                .normalized()
                .unwrap(),
            attr(r#"{"M":{"n":{"NS":["1","2"]}}}"#)
        );
        for bad in [
            r#"{"SS":[]}"#,
            r#"{"SS":["a","a"]}"#,
            r#"{"NS":["1","1.0"]}"#,
            r#"{"N":"one"}"#,
            r#"{"NULL":false}"#,
        ] {
            let e = attr(bad).normalized().unwrap_err();
            assert_eq!(e.code, "ValidationException", "{bad}");
        }
    }

    #[test]
    fn comparisons_follow_the_types() {
        assert!(attr(r#"{"N":"10"}"#).equals(&attr(r#"{"N":"10.0"}"#)));
        assert!(attr(r#"{"SS":["a","b"]}"#).equals(&attr(r#"{"SS":["b","a"]}"#)));
        assert!(!attr(r#"{"S":"1"}"#).equals(&attr(r#"{"N":"1"}"#)));
        assert_eq!(
            attr(r#"{"N":"9"}"#).order(&attr(r#"{"N":"10"}"#)),
            Some(Ordering::Less)
        );
        assert_eq!(
            attr(r#"{"S":"9"}"#).order(&attr(r#"{"S":"10"}"#)),
            Some(Ordering::Greater)
        );
        assert_eq!(attr(r#"{"S":"1"}"#).order(&attr(r#"{"N":"1"}"#)), None);
    }

    #[test]
    fn functions_see_sets_strings_and_lists() {
        let ids = attr(r#"{"SS":["m1","m2"]}"#);
        assert_eq!(ids.size(), Some(2));
        assert!(ids.contains(&Attr::S("m2".into())));
        assert!(!ids.contains(&Attr::S("m3".into())));
        assert!(attr(r#"{"S":"mail-sent#1"}"#).begins_with(&Attr::S("mail-".into())));
        assert!(attr(r#"{"S":"abc"}"#).contains(&Attr::S("bc".into())));
        assert!(attr(r#"{"L":[{"N":"1"}]}"#).contains(&Attr::N("1.0".into())));
        assert_eq!(attr(r#"{"S":"é"}"#).size(), Some(2));
        assert_eq!(attr(r#"{"BOOL":true}"#).size(), None);
    }
}
