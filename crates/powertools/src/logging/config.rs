//! The logging settings, from Lambda's and Powertools' variables.

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, with Powertools' keys (docs/observability.md).
    Json,
    /// `tracing`'s readable text format, spans and fields included, no colours.
    Text,
}

/// What [`subscriber`](super::subscriber) logs, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// `EnvFilter` directives: a level (`info`) or per-target ones (`info,aws_smithy_runtime=warn`).
    pub filter: String,
    /// The `service` key.
    pub service: String,
    /// The `function_name` key (omitted when `None`).
    pub function_name: Option<String>,
    /// The `function_memory_size` key, in MB (omitted when `None`).
    pub function_memory_size: Option<u64>,
    /// Share of invocations logged at `DEBUG` (above 0, at most 1), also the
    /// `sampling_rate` key; `None`: no sampling.
    pub sampling_rate: Option<f64>,
    /// JSON indented by 4 spaces (`POWERTOOLS_DEV`).
    pub pretty: bool,
    /// Problems with the variables, which [`init`](super::init) logs once it is set up.
    pub warnings: Vec<String>,
}

impl LogConfig {
    /// Reads `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`,
    /// `POWERTOOLS_LOG_LEVEL`, `RUST_LOG`, `POWERTOOLS_LOGGER_SAMPLE_RATE`,
    /// `POWERTOOLS_DEV`, `POWERTOOLS_SERVICE_NAME`, `AWS_LAMBDA_FUNCTION_NAME`
    /// and `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(super) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut warnings = Vec::new();
        let format = match var("AWS_LAMBDA_LOG_FORMAT") {
            Some(f) if f.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let filter = match (
            var("AWS_LAMBDA_LOG_LEVEL"),
            var("POWERTOOLS_LOG_LEVEL"),
            var("RUST_LOG"),
        ) {
            (Some(level), _, _) | (None, Some(level), _) => level_directive(&level).to_owned(),
            (None, None, Some(directives)) => directives,
            (None, None, None) => "info".to_owned(),
        };
        let sampling_rate =
            var("POWERTOOLS_LOGGER_SAMPLE_RATE").and_then(|raw| match raw.trim().parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => (rate > 0.0).then_some(rate),
                _ => {
                    warnings.push(format!(
                        "POWERTOOLS_LOGGER_SAMPLE_RATE={raw:?} ignored: not a number from 0 to 1"
                    ));
                    None
                }
            });
        let pretty = match crate::env::flag(&var, "POWERTOOLS_DEV") {
            Ok(dev) => dev.unwrap_or(false),
            Err(problem) => {
                warnings.push(problem);
                false
            }
        };
        Self {
            format,
            filter,
            service: crate::env::service_name(&var),
            function_name: var("AWS_LAMBDA_FUNCTION_NAME"),
            function_memory_size: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .and_then(|mb| mb.trim().parse().ok()),
            sampling_rate,
            pretty,
            warnings,
        }
    }

    /// JSON lines at `INFO` for `service`, without a function name: a start for tests.
    pub fn json(service: impl Into<String>) -> Self {
        Self {
            format: LogFormat::Json,
            filter: "info".to_owned(),
            service: service.into(),
            function_name: None,
            function_memory_size: None,
            sampling_rate: None,
            pretty: false,
            warnings: Vec::new(),
        }
    }

    /// Replaces the filter directives (`"debug"`, `"warn,user_processor=info"`).
    pub fn with_filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = directives.into();
        self
    }
}

/// Lambda's and Powertools' log levels as `EnvFilter` directives; an
/// unknown level means `info`.
pub(super) fn level_directive(level: &str) -> &'static str {
    match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "FATAL" | "CRITICAL" => "error",
        _ => "info",
    }
}
