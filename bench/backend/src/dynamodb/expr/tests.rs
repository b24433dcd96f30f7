//! Expressions parsed and evaluated as DynamoDB does, refusals included.

use super::*;
use crate::dynamodb::attr::Item;

fn values(pairs: &[(&str, &str)]) -> HashMap<String, Attr> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::from_str(v).unwrap()))
        .collect()
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn item(json: &str) -> Item {
    serde_json::from_str(json).unwrap()
}

fn holds(text: &str, n: &[(&str, &str)], v: &[(&str, &str)], on: &str) -> bool {
    let (n, v) = (names(n), values(v));
    let mut p = Placeholders::new(Some(&n), Some(&v));
    let c = condition(text, &mut p).unwrap();
    p.finish().unwrap();
    c.holds(&item(on))
}

/// The idempotency lock condition of crates/aws (`FREE`).
const FREE: &str = "attribute_not_exists(id) OR (#status = :completed AND expiration < :now) OR (#status = :in_progress AND in_progress_expiration < :now_ms)";

fn free(on: &str) -> bool {
    holds(
        FREE,
        &[("#status", "status")],
        &[
            (":now", r#"{"N":"1000"}"#),
            (":completed", r#"{"S":"COMPLETED"}"#),
            (":now_ms", r#"{"N":"1000000"}"#),
            (":in_progress", r#"{"S":"INPROGRESS"}"#),
        ],
        on,
    )
}

#[test]
fn the_lock_condition_frees_only_lapsed_records() {
    assert!(free("{}"));
    assert!(free(
        r#"{"id":{"S":"k"},"status":{"S":"COMPLETED"},"expiration":{"N":"999"},"in_progress_expiration":{"N":"5"}}"#
    ));
    assert!(!free(
        r#"{"id":{"S":"k"},"status":{"S":"COMPLETED"},"expiration":{"N":"1001"},"in_progress_expiration":{"N":"5"}}"#
    ));
    assert!(free(
        r#"{"id":{"S":"k"},"status":{"S":"INPROGRESS"},"expiration":{"N":"99999"},"in_progress_expiration":{"N":"999999"}}"#
    ));
    assert!(!free(
        r#"{"id":{"S":"k"},"status":{"S":"INPROGRESS"},"expiration":{"N":"1"},"in_progress_expiration":{"N":"1000001"}}"#
    ));
}

#[test]
fn the_quota_condition_counts_the_set() {
    let cond = "attribute_not_exists(#ids) OR size(#ids) < :cap OR contains(#ids, :msg_id)";
    let check = |on: &str, msg: &str| {
        holds(
            cond,
            &[("#ids", "ids")],
            &[(":cap", r#"{"N":"2"}"#), (":msg_id", msg)],
            on,
        )
    };
    assert!(check("{}", r#"{"S":"m1"}"#));
    assert!(check(r#"{"ids":{"SS":["m1"]}}"#, r#"{"S":"m2"}"#));
    assert!(!check(r#"{"ids":{"SS":["m1","m2"]}}"#, r#"{"S":"m3"}"#));
    assert!(check(r#"{"ids":{"SS":["m1","m2"]}}"#, r#"{"S":"m2"}"#));
}

#[test]
fn comparisons_with_missing_attributes_are_false_but_not_equal() {
    let v = [(":v", r#"{"S":"x"}"#)];
    assert!(!holds("a = :v", &[], &v, "{}"));
    assert!(holds("a <> :v", &[], &v, "{}"));
    assert!(!holds("a < :v", &[], &v, r#"{"a":{"N":"1"}}"#));
    assert!(holds("NOT a = :v", &[], &v, "{}"));
    assert!(holds(
        "a BETWEEN :lo AND :hi",
        &[],
        &[(":lo", r#"{"N":"1"}"#), (":hi", r#"{"N":"3"}"#)],
        r#"{"a":{"N":"2"}}"#
    ));
    assert!(holds(
        "a IN (:x, :y)",
        &[],
        &[(":x", r#"{"S":"p"}"#), (":y", r#"{"S":"q"}"#)],
        r#"{"a":{"S":"q"}}"#
    ));
    assert!(holds(
        "m.inner[1] = :v AND attribute_type(m, :t)",
        &[],
        &[(":v", r#"{"S":"x"}"#), (":t", r#"{"S":"M"}"#)],
        r#"{"m":{"M":{"inner":{"L":[{"S":"w"},{"S":"x"}]}}}}"#
    ));
}

#[test]
fn placeholders_must_be_defined_and_used() {
    let (n, v) = (
        names(&[("#a", "a"), ("#b", "b")]),
        values(&[(":v", r#"{"S":"x"}"#)]),
    );
    let mut p = Placeholders::new(Some(&n), Some(&v));
    condition("#a = :v", &mut p).unwrap();
    let e = p.finish().unwrap_err();
    assert!(e.message.contains("ExpressionAttributeNames unused"), "{e}");

    let mut p = Placeholders::new(None, None);
    let e = condition("a = :missing", &mut p).unwrap_err();
    assert!(e.message.contains("not defined"), "{e}");

    let mut p = Placeholders::new(None, None);
    for bad in ["a =", "(a = b", "a = b c", "unknown_fn(a)", "a BETWEEN b"] {
        assert_eq!(
            condition(bad, &mut p).unwrap_err().code,
            "ValidationException",
            "{bad}"
        );
    }
}

fn updated(text: &str, n: &[(&str, &str)], v: &[(&str, &str)], on: &str) -> Result<Item, ApiError> {
    let (n, v) = (names(n), values(v));
    let mut p = Placeholders::new(Some(&n), Some(&v));
    let u = update(text, &mut p)?;
    p.finish()?;
    u.apply(&item(on), &["id".to_owned()])
}

#[test]
fn updates_read_the_old_item_and_write_top_level_attributes() {
    // The announcement mark: the first time stays.
    let mark = |on: &str| {
        updated(
            "SET announced_at = if_not_exists(announced_at, :value)",
            &[],
            &[(":value", r#"{"S":"t2"}"#)],
            on,
        )
        .unwrap()
    };
    assert_eq!(
        mark(r#"{"id":{"S":"u"}}"#)["announced_at"],
        Attr::S("t2".into())
    );
    assert_eq!(
        mark(r#"{"id":{"S":"u"},"announced_at":{"S":"t1"}}"#)["announced_at"],
        Attr::S("t1".into())
    );
    // The mail quota: a set grows by one id, the expiration is set.
    let quota = updated(
        "ADD #ids :msg SET #expiration = :expiration",
        &[("#ids", "ids"), ("#expiration", "expiration")],
        &[
            (":msg", r#"{"SS":["m2"]}"#),
            (":expiration", r#"{"N":"172800"}"#),
        ],
        r#"{"id":{"S":"q"},"ids":{"SS":["m1"]}}"#,
    )
    .unwrap();
    assert_eq!(quota["ids"], Attr::Ss(vec!["m1".into(), "m2".into()]));
    assert_eq!(quota["expiration"], Attr::N("172800".into()));
    // Arithmetic, removal, set deletion emptying the set.
    let out = updated(
        "SET n = n + :one, m = :one - n REMOVE gone DELETE s :s",
        &[],
        &[(":one", r#"{"N":"1"}"#), (":s", r#"{"SS":["a"]}"#)],
        r#"{"id":{"S":"x"},"n":{"N":"41"},"gone":{"BOOL":true},"s":{"SS":["a"]}}"#,
    )
    .unwrap();
    assert_eq!(out["n"], Attr::N("42".into()));
    assert_eq!(out["m"], Attr::N("-40".into()));
    assert!(!out.contains_key("gone") && !out.contains_key("s"));
}

#[test]
fn updates_dynamodb_refuses_are_refused() {
    let v = [(":v", r#"{"S":"x"}"#)];
    for (text, values) in [
        ("SET id = :v", &v[..]),
        ("SET a = :v, a = :v", &v[..]),
        ("SET a = :v SET b = :v", &v[..]),
        ("SET a = missing", &[][..]),
        ("ADD a :v", &v[..]),
        ("SET a.b = :v", &v[..]),
    ] {
        let e = updated(text, &[], values, r#"{"id":{"S":"x"}}"#).unwrap_err();
        assert_eq!(e.code, "ValidationException", "{text}");
    }
}

#[test]
fn projections_name_top_level_attributes() {
    let n = names(&[("#s", "status")]);
    let mut p = Placeholders::new(Some(&n), None);
    assert_eq!(projection("id, #s", &mut p).unwrap(), ["id", "status"]);
    p.finish().unwrap();
}
