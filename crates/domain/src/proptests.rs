//! Property tests for every parser that takes untrusted input.
//!
//! Random strings almost never get past the first byte of a parser, so the
//! generators here build NEAR-VALID inputs: valid RFC 3339 timestamps and
//! valid signup, notification and `User Created` JSON, then apply one
//! mutation each (a multibyte character inserted at every position,
//! truncation at every prefix, an out-of-range date or time component, a
//! field duplicated, missing or of the wrong type). The properties:
//! - no input makes a parser panic;
//! - whatever parses holds valid values (it re-validates and round-trips);
//! - no error message echoes a value from the input.

use crate::{
    DisplayName, EmailAddress, Notification, NotificationKind, ParseError, Signup, Timestamp,
    UserCreated, UserId,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use time::{OffsetDateTime, UtcOffset};

/// Multibyte characters of every UTF-8 length above one (2, 3 and 4 bytes),
/// plus a bidi control and a zero-width space.
const MULTIBYTE: [char; 6] = ['é', '€', '山', '😀', '\u{202E}', '\u{200B}'];

/// Every char boundary of `s`, including both ends.
fn boundaries(s: &str) -> Vec<usize> {
    s.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .collect()
}

fn insert_at(s: &str, at: usize, c: char) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    out.push_str(&s[..at]);
    out.push(c);
    out.push_str(&s[at..]);
    out
}

// ---------------------------------------------------------------- timestamps

/// A valid RFC 3339 text and the instant it denotes (to the millisecond):
/// any instant whose local date stays within four-digit years, 0–9 fraction
/// digits, `Z`/`z` or a numeric offset.
fn valid_timestamp() -> impl Strategy<Value = (String, Timestamp)> {
    (
        86_400_000u64..Timestamp::MAX.unix_millis() - 86_400_000,
        0u32..1_000_000,
        0usize..=9,
        prop_oneof![
            Just(None),
            (-23i8..=23, 0i8..=59).prop_map(|(h, m)| Some((h, if h < 0 { -m } else { m })))
        ],
        any::<bool>(),
    )
        .prop_map(|(millis, sub_millis_nanos, digits, offset, lower_z)| {
            let nanos = i128::from(millis) * 1_000_000 + i128::from(sub_millis_nanos);
            let utc = OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("in range");
            let local = match offset {
                Some((h, m)) => utc.to_offset(UtcOffset::from_hms(h, m, 0).expect("valid offset")),
                None => utc,
            };
            let mut text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                local.year(),
                u8::from(local.month()),
                local.day(),
                local.hour(),
                local.minute(),
                local.second()
            );
            if digits > 0 {
                let fraction = format!("{:09}", local.nanosecond());
                text.push('.');
                text.push_str(&fraction[..digits]);
            }
            match offset {
                None if lower_z => text.push('z'),
                None => text.push('Z'),
                Some((h, m)) => {
                    let sign = if h < 0 || m < 0 { '-' } else { '+' };
                    text.push_str(&format!("{sign}{:02}:{:02}", h.abs(), m.abs()));
                }
            }
            let shown_millis = match digits {
                0 => 0,
                d => {
                    let kept = u64::from(local.nanosecond()) / 10u64.pow(9 - d as u32);
                    kept * 10u64.pow(9 - d as u32) / 1_000_000
                }
            };
            let expected = Timestamp::from_unix_millis(millis / 1000 * 1000 + shown_millis);
            (text, expected)
        })
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A timestamp with exactly one component out of its range.
fn impossible_timestamp() -> impl Strategy<Value = String> {
    (1970u64..=9999, 1u64..=12, 0usize..5, 0u64..100).prop_map(|(year, month, which, n)| {
        let mut parts = [year, month, 1, 12, 30, 30];
        match which {
            0 => parts[1] = if n % 2 == 0 { 0 } else { 13 + n % 87 },
            1 => {
                parts[2] = if n % 2 == 0 {
                    0
                } else {
                    days_in_month(year, month) + 1 + n % 60
                }
            }
            2 => parts[3] = 24 + n % 76,
            3 => parts[4] = 60 + n % 40,
            _ => parts[5] = 61 + n % 39,
        }
        let [y, mo, d, h, mi, s] = parts;
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    })
}

/// What may or may not be a timestamp: valid ones (the date/time separator
/// in either case), valid ones with one byte replaced by a byte of the
/// timestamp alphabet (a digit, a separator, a sign, a zone letter), and
/// arbitrary text. The first kind always parses and the second often does,
/// so a property over "whatever parses" is exercised on real timestamps
/// (`the_timestamp_like_generator_reaches_valid_timestamps` checks it).
fn timestamp_like() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (valid_timestamp(), any::<bool>()).prop_map(|((text, _), lower_t)| {
            if lower_t {
                text.replacen('T', "t", 1)
            } else {
                text
            }
        }),
        2 => (
            valid_timestamp(),
            any::<prop::sample::Index>(),
            prop::sample::select(b"0123456789T:.Zz+-t ".to_vec()),
        )
            .prop_map(|((text, _), at, byte)| {
                // The text is ASCII, so replacing one byte keeps it UTF-8.
                let mut bytes = text.into_bytes();
                let at = at.index(bytes.len());
                bytes[at] = byte;
                String::from_utf8(bytes).unwrap_or_default()
            }),
        1 => "[0-9T:.Zz+-]{0,30}|\\PC{0,40}",
    ]
}

