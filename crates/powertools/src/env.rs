//! Configuration from environment variables, read once per cold start.
//!
//! [`Env`] collects every problem before failing, so a misconfigured
//! function reports `missing environment variables: USERS_TABLE, EVENT_BUS_NAME`
//! in one cold start instead of one variable per deploy.
//!
//! Boolean Powertools variables (`POWERTOOLS_DEV`, `POWERTOOLS_METRICS_DISABLED`,
//! `POWERTOOLS_IDEMPOTENCY_DISABLED`) are read as Powertools reads them
//! ([`flag`]). [`Env::finish`] refuses `POWERTOOLS_IDEMPOTENCY_DISABLED` set
//! to true in AWS Lambda: disabling idempotency is for tests and local runs,
//! and a deployed function without it would repeat side effects on every
//! redelivery.

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

    /// `POWERTOOLS_IDEMPOTENCY_DISABLED` as Powertools reads it ([`flag`]):
    /// true when idempotency should be skipped. An unreadable value is
    /// recorded as invalid; [`Env::finish`] refuses true in AWS Lambda.
    pub fn idempotency_disabled(&mut self) -> bool {
        let lookup = &self.lookup;
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        match flag(&var, IDEMPOTENCY_DISABLED) {
            Ok(disabled) => disabled.unwrap_or(false),
            Err(problem) => {
                self.invalid.push(problem);
                false
            }
        }
    }

    /// Ok when every variable read so far was present and valid, and
    /// idempotency is not disabled in AWS Lambda.
    pub fn finish(mut self) -> Result<(), ConfigError> {
        let refused = {
            let var = |name: &str| (self.lookup)(name).filter(|v| !v.trim().is_empty());
            in_aws_lambda(&var) && flag(&var, IDEMPOTENCY_DISABLED) == Ok(Some(true))
        };
        if refused {
            self.invalid.push(format!(
                "{IDEMPOTENCY_DISABLED}: refused in AWS Lambda (it is for tests and local runs: \
                 a deployed function without idempotency repeats side effects on redelivery)"
            ));
        }
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

const IDEMPOTENCY_DISABLED: &str = "POWERTOOLS_IDEMPOTENCY_DISABLED";

/// A boolean variable read as Powertools reads it (Python's `strtobool`,
/// case-insensitive): `1`, `true`, `yes`, `on`, `y`, `t` are true; `0`,
/// `false`, `no`, `off`, `n`, `f` are false; unset is `None`; anything else
/// is an error naming the variable. `var` returns only non-empty values.
pub fn flag(var: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<bool>, String> {
    let Some(raw) = var(name) else {
        return Ok(None);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(Some(true)),
        "0" | "false" | "no" | "off" | "n" | "f" => Ok(Some(false)),
        _ => Err(format!(
            "{name}: {raw:?} is not a boolean (true/false, 1/0, yes/no, on/off)"
        )),
    }
}

/// Whether the process runs in AWS Lambda itself: Lambda sets
/// `AWS_LAMBDA_INITIALIZATION_TYPE` for every runtime; `cargo lambda watch`
/// does not, and `sam local` sets `AWS_SAM_LOCAL=true`.
pub fn in_aws_lambda(var: &dyn Fn(&str) -> Option<String>) -> bool {
    var("AWS_LAMBDA_INITIALIZATION_TYPE").is_some() && flag(var, "AWS_SAM_LOCAL") != Ok(Some(true))
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
    fn flags_read_like_powertools_strtobool() {
        let var = |name: &str| match name {
            "ON" => Some("On".to_owned()),
            "ONE" => Some("1".to_owned()),
            "NO" => Some("no".to_owned()),
            "F" => Some("F".to_owned()),
            "ODD" => Some("maybe".to_owned()),
            _ => None,
        };
        assert_eq!(flag(&var, "ON"), Ok(Some(true)));
        assert_eq!(flag(&var, "ONE"), Ok(Some(true)));
        assert_eq!(flag(&var, "NO"), Ok(Some(false)));
        assert_eq!(flag(&var, "F"), Ok(Some(false)));
        assert_eq!(flag(&var, "UNSET"), Ok(None));
        assert_eq!(
            flag(&var, "ODD"),
            Err("ODD: \"maybe\" is not a boolean (true/false, 1/0, yes/no, on/off)".to_owned())
        );
    }

    #[test]
    fn idempotency_can_be_disabled_outside_lambda_only() {
        let local = [
            ("POWERTOOLS_IDEMPOTENCY_DISABLED", "true"),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
        ];
        let mut env = Env::from_map(local);
        assert!(env.idempotency_disabled());
        assert_eq!(env.finish(), Ok(()));

        let sam_local = [
            ("POWERTOOLS_IDEMPOTENCY_DISABLED", "1"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_SAM_LOCAL", "true"),
        ];
        assert_eq!(Env::from_map(sam_local).finish(), Ok(()));

        let deployed = [
            ("POWERTOOLS_IDEMPOTENCY_DISABLED", "yes"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ];
        // Refused whether or not the function read the variable.
        let err = Env::from_map(deployed).finish().unwrap_err().to_string();
        assert!(
            err.starts_with("invalid environment variables: POWERTOOLS_IDEMPOTENCY_DISABLED: refused in AWS Lambda"),
            "{err}"
        );
        let off_in_lambda = [
            ("POWERTOOLS_IDEMPOTENCY_DISABLED", "false"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ];
        let mut env = Env::from_map(off_in_lambda);
        assert!(!env.idempotency_disabled());
        assert_eq!(env.finish(), Ok(()));
    }

    #[test]
    fn an_unreadable_idempotency_flag_is_invalid() {
        let mut env = Env::from_map([("POWERTOOLS_IDEMPOTENCY_DISABLED", "sometimes")]);
        assert!(!env.idempotency_disabled());
        assert!(env
            .finish()
            .unwrap_err()
            .to_string()
            .contains("POWERTOOLS_IDEMPOTENCY_DISABLED"));
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
