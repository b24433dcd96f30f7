//! Item sizes and the capacity units they consume, by DynamoDB's sizing
//! rules ("DynamoDB item sizes and formats", developer guide): an item is
//! the sum of its attribute names' UTF-8 bytes and its values' sizes; a
//! string is its UTF-8 bytes, a binary its raw bytes, a number about 1
//! byte per two significant digits plus 1, a boolean or null 1 byte, a set
//! the sum of its elements, a list or map 3 bytes plus each element's size
//! plus 1 byte per element. The number rule is DynamoDB's own
//! approximation; the rest is exact as documented.
//!
//! A write unit covers 1 KB of item, a read unit 4 KB strongly consistent
//! (half a unit eventually consistent); each call consumes at least one.

use super::attr::{Attr, Item};
use base64::Engine;

pub(crate) const WRITE_UNIT: usize = 1024;
pub(crate) const READ_UNIT: usize = 4 * 1024;

fn number_bytes(text: &str) -> usize {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

fn binary_bytes(b64: &str) -> usize {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_or(b64.len(), |b| b.len())
}

/// The size of a value, without its name.
pub(crate) fn value_size(value: &Attr) -> usize {
    match value {
        Attr::S(s) => s.len(),
        Attr::N(n) => number_bytes(n),
        Attr::B(b) => binary_bytes(b),
        Attr::Ss(v) => v.iter().map(String::len).sum(),
        Attr::Ns(v) => v.iter().map(|n| number_bytes(n)).sum(),
        Attr::Bs(v) => v.iter().map(|b| binary_bytes(b)).sum(),
        Attr::Null(_) | Attr::Bool(_) => 1,
        Attr::L(l) => 3 + l.iter().map(|e| value_size(e) + 1).sum::<usize>(),
        Attr::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
    }
}

/// The size of an item: names and values.
pub(crate) fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Write units of writing items of these sizes (the larger of the item
/// before and after, which callers pass as `bytes`): 1 per KB, at least 1.
pub(crate) fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(WRITE_UNIT).max(1) as f64
}

/// Read units of reading an item of `bytes` (0 when absent: a read still
/// costs the minimum).
pub(crate) fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// The larger of two optional items' sizes (0 when both are absent).
pub(crate) fn larger(a: Option<&Item>, b: Option<&Item>) -> usize {
    a.map_or(0, item_size).max(b.map_or(0, item_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: &str) -> Item {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn sizes_follow_the_documented_rules() {
        // "user_id" 7 + "u1" 2; "n" 1 + 3 significant digits -> 2 + 1; "ok" 2 + 1
        assert_eq!(
            item_size(&item(
                r#"{"user_id":{"S":"u1"},"n":{"N":"-1.230"},"ok":{"BOOL":true}}"#
            )),
            9 + 4 + 3
        );
        // a map: "m" 1 + 3 + ("a" 1 + "xy" 2 + 1); a list: "l" 1 + 3 + (1 + 1) + (2 + 1)
        assert_eq!(
            item_size(&item(r#"{"m":{"M":{"a":{"S":"xy"}}}}"#)),
            1 + 3 + 4
        );
        assert_eq!(
            item_size(&item(r#"{"l":{"L":[{"NULL":true},{"N":"12"}]}}"#)),
            1 + 3 + 2 + 3
        );
        // a set is its elements; a binary its raw bytes ("AAEC" is 3 bytes)
        assert_eq!(
            item_size(&item(r#"{"s":{"SS":["ab","c"]},"b":{"B":"AAEC"}}"#)),
            1 + 3 + 1 + 3
        );
        // multi-byte characters count in UTF-8 bytes
        assert_eq!(item_size(&item(r#"{"é":{"S":"é"}}"#)), 4);
    }

    #[test]
    fn a_write_unit_is_a_kb_and_a_read_unit_four() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(0, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(100, false), 0.5);
    }
}