#[test]
fn the_timestamp_like_generator_reaches_valid_timestamps() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = timestamp_like();
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..256 {
        let text = strategy.new_tree(&mut runner).expect("a value").current();
        match Timestamp::parse_rfc3339(&text) {
            Some(_) => valid += 1,
            None => invalid += 1,
        }
    }
    // About half are valid timestamps, more with the harmless mutations.
    assert!(valid >= 96, "{valid} of 256 parsed");
    assert!(invalid >= 32, "{invalid} of 256 were refused");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_timestamps_parse_to_their_instant((text, expected) in valid_timestamp()) {
        prop_assert_eq!(Timestamp::parse_rfc3339(&text), Some(expected), "{}", text);
    }

    #[test]
    fn a_multibyte_character_anywhere_in_a_timestamp_is_refused(
        (text, _) in valid_timestamp(),
        c in prop::sample::select(MULTIBYTE.to_vec()),
    ) {
        for at in boundaries(&text) {
            let mutated = insert_at(&text, at, c);
            prop_assert_eq!(Timestamp::parse_rfc3339(&mutated), None, "{}", mutated);
        }
    }

    #[test]
    fn every_strict_prefix_of_a_timestamp_is_refused((text, _) in valid_timestamp()) {
        for at in boundaries(&text).into_iter().filter(|&at| at < text.len()) {
            prop_assert_eq!(Timestamp::parse_rfc3339(&text[..at]), None, "{}", &text[..at]);
        }
    }

    #[test]
    fn out_of_range_components_are_refused(text in impossible_timestamp()) {
        prop_assert_eq!(Timestamp::parse_rfc3339(&text), None, "{}", text);
    }

    #[test]
    fn whatever_parses_as_a_timestamp_round_trips(text in timestamp_like()) {
        if let Some(ts) = Timestamp::parse_rfc3339(&text) {
            prop_assert_eq!(Timestamp::parse_rfc3339(&ts.to_string()), Some(ts));
        }
    }

    #[test]
    fn timestamps_round_trip(millis in 0u64..=Timestamp::MAX.unix_millis()) {
        let ts = Timestamp::from_unix_millis(millis);
        prop_assert_eq!(Timestamp::parse_rfc3339(&ts.to_string()), Some(ts));
        prop_assert_eq!(&ts.utc_date(), &ts.to_string()[..10]);
    }
}

// ------------------------------------------------------------- JSON messages

/// Values a valid message carries; each is long and distinctive enough
/// that finding it in an error message is a leak, not chance.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    email: String,
    name: String,
}

fn person() -> impl Strategy<Value = Person> {
    (
        "u-[0-9a-f]{8,20}",
        "[a-z][a-z0-9.+_-]{4,20}[a-z0-9]",
        "[a-z][a-z0-9-]{2,15}[a-z0-9]\\.(io|com|example|co\\.uk)",
        prop_oneof![
            "[A-Z][a-z]{5,12} [A-Z][a-z]{2,12}",
            (
                "[A-Z][a-z]{5,12}",
                prop::sample::select(vec![
                    " Zoë Ørsted",
                    " 山田太郎",
                    " Ἀλέξανδρος",
                    " 👩\u{200D}💻",
                    " می\u{200C}خواهم",
                    " O'Brien <3",
                ])
            )
                .prop_map(|(a, b)| format!("{a}{b}")),
        ],
    )
        .prop_filter("plausible local part", |(_, local, _, _)| {
            !local.contains("..")
        })
        .prop_map(|(id, local, domain, name)| Person {
            id,
            email: format!("{local}@{domain}"),
            name,
        })
}

/// The values of `p` that must never appear in an error message.
fn secrets(p: &Person) -> [&str; 3] {
    [p.id.as_str(), p.email.as_str(), p.name.as_str()]
}

fn assert_no_echo(error: &ParseError, p: &Person) -> Result<(), TestCaseError> {
    let message = error.to_string();
    for secret in secrets(p) {
        prop_assert!(!message.contains(secret), "{message} echoes {secret}");
    }
    Ok(())
}

