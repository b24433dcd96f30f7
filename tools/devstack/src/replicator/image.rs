//! Stream images as items of the DynamoDB API.

use crate::last_writer_wins::Item;
use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;

/// A stream image as the DynamoDB API takes it (the two SDK crates have one
/// attribute type each).
pub fn item(
    image: &std::collections::HashMap<String, StreamValue>,
) -> Result<Item, UnknownAttribute> {
    image
        .iter()
        .map(|(k, v)| Ok((k.clone(), value(v)?)))
        .collect()
}

/// A stream attribute of a type this SDK version does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAttribute;

fn value(v: &StreamValue) -> Result<aws_sdk_dynamodb::types::AttributeValue, UnknownAttribute> {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    Ok(match v {
        StreamValue::S(s) => V::S(s.clone()),
        StreamValue::N(n) => V::N(n.clone()),
        StreamValue::B(b) => V::B(b.clone()),
        StreamValue::Bool(b) => V::Bool(*b),
        StreamValue::Null(n) => V::Null(*n),
        StreamValue::Ss(s) => V::Ss(s.clone()),
        StreamValue::Ns(n) => V::Ns(n.clone()),
        StreamValue::Bs(b) => V::Bs(b.clone()),
        StreamValue::L(l) => V::L(l.iter().map(value).collect::<Result<_, _>>()?),
        StreamValue::M(m) => V::M(item(m)?),
        _ => return Err(UnknownAttribute),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as V;

    #[test]
    fn stream_images_become_items_of_the_same_shape() {
        let image = std::collections::HashMap::from([
            ("user_id".to_owned(), StreamValue::S("u-1".into())),
            ("n".to_owned(), StreamValue::N("1.50".into())),
            (
                "nested".to_owned(),
                StreamValue::M(std::collections::HashMap::from([(
                    "tags".to_owned(),
                    StreamValue::L(vec![StreamValue::Bool(true), StreamValue::Null(true)]),
                )])),
            ),
        ]);
        let item = item(&image).unwrap();
        assert_eq!(item["user_id"], V::S("u-1".into()));
        assert_eq!(item["n"], V::N("1.50".into()), "numbers keep their text");
        assert_eq!(
            item["nested"],
            V::M(std::collections::HashMap::from([(
                "tags".to_owned(),
                V::L(vec![V::Bool(true), V::Null(true)])
            )]))
        );
    }
}
