//! A tiny HTTP/1.1 endpoint for the SDK clients, on 127.0.0.1 and a random
//! port: it answers each call with a crafted JSON body, never answers, or
//! forwards it to moto, and records every call (its `X-Amz-Target` and JSON
//! body) so a test can first prove that its stub was really called.
//!
//! Hand-rolled on tokio (one request per connection, `connection: close`)
//! so the adapter tests need nothing from the shared test support but the
//! moto endpoint.

use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One call the stub received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The operation, e.g. `AmazonSQS.SendMessageBatch` (empty if none).
    pub target: String,
    /// The request's JSON body (`Null` if it was not JSON).
    pub body: Value,
    /// The request line and headers, as received.
    pub head: String,
}

/// What the stub does with a call.
pub enum Reply {
    /// Answers 200 with this JSON body (as `content_type`).
    Json(&'static str, String),
    /// Answers this status with this JSON body (a service error).
    Status(u16, &'static str, String),
    /// Reads the request and never answers (the socket stays open).
    Hang,
    /// Forwards the request to the upstream given to [`Stub::start`].
    Forward,
}

/// SQS's JSON protocol content type.
pub const SQS_JSON: &str = "application/x-amz-json-1.0";
/// DynamoDB's JSON protocol content type.
pub const DYNAMODB_JSON: &str = "application/x-amz-json-1.0";
/// EventBridge's JSON protocol content type.
pub const EVENTS_JSON: &str = "application/x-amz-json-1.1";

type Answer = dyn Fn(&Call) -> Reply + Send + Sync;

/// A running stub; it stops with the test's runtime.
pub struct Stub {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    accepted: Arc<AtomicUsize>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Stub {
    /// Starts a stub that answers with `answer`, forwarding to `upstream`
    /// (an `http://host:port` URL) when it says [`Reply::Forward`].
    pub async fn start(
        upstream: Option<String>,
        answer: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let upstream = upstream.map(|u| {
            u.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned()
        });
        {
            let (accepted, calls) = (accepted.clone(), calls.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (calls, answer, upstream) =
                        (calls.clone(), answer.clone(), upstream.clone());
                    tokio::spawn(async move {
                        let _ = serve(stream, calls, answer, upstream).await;
                    });
                }
            });
        }
        Self {
            url,
            accepted,
            calls,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls received so far for `target`.
    pub fn count(&self, target: &str) -> usize {
        self.calls().iter().filter(|c| c.target == target).count()
    }
}

/// A request as read off the socket: its head (request line and headers,
/// without the blank line) and its body.
struct Raw {
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Raw>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut raw = Raw {
        head,
        body: buf[end + 4..].to_vec(),
    };
    let length: usize = raw
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while raw.body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        raw.body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(raw))
}

async fn serve(
    mut stream: TcpStream,
    calls: Arc<Mutex<Vec<Call>>>,
    answer: Arc<Answer>,
    upstream: Option<String>,
) -> std::io::Result<()> {
    let Some(raw) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let call = Call {
        target: raw.header("x-amz-target").unwrap_or("").to_owned(),
        body: serde_json::from_slice(&raw.body).unwrap_or(Value::Null),
        head: raw.head.clone(),
    };
    calls.lock().unwrap().push(call.clone());
    match answer(&call) {
        Reply::Json(content_type, body) => respond(&mut stream, 200, content_type, &body).await,
        Reply::Status(status, content_type, body) => {
            respond(&mut stream, status, content_type, &body).await
        }
        Reply::Hang => {
            // Keep the socket open and silent until the test ends.
            std::future::pending::<()>().await;
            Ok(())
        }
        Reply::Forward => {
            let upstream = upstream.expect("Reply::Forward needs an upstream");
            let mut up = TcpStream::connect(&upstream).await?;
            let head: Vec<&str> = raw
                .head
                .lines()
                .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                .collect();
            let mut request = head.join("\r\n").into_bytes();
            request.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
            request.extend_from_slice(&raw.body);
            up.write_all(&request).await?;
            let mut response = Vec::new();
            up.read_to_end(&mut response).await?;
            // Tell the client this connection closes after the answer.
            let response = match head_end(&response) {
                Some(end) => {
                    let head = String::from_utf8_lossy(&response[..end]);
                    let mut out: Vec<u8> = head
                        .lines()
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                        .collect::<Vec<_>>()
                        .join("\r\n")
                        .into_bytes();
                    out.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
                    out.extend_from_slice(&response[end + 4..]);
                    out
                }
                None => response,
            };
            stream.write_all(&response).await?;
            stream.shutdown().await
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status} Stub\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-amzn-requestid: stub\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
