//! Signup parsing: every field rule, the seed shape, oversized and
//! malformed bodies, and redaction in debug output.

use super::*;

fn err(body: &str) -> String {
    Signup::parse(body).unwrap_err().to_string()
}

#[test]
fn parses_a_valid_signup_and_normalises_it() {
    let s = Signup::parse(
        r#"{"user_id":"u-1_A","email":"  Ada.L+tag@Example.COM ","name":"  Ada Lovelace ","extra":1}"#,
    )
    .unwrap();
    assert_eq!(s.user_id.as_str(), "u-1_A");
    assert_eq!(s.email.as_str(), "Ada.L+tag@example.com");
    assert_eq!(s.name.as_str(), "Ada Lovelace");
}

#[test]
fn accepts_unicode_names() {
    for name in [
        "Zoë Ørsted",
        "山田太郎",
        "Ἀλέξανδρος",
        "👩‍💻 Dev",
        "O'Brien <3",
    ] {
        let body = serde_json::json!({"user_id":"u1","email":"a@b.io","name":name}).to_string();
        assert_eq!(Signup::parse(&body).unwrap().name.as_str(), name);
    }
}

#[test]
fn names_the_field_and_rule() {
    assert_eq!(
        err(r#"{"email":"a@b.io","name":"A"}"#),
        "user_id: is required"
    );
    assert_eq!(
        err(r#"{"user_id":null,"email":"a@b.io","name":"A"}"#),
        "user_id: is required"
    );
    assert_eq!(
        err(r#"{"user_id":"u 1","email":"a@b.io","name":"A"}"#),
        "user_id: may only contain letters, digits, '-' and '_'"
    );
    assert_eq!(
        err(r#"{"user_id":"u1","email":"not-an-email","name":"A"}"#),
        "email: not a valid address"
    );
    assert_eq!(
        err(r#"{"user_id":"u1","email":"a@b.io","name":"   "}"#),
        "name: must not be empty"
    );
    assert_eq!(
        err(r#"{"user_id":"u1","email":"a@b.io","name":"a\u0007b"}"#),
        "name: must not contain control characters or line breaks"
    );
}

#[test]
fn seed_shape_with_id_is_accepted() {
    let s = Signup::parse(r#"{"id":"u-1","email":"ada@example.com","name":"Ada"}"#).unwrap();
    assert_eq!(s.user_id.as_str(), "u-1");
    let both = Signup::parse(r#"{"id":"u-1","user_id":"u-1","email":"a@b.io","name":"A"}"#);
    assert_eq!(both.unwrap().user_id.as_str(), "u-1");
    assert_eq!(
        err(r#"{"id":"u-1","user_id":"u-2","email":"a@b.io","name":"A"}"#),
        "user_id: differs from id, its alias: send one of them"
    );
    assert_eq!(
        err(r#"{"id":"u 1","email":"a@b.io","name":"A"}"#),
        "user_id: may only contain letters, digits, '-' and '_'"
    );
    assert_eq!(
        err(r#"{"id":7,"email":"a@b.io","name":"A"}"#),
        "id: must be a string"
    );
}

#[test]
fn every_invalid_field_is_named() {
    let e = Signup::parse(r#"{"user_id":"u1","email":"ada@","name":null}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "email: not a valid address; name: is required"
    );
    assert_eq!(e.code(), "InvalidFields");
    assert_eq!(e.fields(), vec!["email", "name"]);
    let e = Signup::parse(r#"{"user_id":"u 1","email":7,"name":"a\u2028b"}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "user_id: may only contain letters, digits, '-' and '_'; email: must be a string; \
         name: must not contain control characters or line breaks"
    );
    assert_eq!(e.fields(), vec!["user_id", "email", "name"]);
    assert_eq!(
        err("{}"),
        "user_id: is required; email: is required; name: is required"
    );
}

#[test]
fn repeated_fields_are_refused() {
    let e = Signup::parse(r#"{"user_id":"u1","email":"a@b.io","email":"evil@b.io","name":"A"}"#)
        .unwrap_err();
    assert_eq!(e.to_string(), "email: appears more than once");
    assert_eq!(e.fields(), vec!["email"]);
}

#[test]
fn bidi_and_zero_width_names_are_refused() {
    let bidi = "must not contain bidirectional control characters";
    let invisible = "must not contain invisible characters";
    let control = "must not contain control characters or line breaks";
    for (name, rule) in [
        ("Ada\u{202E}nimda", bidi),
        ("Ada\u{2066}x\u{2069}", bidi),
        ("\u{200F}Ada", bidi),
        ("A\u{061C}da", bidi),
        ("Ad\u{200B}a", invisible),
        ("Ad\u{FEFF}a", invisible),
        ("Ad\u{00AD}a", invisible),
        ("Ad\u{2060}a", invisible),
        ("Ada\u{E0041}\u{E0042}", invisible),
        ("Ada\u{3164}", invisible),
        ("ev\u{200C}il", invisible),
        ("Ada\u{200D}", invisible),
        ("é\u{200D}\u{200D}é", invisible),
        ("Ada\r\nBcc: x", control),
        ("Ada\tLovelace", control),
        ("Ada\u{0085}x", control),
        ("Ada\u{2029}x", control),
    ] {
        assert_eq!(
            DisplayName::parse(name),
            Err(FieldError::new("name", rule)),
            "{name:?}"
        );
    }
}

#[test]
fn joiners_inside_emoji_and_scripts_are_kept() {
    for name in ["👩\u{200D}💻 Dev", "می\u{200C}خواهم", "क्\u{200D}ष"] {
        assert_eq!(DisplayName::parse(name).unwrap().as_str(), name);
    }
}

#[test]
fn stored_names_stay_readable_when_rules_tighten() {
    for (stored, read) in [
        ("Ada Lovelace", "Ada Lovelace"),
        ("Ada\u{202E}nimda", "Adanimda"),
        ("Ada\r\nLovelace", "Ada  Lovelace"),
        ("\u{200B}\u{FEFF}", DisplayName::PLACEHOLDER),
        ("", DisplayName::PLACEHOLDER),
        (" Ad\u{200C}a ", "Ada"),
        ("👩\u{200D}💻", "👩\u{200D}💻"),
    ] {
        assert_eq!(
            DisplayName::from_stored(stored).as_str(),
            read,
            "{stored:?}"
        );
    }
    let long = "é".repeat(150);
    assert_eq!(
        DisplayName::from_stored(&long).as_str().chars().count(),
        100
    );
    assert_eq!(
        EmailAddress::from_stored(" Old.Rules@Example.com\r\n").as_str(),
        "Old.Rules@Example.com"
    );
}

#[test]
fn enforces_length_limits_at_the_boundary() {
    let id64 = "a".repeat(64);
    let body = |id: &str, email: &str, name: &str| {
        serde_json::json!({"user_id":id,"email":email,"name":name}).to_string()
    };
    assert!(Signup::parse(&body(&id64, "a@b.io", "A")).is_ok());
    assert_eq!(
        err(&body(&format!("{id64}a"), "a@b.io", "A")),
        "user_id: must be at most 64 characters"
    );
    let email254 = format!(
        "{}@{}.{}.{}.io",
        "l".repeat(64),
        "d".repeat(63),
        "e".repeat(63),
        "f".repeat(58)
    );
    assert_eq!(email254.len(), 254);
    assert!(Signup::parse(&body("u1", &email254, "A")).is_ok());
    assert_eq!(
        err(&body("u1", &format!("x{email254}"), "A")),
        "email: must be at most 254 characters"
    );
    let name100 = "é".repeat(100);
    assert!(Signup::parse(&body("u1", "a@b.io", &name100)).is_ok());
    assert_eq!(
        err(&body("u1", "a@b.io", &format!("{name100}é"))),
        "name: must be at most 100 characters"
    );
}

#[test]
fn rejects_implausible_addresses() {
    for bad in [
        "a@b",
        "@b.io",
        "a@",
        "a@@b.io",
        "a b@c.io",
        "a@-b.io",
        "a@b-.io",
        "a@b..io",
        ".a@b.io",
        "a.@b.io",
        "a..b@c.io",
        "a@b.1",
        "a@b.c",
        "a@ü.io",
    ] {
        assert_eq!(
            EmailAddress::parse(bad),
            Err(FieldError::new("email", "not a valid address")),
            "{bad}"
        );
    }
}

#[test]
fn malformed_json_errors_carry_no_input() {
    let secret = "ada@example.com";
    for body in [
        format!(r#"{{"user_id":"u1","email":"{secret}""#),
        format!(r#"["{secret}"]"#),
        format!(r#"{{"user_id":"u1","email":["{secret}"],"name":"A"}}"#),
        format!(r#"{{"user_id":"u1","email":"{secret}@","name":"{secret}"}}"#),
    ] {
        let message = err(&body);
        assert!(!message.contains(secret), "{message}");
    }
    assert_eq!(err("not json"), "body is not valid JSON (line 1, column 2)");
    assert_eq!(
        err(r#"["a@b.io"]"#),
        "body has the wrong shape for a signup (line 1, column 0)"
    );
    assert_eq!(
        err(r#"{"user_id":1}"#),
        "user_id: must be a string; email: is required; name: is required"
    );
}

#[test]
fn rejects_oversized_bodies_before_parsing() {
    let body = format!(
        r#"{{"user_id":"u1","email":"a@b.io","name":"A","pad":"{}"}}"#,
        "x".repeat(crate::MAX_MESSAGE_BYTES)
    );
    assert!(matches!(
        Signup::parse(&body),
        Err(ParseError::TooLarge {
            limit: crate::MAX_MESSAGE_BYTES,
            ..
        })
    ));
}

#[test]
fn debug_output_redacts_personal_data() {
    let s = Signup::parse(r#"{"user_id":"u1","email":"ada@example.com","name":"Ada"}"#).unwrap();
    let debug = format!("{s:?}");
    assert!(debug.contains("u1"));
    assert!(
        !debug.contains("ada@example.com") && !debug.contains("Ada\""),
        "{debug}"
    );
}
