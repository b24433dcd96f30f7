//! What the functions sent, kept per destination until a benchmark drains
//! it: the messages of each SQS queue and the events of each EventBridge
//! bus. The backend delivers nothing by itself (no event source mapping,
//! no rule runs); a benchmark that plays Lambda drains a destination
//! (`GET /__backend/drain?queue=NAME` or `?bus=NAME`) and hands what it
//! got to the next function, so the whole pipeline runs on the backend.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// A destination's name from its name, URL or ARN: a queue URL
/// (`https://…/123456789012/q`) and a bus ARN (`arn:…:event-bus/b`) both
/// end in the name.
pub(crate) fn destination_name(name_url_or_arn: &str) -> &str {
    name_url_or_arn
        .rsplit('/')
        .next()
        .unwrap_or(name_url_or_arn)
}

/// Sent items by destination name, in the order they were accepted.
pub(crate) struct Mailboxes {
    boxes: Mutex<HashMap<String, Vec<Value>>>,
}

impl Mailboxes {
    pub fn new() -> Self {
        Self {
            boxes: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Value>>> {
        self.boxes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `items` for the destination named by `name_url_or_arn`.
    pub fn push(&self, name_url_or_arn: &str, items: impl IntoIterator<Item = Value>) {
        let name = destination_name(name_url_or_arn);
        self.lock()
            .entry(name.to_owned())
            .or_default()
            .extend(items);
    }

    /// Everything kept for the destination, oldest first; forgets it.
    pub fn drain(&self, name_url_or_arn: &str) -> Vec<Value> {
        self.lock()
            .remove(destination_name(name_url_or_arn))
            .unwrap_or_default()
    }

    /// Items waiting, by destination.
    pub fn pending(&self) -> BTreeMap<String, usize> {
        self.lock()
            .iter()
            .filter(|(_, items)| !items.is_empty())
            .map(|(name, items)| (name.clone(), items.len()))
            .collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_drain_returns_its_destinations_items_in_order_once() {
        let boxes = Mailboxes::new();
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/notifications";
        boxes.push(url, [json!(1), json!(2)]);
        boxes.push("notifications", [json!(3)]);
        boxes.push(
            "arn:aws:events:us-east-1:123456789012:event-bus/bus",
            [json!("e")],
        );
        assert_eq!(
            boxes.pending(),
            BTreeMap::from([("bus".to_owned(), 1), ("notifications".to_owned(), 3)])
        );

        assert_eq!(boxes.drain(url), [json!(1), json!(2), json!(3)]);
        assert_eq!(boxes.drain("notifications"), Vec::<Value>::new());
        assert_eq!(boxes.drain("bus"), [json!("e")]);
        assert!(boxes.pending().is_empty());

        boxes.push("q", [json!(4)]);
        boxes.clear();
        assert_eq!(boxes.drain("q"), Vec::<Value>::new());
    }
}