/// A parsed signup is valid: each value re-validates as itself, and the
/// signup round-trips through its JSON form.
fn assert_valid_signup(s: &Signup) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        UserId::parse(s.user_id.as_str()).ok(),
        Some(s.user_id.clone())
    );
    prop_assert_eq!(
        EmailAddress::parse(s.email.as_str()).ok(),
        Some(s.email.clone())
    );
    prop_assert_eq!(
        DisplayName::parse(s.name.as_str()).ok(),
        Some(s.name.clone())
    );
    let body = json!({"user_id": s.user_id, "email": s.email, "name": s.name}).to_string();
    prop_assert_eq!(Signup::parse(&body).ok(), Some(s.clone()));
    Ok(())
}

fn signup_body(p: &Person, id_key: &str) -> String {
    // Built by hand so the key order (and so every position) is fixed.
    format!(
        r#"{{"{id_key}":{},"email":{},"name":{}}}"#,
        json!(p.id),
        json!(p.email),
        json!(p.name)
    )
}

fn detail(p: &Person, created_at: &str) -> Value {
    json!({"user_id": p.id, "email": p.email, "name": p.name, "created_at": created_at})
}

/// A detail as user-processor publishes it: with where, whose home and why.
fn published_detail(p: &Person, created_at: &str) -> Value {
    let mut d = detail(p, created_at);
    d["origin_region"] = json!("us-west-2");
    d["home_region"] = json!("eu-west-1");
    d["event_key"] = json!(format!("user-created/{}", p.id));
    d["correlation_id"] = json!("11111111-1111-4111-8111-111111111111");
    d
}

/// `detail` (one field of a valid one mutated) parses into an event that
/// round-trips, or is refused naming `field` alone and echoing nothing.
fn assert_detail_parses_or_names(
    detail: &Value,
    p: &Person,
    field: &'static str,
) -> Result<(), TestCaseError> {
    match UserCreated::from_detail(detail) {
        Ok(event) => {
            let round: Value = serde_json::from_str(&event.to_detail_json())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(UserCreated::from_detail(&round).ok(), Some(event));
        }
        Err(e) => {
            assert_no_echo(&e, p)?;
            prop_assert_eq!(e.fields(), vec![field]);
        }
    }
    Ok(())
}

