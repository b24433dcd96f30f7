//! The HTTPS client every SDK client of a process shares, with the system
//! trust store loaded by the first request instead of at start-up.
//!
//! The SDK's default client builds a TLS connector, and with it reads and
//! parses the system CA certificates, whenever a service client is
//! constructed: at init, once per service, even when every endpoint is plain
//! HTTP (the local emulator). That was half of a function's init. Here one
//! client serves every service, and its connector is built by the first call
//! and then reused. It is the SDK's own default client otherwise (rustls over
//! aws-lc, the system roots, the SDK's cipher suites, `HTTPS_PROXY`), so
//! certificates are verified exactly as before: `tests/https.rs` shows an
//! untrusted chain and a wrong name refused.
//!
//! Why the system trust store and not roots compiled in: on Lambda it is the
//! runtime image's (`provided.al2023`'s ca-certificates), which AWS keeps
//! current with the image, so a root added or distrusted reaches the
//! functions without a rebuild, and `SSL_CERT_FILE` keeps working. A
//! compiled-in set (webpki-roots) is frozen at build time, adds ~200 KB to
//! each binary, and reaches the SDK only as PEM, parsed again at start-up.

use aws_smithy_runtime::client::defaults::default_http_client_plugin_v2;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;

/// The SDK's default HTTPS client for `behavior`, its TLS set-up deferred
/// to its first request. Give one to every SDK client of a process (through
/// their [`aws_config::SdkConfig`]) so that set-up happens once. `None` if
/// the SDK was built without a default client.
pub fn https_client(behavior: BehaviorVersion) -> Option<SharedHttpClient> {
    let defaults = default_http_client_plugin_v2(behavior)?;
    let sdk_default = defaults
        .runtime_components(&RuntimeComponentsBuilder::new("eventline"))
        .http_client()?;
    Some(SharedHttpClient::new(Deferred(sdk_default)))
}

/// The SDK's client minus its eager connector build. The SDK calls
/// `validate_base_client_config` when it constructs a service client, and
/// the default client answers by building (and dropping) a connector, trust
/// store included. Here that check is the trait's default, which does
/// nothing; `http_connector` builds the connector on the first request and
/// the inner client caches it per settings (all our clients share one set
/// of timeouts, so one connector).
#[derive(Debug)]
struct Deferred(SharedHttpClient);

impl HttpClient for Deferred {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    /// The inner client's, for the User-Agent.
    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}
