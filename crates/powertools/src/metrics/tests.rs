use super::*;
use serde_json::{json, Value};
use std::collections::HashMap;

fn metrics() -> Metrics {
    Metrics::new("eventline", "user-processor", "eventline-user-processor")
}

/// Parses `document` and checks it against the EMF specification;
/// returns the parsed document.
fn valid_emf(document: &str) -> Value {
    assert!(!document.contains('\n'), "one line: {document}");
    let doc: Value = serde_json::from_str(document).expect("a JSON document");
    let root = doc.as_object().expect("root is an object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    assert!(aws["Timestamp"].is_u64(), "Timestamp is an integer: {doc}");
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert!(!directives.is_empty());
    for directive in directives {
        assert!(directive["Namespace"]
            .as_str()
            .is_some_and(|n| !n.is_empty()));
        for set in directive["Dimensions"].as_array().expect("Dimensions") {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= MAX_DIMENSIONS, "{} dimensions", set.len());
            for key in set {
                let key = key.as_str().expect("dimension keys are strings");
                assert!(
                    root.get(key)
                        .and_then(Value::as_str)
                        .is_some_and(|v| !v.is_empty()),
                    "dimension {key} is a top-level string: {doc}"
                );
            }
        }
        let definitions = directive["Metrics"].as_array().expect("Metrics");
        assert!(
            definitions.len() <= MAX_METRICS_PER_DOCUMENT,
            "{} metrics",
            definitions.len()
        );
        for definition in definitions {
            let name = definition["Name"].as_str().expect("Name");
            let unit = definition["Unit"].as_str().expect("Unit");
            assert!(!unit.is_empty());
            match &root[name] {
                Value::Number(_) => {}
                Value::Array(values) => {
                    assert!(!values.is_empty() && values.len() <= MAX_VALUES_PER_METRIC);
                    assert!(values.iter().all(Value::is_number), "{name}: {values:?}");
                }
                other => panic!("metric {name} has no number or array of numbers: {other}"),
            }
        }
    }
    doc
}

fn metric_names(doc: &Value) -> Vec<String> {
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn flush_renders_one_valid_emf_document() {
    let m = metrics();
    m.add("RecordsProcessed", Unit::Count, 10.0);
    m.add("Latency", Unit::Milliseconds, 12.5);
    let documents = m.flush();
    assert_eq!(documents.len(), 1);
    let doc = valid_emf(&documents[0]);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"],
        json!([{
            "Namespace": "eventline",
            "Dimensions": [["service", "function_name"]],
            "Metrics": [
                {"Name": "RecordsProcessed", "Unit": "Count"},
                {"Name": "Latency", "Unit": "Milliseconds"}
            ]
        }])
    );
    assert_eq!(doc["service"], "user-processor");
    assert_eq!(doc["function_name"], "eventline-user-processor");
    assert_eq!(doc["RecordsProcessed"], 10);
    assert_eq!(doc["Latency"], 12.5);
    assert!(documents[0].starts_with("{\"_aws\":"), "{}", documents[0]);
    assert!(
        documents[0].contains("\"RecordsProcessed\":10,"),
        "{}",
        documents[0]
    );
}

#[test]
fn timestamp_is_the_flush_time_in_milliseconds() {
    let m = metrics();
    m.add("Sent", Unit::Count, 1.0);
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let doc = valid_emf(&m.flush()[0]);
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let timestamp = doc["_aws"]["Timestamp"].as_u64().unwrap();
    assert!(
        (before..=after).contains(&timestamp),
        "{before} <= {timestamp} <= {after}"
    );
}

#[test]
fn repeated_adds_form_an_array() {
    let m = metrics();
    m.add("Latency", Unit::Milliseconds, 3.0);
    m.add("Latency", Unit::Milliseconds, 4.5);
    m.add("Latency", Unit::Milliseconds, 5.0);
    let doc = valid_emf(&m.flush()[0]);
    assert_eq!(doc["Latency"], json!([3, 4.5, 5]));
    assert_eq!(metric_names(&doc), ["Latency"]);
}

#[test]
fn flush_clears_and_an_empty_flush_writes_nothing() {
    let m = metrics();
    m.add("Sent", Unit::Count, 1.0);
    assert_eq!(m.flush().len(), 1);
    assert!(m.flush().is_empty());
    m.add("Sent", Unit::Count, 2.0);
    let doc = valid_emf(&m.flush()[0]);
    assert_eq!(doc["Sent"], 2);
}

#[test]
fn more_than_100_metrics_split_into_documents_of_100() {
    let m = metrics();
    for i in 0..=100 {
        // Metric names are &'static str: names made at run time are leaked.
        let name: &'static str = Box::leak(format!("M{i:03}").into_boxed_str());
        m.add(name, Unit::Count, 1.0);
    }
    let documents = m.flush();
    assert_eq!(documents.len(), 2);
    let first = valid_emf(&documents[0]);
    let second = valid_emf(&documents[1]);
    assert_eq!(metric_names(&first).len(), 100);
    assert_eq!(metric_names(&second), ["M100"]);
    assert_eq!(second["M100"], 1);
    assert_eq!(second["service"], "user-processor");
}

