//! Configuration from environment variables, read once per cold start.
//!
//! [`Env`] collects every problem before failing, so a misconfigured
//! function reports `missing environment variables: USERS_TABLE, EVENT_BUS_NAME`
//! in one cold start instead of one variable per deploy.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use thiserror::Error;

/// Configuration that could not be read.
///
/// `Debug` prints the same sentence as `Display`: `main` returns this error,
/// and Rust prints a returned error with `Debug` before exiting.
#[derive(Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Required variables that are unset or empty, plus invalid ones.
    #[error("{}", describe(.missing, .invalid))]
    Env {
        /// Names of required variables that are unset or empty.
        missing: Vec<&'static str>,
        /// `NAME: reason` for variables whose value is unusable.
        invalid: Vec<String>,
    },
}

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn describe(missing: &[&'static str], invalid: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "missing environment variables: {}",
            missing.join(", ")
        ));
    }
    if !invalid.is_empty() {
        parts.push(format!(
            "invalid environment variables: {}",
            invalid.join("; ")
        ));
    }
    parts.join("; ")
}

/// Looks a variable up by name.
type Lookup = Box<dyn Fn(&str) -> Option<String>>;

/// Reads variables from a source (the process environment, or a map in tests)
/// and remembers what was missing or invalid until [`Env::finish`].
pub struct Env {
    lookup: Lookup,
    missing: Vec<&'static str>,
    invalid: Vec<String>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self::from_fn(|name| std::env::var(name).ok())
    }

    /// Reads a fixed map (for tests).
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_fn(move |name| map.get(name).cloned())
    }

    /// Reads through `lookup`.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + 'static) -> Self {
        Self {
            lookup: Box::new(lookup),
            missing: Vec::new(),
            invalid: Vec::new(),
        }
    }

    /// The value of `name`, or `None` when unset or blank.
    pub fn optional(&mut self, name: &'static str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`; records it as missing (and returns "") when unset or blank.
    pub fn required(&mut self, name: &'static str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.missing.push(name);
            String::new()
        })
    }

    /// `name` parsed as `T`, or `default` when unset; records it as invalid when it does not parse.
    pub fn parsed_or<T>(&mut self, name: &'static str, default: T) -> T
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.optional(name) {
            None => default,
            Some(raw) => raw.parse().unwrap_or_else(|e| {
                self.invalid.push(format!("{name}: {e}"));
                default
            }),
        }
    }

    /// Records `name` as invalid with `reason` (for checks beyond parsing).
    pub fn reject(&mut self, name: &'static str, reason: impl Display) {
        self.invalid.push(format!("{name}: {reason}"));
    }

    /// Ok when every variable read so far was present and valid.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.missing.is_empty() && self.invalid.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Env {
                missing: self.missing,
                invalid: self.invalid,
            })
        }
    }
}

/// The service name when neither variable names one (Powertools' value).
pub const UNDEFINED_SERVICE: &str = "service_undefined";

/// The service name logs and metrics share: `POWERTOOLS_SERVICE_NAME`, else
/// `AWS_LAMBDA_FUNCTION_NAME`, else [`UNDEFINED_SERVICE`]; `var` returns
/// only non-empty values. It lives here, not in logging or metrics, so that
/// neither reaches into the other.
pub fn service_name(var: &dyn Fn(&str) -> Option<String>) -> String {
    var("POWERTOOLS_SERVICE_NAME")
        .or_else(|| var("AWS_LAMBDA_FUNCTION_NAME"))
        .unwrap_or_else(|| UNDEFINED_SERVICE.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_missing_and_invalid_variable_by_name() {
        let mut env = Env::from_map([("A", "x"), ("BLANK", "  "), ("N", "ten")]);
        assert_eq!(env.required("A"), "x");
        env.required("USERS_TABLE");
        env.required("BLANK");
        assert_eq!(env.parsed_or::<usize>("N", 4), 4);
        assert_eq!(env.parsed_or::<usize>("UNSET", 7), 7);
        let err = env.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing environment variables: USERS_TABLE, BLANK; \
             invalid environment variables: N: invalid digit found in string"
        );
    }

    #[test]
    fn finishes_cleanly_when_all_is_present() {
        let mut env = Env::from_map([("A", " x "), ("N", "3")]);
        assert_eq!(env.required("A"), "x");
        assert_eq!(env.parsed_or::<u8>("N", 1), 3);
        assert_eq!(env.optional("NOPE"), None);
        assert_eq!(env.finish(), Ok(()));
    }

    #[test]
    fn service_name_prefers_powertools_then_the_function_name() {
        let both = |name: &str| match name {
            "POWERTOOLS_SERVICE_NAME" => Some("signups".to_owned()),
            "AWS_LAMBDA_FUNCTION_NAME" => Some("eventline-user-processor".to_owned()),
            _ => None,
        };
        assert_eq!(service_name(&both), "signups");
        let function = |name: &str| {
            (name == "AWS_LAMBDA_FUNCTION_NAME").then(|| "eventline-user-processor".to_owned())
        };
        assert_eq!(service_name(&function), "eventline-user-processor");
        assert_eq!(service_name(&|_| None), UNDEFINED_SERVICE);
    }
}