const SIGNUP_FIELDS: [&str; 3] = ["user_id", "email", "name"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn valid_signups_parse_in_both_shapes(p in person(), seed_shape in any::<bool>()) {
        let body = signup_body(&p, if seed_shape { "id" } else { "user_id" });
        let signup = Signup::parse(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(signup.user_id.as_str(), p.id.as_str());
        prop_assert_eq!(signup.email.as_str(), p.email.as_str());
        prop_assert_eq!(signup.name.as_str(), p.name.as_str());
        assert_valid_signup(&signup)?;
    }

    #[test]
    fn a_multibyte_character_anywhere_in_a_signup_never_panics_or_leaks(
        p in person(),
        c in prop::sample::select(MULTIBYTE.to_vec()),
    ) {
        let body = signup_body(&p, "user_id");
        for at in boundaries(&body) {
            match Signup::parse(&insert_at(&body, at, c)) {
                Ok(signup) => assert_valid_signup(&signup)?,
                Err(e) => assert_no_echo(&e, &p)?,
            }
        }
    }

    #[test]
    fn every_strict_prefix_of_a_signup_is_refused_without_leaking(p in person()) {
        let body = signup_body(&p, "user_id");
        for at in boundaries(&body).into_iter().filter(|&at| at < body.len()) {
            let error = Signup::parse(&body[..at]).err();
            prop_assert!(error.is_some(), "prefix {} parsed", &body[..at]);
            if let Some(e) = error {
                assert_no_echo(&e, &p)?;
            }
        }
    }

    #[test]
    fn a_missing_repeated_or_mistyped_field_is_named(
        p in person(),
        field in prop::sample::select(SIGNUP_FIELDS.to_vec()),
        mutation in 0usize..4,
    ) {
        let mut object = json!({"user_id": p.id, "email": p.email, "name": p.name});
        let body = match mutation {
            0 => { object.as_object_mut().map(|o| o.remove(field)); object.to_string() }
            1 => { object[field] = json!(42); object.to_string() }
            2 => { object[field] = json!([p.email]); object.to_string() }
            // A repeated key: serde_json's Value cannot hold one, so splice it in.
            _ => format!(r#"{{"{field}":"x",{}"#, &object.to_string()[1..]),
        };
        let error = Signup::parse(&body).err().ok_or_else(|| TestCaseError::fail("parsed"))?;
        prop_assert_eq!(error.code(), "InvalidFields");
        prop_assert_eq!(error.fields(), vec![field]);
        assert_no_echo(&error, &p)?;
    }

    #[test]
    fn notifications_near_valid_never_panic_and_round_trip(
        p in person(),
        c in prop::sample::select(MULTIBYTE.to_vec()),
    ) {
        let Ok(user_id) = UserId::parse(&p.id) else { return Err(TestCaseError::fail("bad id")) };
        let body = Notification::new(user_id, NotificationKind::SignupConfirmation).to_json();
        for at in boundaries(&body) {
            for mutated in [insert_at(&body, at, c), body[..at].to_owned()] {
                if let Ok(n) = Notification::parse(&mutated) {
                    prop_assert_eq!(Notification::parse(&n.to_json()).ok(), Some(n));
                }
            }
        }
    }

    #[test]
    fn user_created_details_near_valid_never_panic_or_leak(
        p in person(),
        (created_at, _) in valid_timestamp(),
        c in prop::sample::select(MULTIBYTE.to_vec()),
        field in prop::sample::select(vec!["user_id", "email", "name", "created_at"]),
    ) {
        let valid = detail(&p, &created_at);
        let text = valid[field].as_str().unwrap_or_default().to_owned();
        for at in boundaries(&text) {
            for value in [insert_at(&text, at, c), text[..at].to_owned()] {
                let mut mutated = valid.clone();
                mutated[field] = json!(value);
                assert_detail_parses_or_names(&mutated, &p, field)?;
            }
        }
    }

    #[test]
    fn published_details_near_valid_never_panic_or_leak_and_name_the_field(
        p in person(),
        (created_at, _) in valid_timestamp(),
        c in prop::sample::select(MULTIBYTE.to_vec()),
        field in prop::sample::select(vec!["origin_region", "home_region", "event_key", "correlation_id"]),
    ) {
        let valid = published_detail(&p, &created_at);
        let event = UserCreated::from_detail(&valid).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let published: Value = serde_json::from_str(&event.to_detail_json())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for key in ["origin_region", "home_region", "event_key", "correlation_id"] {
            prop_assert_eq!(&published[key], &valid[key]);
        }
        let text = valid[field].as_str().unwrap_or_default().to_owned();
        for at in boundaries(&text) {
            for value in [json!(insert_at(&text, at, c)), json!(&text[..at]), json!(42)] {
                let mut mutated = valid.clone();
                mutated[field] = value;
                assert_detail_parses_or_names(&mutated, &p, field)?;
            }
        }
    }

    #[test]
    fn a_user_created_without_created_at_needs_the_envelope_time(
        p in person(),
        millis in 0u64..=Timestamp::MAX.unix_millis(),
    ) {
        let mut d = detail(&p, "");
        d.as_object_mut().map(|o| o.remove("created_at"));
        let time = Timestamp::from_unix_millis(millis);
        prop_assert_eq!(UserCreated::from_detail_at(&d, Some(time)).map(|e| e.created_at), Ok(time));
        let error = UserCreated::from_detail(&d).err();
        prop_assert_eq!(error.map(|e| e.fields()), Some(vec!["created_at"]));
    }
}

// ------------------------------------------------------------- any input

/// JSON values of any shape, with strings that look like personal data.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9 ._@<>&'\"-]{0,40}".prop_map(Value::String),
        "\\PC{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("user_id".to_owned()),
                    Just("id".to_owned()),
                    Just("email".to_owned()),
                    Just("name".to_owned()),
                    Just("created_at".to_owned()),
                    Just("kind".to_owned()),
                    Just("notification_id".to_owned()),
                    Just("origin_region".to_owned()),
                    Just("event_key".to_owned()),
                    Just("correlation_id".to_owned()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings of the input long enough that finding one in a message is not chance.
fn leaked<'a>(value: &'a Value, message: &str) -> Option<&'a str> {
    match value {
        Value::String(s) if s.chars().count() >= 6 && message.contains(s.as_str()) => Some(s),
        Value::Array(items) => items.iter().find_map(|v| leaked(v, message)),
        Value::Object(map) => map.values().find_map(|v| leaked(v, message)),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic_on_any_text(body in "\\PC{0,200}") {
        let _ = Signup::parse(&body);
        let _ = Notification::parse(&body);
        let _ = Timestamp::parse_rfc3339(&body);
        let _ = DisplayName::parse(&body);
        let _ = EmailAddress::parse(&body);
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
    fn a_stored_name_always_reads_back_as_a_valid_name(raw in "\\PC{0,150}|[ -~\u{200B}-\u{200F}\u{202A}-\u{202E}\u{2066}-\u{2069}\r\n\t]{0,120}") {
        let read = DisplayName::from_stored(&raw);
        prop_assert_eq!(DisplayName::parse(read.as_str()).ok(), Some(read.clone()));
        if let Ok(valid) = DisplayName::parse(&raw) {
            prop_assert_eq!(read, valid, "a valid name is read back unchanged");
        }
    }

    #[test]
    fn a_valid_address_reads_back_unchanged(p in person()) {
        let valid = EmailAddress::parse(&p.email).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(EmailAddress::from_stored(valid.as_str()), valid);
    }
}