#[test]
fn more_than_100_values_split_into_documents() {
    let m = metrics();
    for i in 0..250 {
        m.add("Latency", Unit::Milliseconds, f64::from(i));
    }
    m.add("Sent", Unit::Count, 1.0);
    let documents: Vec<Value> = m.flush().iter().map(|d| valid_emf(d)).collect();
    let lengths: Vec<usize> = documents
        .iter()
        .map(|d| d["Latency"].as_array().unwrap().len())
        .collect();
    assert_eq!(lengths, [100, 100, 50]);
    assert_eq!(documents[2]["Latency"][49], 249);
    assert_eq!(metric_names(&documents[0]), ["Latency", "Sent"]);
    assert_eq!(metric_names(&documents[1]), ["Latency"]);
}

#[test]
fn invalid_values_and_names_are_dropped() {
    let m = metrics();
    m.add("Latency", Unit::Milliseconds, f64::NAN);
    m.add("Latency", Unit::Milliseconds, f64::INFINITY);
    m.add("service", Unit::Count, 1.0);
    m.add("", Unit::Count, 1.0);
    m.add("Sent", Unit::Count, 1.0);
    m.add("Sent", Unit::Milliseconds, 2.0);
    let documents = m.flush();
    assert_eq!(documents.len(), 1);
    let doc = valid_emf(&documents[0]);
    assert_eq!(metric_names(&doc), ["Sent"]);
    assert_eq!(doc["Sent"], 1);
}

#[test]
fn dimensions_are_limited_to_30() {
    let mut m = metrics();
    for i in 2..MAX_DIMENSIONS {
        m = m.with_dimension(format!("d{i}"), "v").unwrap();
    }
    let m = m.with_dimension("d2", "replaced").unwrap();
    let err = m.with_dimension("one_too_many", "v").unwrap_err();
    assert_eq!(
        err,
        MetricsError::TooManyDimensions {
            name: "one_too_many".to_owned()
        }
    );
    let m = metrics().with_dimension("environment", "prod").unwrap();
    m.add("Sent", Unit::Count, 1.0);
    let doc = valid_emf(&m.flush()[0]);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["service", "function_name", "environment"]])
    );
    assert_eq!(doc["environment"], "prod");
    assert!(matches!(
        metrics().with_dimension("empty", ""),
        Err(MetricsError::InvalidDimension { .. })
    ));
}

#[test]
fn dimensions_with_empty_values_are_left_out() {
    let m = Metrics::new("eventline", "svc", "");
    m.add("Sent", Unit::Count, 1.0);
    let doc = valid_emf(&m.flush()[0]);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["service"]])
    );
    assert!(doc.get("function_name").is_none());
}

#[test]
fn from_env_reads_powertools_variables() {
    let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let set = vars(&[
        ("POWERTOOLS_METRICS_NAMESPACE", "signups"),
        ("AWS_LAMBDA_FUNCTION_NAME", "eventline-user-processor"),
    ]);
    let m = Metrics::from_lookup(|name| set.get(name).cloned());
    assert_eq!(m.namespace, "signups");
    assert_eq!(
        m.dimensions,
        [
            ("service".to_owned(), "eventline-user-processor".to_owned()),
            (
                "function_name".to_owned(),
                "eventline-user-processor".to_owned()
            )
        ]
    );
    let m = Metrics::from_lookup(|_| None);
    assert_eq!(m.namespace, "eventline");
    assert_eq!(
        m.dimensions,
        [("service".to_owned(), "service_undefined".to_owned())]
    );
}

#[test]
fn disabled_metrics_write_nothing_and_forget_their_values() {
    let m = metrics().disabled(true);
    m.add("Sent", Unit::Count, 1.0);
    let mut out = Vec::new();
    m.flush_to(&mut out);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert!(m.flush().is_empty(), "values are dropped at the flush");
    let enabled = metrics();
    enabled.add("Sent", Unit::Count, 1.0);
    enabled.flush_to(&mut out);
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
}

#[test]
fn metrics_disabled_decides_when_set_else_powertools_dev() {
    let disabled = |pairs: &[(&str, &str)]| {
        let set: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Metrics::from_lookup(|name| set.get(name).cloned()).disabled
    };
    let (dev, off) = ("POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED");
    assert!(!disabled(&[]));
    assert!(disabled(&[(off, "true")]));
    assert!(disabled(&[(off, "1"), (dev, "false")]));
    assert!(disabled(&[(dev, "true")]));
    assert!(!disabled(&[(dev, "true"), (off, "false")]));
    assert!(!disabled(&[(dev, "0")]));
    // Unreadable: as if unset.
    assert!(!disabled(&[(off, "maybe")]));
    assert!(disabled(&[(off, "maybe"), (dev, "on")]));
}

#[test]
fn units_are_spelled_as_cloudwatch_does() {
    assert_eq!(Unit::Count.as_str(), "Count");
    assert_eq!(Unit::CountPerSecond.as_str(), "Count/Second");
    assert_eq!(Unit::None.as_str(), "None");
}

#[test]
fn metrics_are_shared_across_threads() {
    let m = metrics();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| m.add("Sent", Unit::Count, 1.0));
        }
    });
    let doc = valid_emf(&m.flush()[0]);
    assert_eq!(doc["Sent"], json!([1, 1, 1, 1]));
}
