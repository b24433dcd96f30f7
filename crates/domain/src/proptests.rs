//! Property tests for every parser that takes untrusted input: no input
//! makes them panic, and no error message echoes a value from the input.

use crate::{Notification, Signup, Timestamp, UserCreated};
use proptest::prelude::*;

/// JSON values of any shape, with strings that look like personal data.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        "[a-zA-Z0-9 ._@<>&'\"-]{0,40}".prop_map(serde_json::Value::String),
        "\\PC{0,40}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("user_id".to_owned()),
                    Just("email".to_owned()),
                    Just("name".to_owned()),
                    Just("created_at".to_owned()),
                    Just("kind".to_owned()),
                    Just("notification_id".to_owned()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings of the input long enough that finding one in a message is not chance.
fn leaked<'a>(value: &'a serde_json::Value, message: &str) -> Option<&'a str> {
    match value {
        serde_json::Value::String(s) if s.chars().count() >= 6 && message.contains(s.as_str()) => {
            Some(s)
        }
        serde_json::Value::Array(items) => items.iter().find_map(|v| leaked(v, message)),
        serde_json::Value::Object(map) => map.values().find_map(|v| leaked(v, message)),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn signup_parser_never_panics_on_any_text(body in "\\PC{0,200}") {
        let _ = Signup::parse(&body);
        let _ = Notification::parse(&body);
        let _ = Timestamp::parse_rfc3339(&body);
    }

    #[test]
    fn parsers_never_echo_input_values(value in json_value()) {
        let text = value.to_string();
        for message in [
            Signup::parse(&text).err().map(|e| e.to_string()),
            Notification::parse(&text).err().map(|e| e.to_string()),
            UserCreated::from_detail(&value).err().map(|e| e.to_string()),
        ].into_iter().flatten() {
            prop_assert!(leaked(&value, &message).is_none(), "{message} echoes input {text}");
        }
    }

    #[test]
    fn valid_signups_round_trip_through_the_parser(
        id in "[A-Za-z0-9_-]{1,64}",
        local in "[a-z0-9.+_-]{1,20}",
        domain in "[a-z0-9]{1,20}\\.[a-z]{2,6}",
        name in "\\PC{1,100}",
    ) {
        prop_assume!(!local.starts_with('.') && !local.ends_with('.') && !local.contains(".."));
        prop_assume!(!name.trim().is_empty() && !name.chars().any(char::is_control));
        let body = serde_json::json!({"user_id": id, "email": format!("{local}@{domain}"), "name": name}).to_string();
        let signup = Signup::parse(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(signup.user_id.as_str(), id.as_str());
        prop_assert_eq!(signup.name.as_str(), name.trim());
    }

    #[test]
    fn timestamps_round_trip(millis in 0u64..253_402_300_799_999) {
        let ts = Timestamp::from_unix_millis(millis);
        prop_assert_eq!(Timestamp::parse_rfc3339(&ts.to_string()), Some(ts));
    }
}
