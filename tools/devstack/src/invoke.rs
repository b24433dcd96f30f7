//! Calls functions through the Lambda Invoke API (`POST
//! /2015-03-31/functions/{name}/invocations`), as served by `cargo lambda
//! watch` (and by AWS).
//!
//! The runner bounds every invocation by the function's timeout (see
//! [`crate::runner`]); the deadline it hands to [`Invoke::invoke`] is the
//! one Lambda would put in `Lambda-Runtime-Deadline-Ms`. In-process invokers
//! pass it to the handler; the Invoke API has no way to carry it, so
//! `cargo lambda watch` gives its functions a fixed deadline of its own and
//! only the runner's cut enforces the timeout there.

use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use thiserror::Error;

/// Something that runs a function on a payload: the Invoke API of `cargo
/// lambda watch` ([`Invoker`]) or, in tests, the handlers in-process.
pub trait Invoke: Send + Sync + 'static {
    /// Invokes `function` synchronously with `payload`; `deadline_ms` is the
    /// time (Unix epoch, milliseconds) at which Lambda would cut it off.
    fn invoke(
        &self,
        function: &str,
        payload: Value,
        deadline_ms: u64,
    ) -> impl Future<Output = Result<Invocation, InvokeError>> + Send;
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function returned; its response payload.
    Response(Value),
    /// The function returned an error (Lambda's `X-Amz-Function-Error`).
    FunctionError {
        /// `errorType` of the error payload.
        error_type: String,
        /// `errorMessage` of the error payload.
        message: String,
    },
    /// The function ran past its timeout and was cut off (made by the
    /// runner, never by an invoker): Lambda reports it as a function error.
    TimedOut {
        /// The timeout it exceeded.
        after: Duration,
    },
}

impl Invocation {
    /// The error type Lambda reports for a timed-out invocation.
    pub const TIMEOUT_ERROR_TYPE: &'static str = "Sandbox.Timedout";
}

/// The invocation did not reach the function (or its answer did not come back).
#[derive(Debug, Error)]
#[error("invoking {function} failed: {reason}")]
pub struct InvokeError {
    /// The function.
    pub function: String,
    /// Why.
    pub reason: String,
}

/// An Invoke API client.
#[derive(Debug, Clone)]
pub struct Invoker {
    http: reqwest::Client,
    base_url: String,
}

impl Invoker {
    /// A client for the Invoke API at `base_url` (e.g. `http://127.0.0.1:9000`).
    /// `timeout` bounds one invocation; the first one may include compiling
    /// the function under `cargo lambda watch`, so keep it generous.
    pub fn new(base_url: impl Into<String>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }
}

impl Invoke for Invoker {
    /// The Invoke API cannot carry `_deadline_ms` (see the module docs).
    async fn invoke(
        &self,
        function: &str,
        payload: Value,
        _deadline_ms: u64,
    ) -> Result<Invocation, InvokeError> {
        let error = |reason: String| InvokeError {
            function: function.to_owned(),
            reason,
        };
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.base_url
        );
        let response = self
            .http
            .post(url)
            .json(&payload)
            .send()
            .await
            .map_err(|e| error(e.to_string()))?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let body = response.bytes().await.map_err(|e| error(e.to_string()))?;
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        let is_error_payload =
            value.get("errorType").is_some() || value.get("errorMessage").is_some();
        if function_error || (!status.is_success() && is_error_payload) {
            let field = |name: &str| {
                value
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            return Ok(Invocation::FunctionError {
                error_type: field("errorType"),
                message: field("errorMessage"),
            });
        }
        if !status.is_success() {
            return Err(error(format!("HTTP {status}: {value}")));
        }
        Ok(Invocation::Response(value))
    }
}
