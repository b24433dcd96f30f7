//! Contract: the functions' HTTPS client (`eventline_aws::configure`) loads
//! the trust store on its first request, not when the clients are built, and
//! still verifies every certificate: a chain from a trusted CA is accepted; a
//! chain no trusted CA issued and a certificate for another name are refused.
//!
//! Offline: a local TLS server with the certificates in `tests/tls/`, and
//! `SSL_CERT_FILE` naming the one CA to trust. The trust store is read once
//! per process, so this binary holds this one test.

use aws_sdk_dynamodb::types::AttributeValue;
use std::error::Error as StdError;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::rustls::{
    self,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    AlertDescription, CertificateError,
};

const TLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls");

#[test]
fn the_trust_store_loads_on_first_use_and_certificates_are_verified() {
    std::env::remove_var("SSL_CERT_FILE");
    std::env::remove_var("SSL_CERT_DIR");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let trusted = Server::start("localhost").await;
        let rogue = Server::start("self-signed").await;
        let trusted_client = dynamodb(&format!("https://localhost:{}", trusted.port)).await;
        let rogue_client = dynamodb(&format!("https://localhost:{}", rogue.port)).await;
        let wrong_name_client = dynamodb(&format!("https://127.0.0.1:{}", trusted.port)).await;

        // The clients exist, no request was made: a trust store loaded by
        // now would be the system's, without this CA. (Sound to set here: no
        // other thread of this process is running, and none reads it yet.)
        std::env::set_var("SSL_CERT_FILE", format!("{TLS}/ca.pem"));

        // Trusted chain, right name: the call goes through.
        let answer = get_item(&trusted_client)
            .await
            .expect("a trusted server answers");
        assert!(answer.item.is_none());
        assert_eq!(trusted.next().await, Ok(()), "the server served the call");

        // A chain no trusted CA issued: refused, and the server was told so.
        let refused = get_item(&rogue_client).await.unwrap_err();
        assert_eq!(
            certificate_error(&refused),
            Some(&CertificateError::UnknownIssuer),
            "{refused:?}"
        );
        assert_eq!(rogue.next().await, Err(AlertDescription::UnknownCA));

        // The trusted certificate, for another name (it names localhost).
        let refused = get_item(&wrong_name_client).await.unwrap_err();
        assert!(
            matches!(
                certificate_error(&refused),
                Some(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{refused:?}"
        );
        assert_eq!(trusted.next().await, Err(AlertDescription::BadCertificate));
    });
}

/// A DynamoDB client as the functions build theirs, at `endpoint`.
async fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let sdk = eventline_aws::configure(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "test",
            )),
        Some("https-test"),
    )
    .load()
    .await;
    eventline_aws::dynamodb::client(&sdk)
}

async fn get_item(
    client: &aws_sdk_dynamodb::Client,
) -> Result<
    aws_sdk_dynamodb::operation::get_item::GetItemOutput,
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError>,
> {
    client
        .get_item()
        .table_name("users")
        .key("user_id", AttributeValue::S("u-1".into()))
        .send()
        .await
}

/// The rustls certificate error somewhere in `err`'s chain. hyper-rustls
/// nests it inside `io::Error`s, whose payload `source()` skips.
fn certificate_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CertificateError> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(rustls::Error::InvalidCertificate(found)) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| certificate_error(inner))
        {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// A TLS server on 127.0.0.1 presenting `tests/tls/<name>.pem`. Each
/// connection's outcome is reported in order: `Ok` once it answered one
/// DynamoDB call with `{}`, or the alert the client ended the handshake with.
struct Server {
    port: u16,
    outcomes: tokio::sync::Mutex<mpsc::UnboundedReceiver<Result<(), AlertDescription>>>,
}

impl Server {
    async fn start(name: &str) -> Self {
        let certs = CertificateDer::pem_file_iter(format!("{TLS}/{name}.pem"))
            .expect("the certificate file")
            .collect::<Result<Vec<_>, _>>()
            .expect("a PEM certificate");
        let key = PrivateKeyDer::from_pem_file(format!("{TLS}/{name}.key")).expect("a PEM key");
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a certificate and its key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let (report, outcomes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let outcome = match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        answer(&mut tls).await;
                        Ok(())
                    }
                    Err(e) => match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                        Some(rustls::Error::AlertReceived(alert)) => Err(*alert),
                        _ => panic!("handshake failed without an alert: {e}"),
                    },
                };
                let _ = report.send(outcome);
            }
        });
        Self {
            port,
            outcomes: tokio::sync::Mutex::new(outcomes),
        }
    }

    /// The outcome of the next connection.
    async fn next(&self) -> Result<(), AlertDescription> {
        self.outcomes
            .lock()
            .await
            .recv()
            .await
            .expect("a connection")
    }
}

/// Reads one HTTP/1.1 request and answers it with an empty JSON object (a
/// GetItem that found nothing).
async fn answer(tls: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>) {
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    let body_start = loop {
        let n = tls.read(&mut chunk).await.expect("the request");
        assert!(n > 0, "the client closed before its request ended");
        request.extend_from_slice(&chunk[..n]);
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("a content length"));
    while request.len() < body_start + length {
        let n = tls.read(&mut chunk).await.expect("the body");
        assert!(n > 0, "the client closed before its body ended");
        request.extend_from_slice(&chunk[..n]);
    }
    tls.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
          x-amzn-requestid: test\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await
    .expect("the answer");
    tls.flush().await.expect("the answer sent");
}
