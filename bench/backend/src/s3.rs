//! S3 (REST-XML, path style: `/<bucket>/<key>`): `PutObject`,
//! `GetObject` and `HeadObject` over an in-memory object map.
//!
//! Any bucket is accepted. Bodies sent `aws-chunked` (the SDKs' streaming
//! checksums) are decoded and the trailing checksum is answered back as
//! S3 does; nothing else about checksums, encryption or versions is
//! emulated. A conditional `PutObject` with `If-None-Match: *` on a key
//! that exists fails with 412 `PreconditionFailed` and keeps the first
//! object (S3's conditional writes, since 2024-08). Every request is billed
//! as one PUT (`PutObject`) or GET (`GetObject`, `HeadObject`) request,
//! whatever its answer.

use crate::random::Ids;
use crate::reply::{xml_error, ApiError, Reply};
use crate::units::Units;
use bytes::Bytes;
use hyper::http::request::Parts;
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

struct Object {
    body: Bytes,
    content_type: Option<String>,
    etag: String,
    modified: SystemTime,
}

/// The objects, by bucket and key.
pub(crate) struct Buckets {
    objects: Mutex<HashMap<(String, String), Object>>,
}

/// The operation a request names, for the counters.
pub(crate) fn operation(method: &hyper::Method) -> &'static str {
    match *method {
        hyper::Method::PUT => "S3.PutObject",
        hyper::Method::GET => "S3.GetObject",
        hyper::Method::HEAD => "S3.HeadObject",
        _ => "S3.Unsupported",
    }
}

/// Trailer headers of an `aws-chunked` body, lower-cased names.
type Trailers = Vec<(String, String)>;

/// Decodes an `aws-chunked` body: `<hex size>[;ext]\r\n<data>\r\n`…
/// `0\r\n<trailers>\r\n`; returns the data and the trailer headers.
fn decode_aws_chunked(body: &[u8]) -> Option<(Vec<u8>, Trailers)> {
    let mut data = Vec::with_capacity(body.len());
    let mut rest = body;
    let line = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let out = rest[..end].to_vec();
        *rest = &rest[end + 2..];
        Some(out)
    };
    loop {
        let header = String::from_utf8(line(&mut rest)?).ok()?;
        let size = usize::from_str_radix(header.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            break;
        }
        data.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size..)?;
        if line(&mut rest)?.is_empty() {
            continue;
        }
        return None;
    }
    let mut trailers = Vec::new();
    while let Some(l) = line(&mut rest) {
        if l.is_empty() {
            break;
        }
        let l = String::from_utf8(l).ok()?;
        if let Some((k, v)) = l.split_once(':') {
            trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    Some((data, trailers))
}

fn header<'p>(parts: &'p Parts, name: &str) -> Option<&'p str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

impl Buckets {
    pub fn new() -> Self {
        Self {
            objects: Mutex::new(HashMap::new()),
        }
    }

    pub fn count(&self) -> usize {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Objects whose key starts with `prefix` (in `bucket`, or in any).
    pub fn count_under(&self, bucket: Option<&str>, prefix: &str) -> usize {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .filter(|(b, k)| bucket.is_none_or(|want| want == b) && k.starts_with(prefix))
            .count()
    }

    pub fn clear(&self) {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub fn handle(&self, ids: &Ids, parts: &Parts, body: &Bytes) -> Reply {
        let request_id = ids.uuid().replace('-', "")[..16].to_ascii_uppercase();
        let path = parts.uri.path().trim_start_matches('/');
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        let key = percent_encoding::percent_decode_str(key)
            .decode_utf8_lossy()
            .into_owned();
        let result = if bucket.is_empty() || key.is_empty() {
            Err(ApiError::new(
                501,
                "NotImplemented",
                "the fixed-latency backend implements object operations only (path style: /bucket/key)",
            ))
        } else {
            match parts.method {
                hyper::Method::PUT => self.put(parts, body, bucket, key),
                hyper::Method::GET => self.get(bucket, key, true),
                hyper::Method::HEAD => self.get(bucket, key, false),
                _ => Err(ApiError::new(
                    501,
                    "NotImplemented",
                    format!(
                        "the fixed-latency backend does not implement S3 {}",
                        parts.method
                    ),
                )),
            }
        };
        let mut reply = match result {
            Ok(reply) => reply
                .header("x-amz-request-id", request_id.clone())
                .header("x-amz-id-2", request_id),
            Err(e) => xml_error(&e, &request_id)
                .header("x-amz-request-id", request_id.clone())
                .header("x-amz-id-2", request_id),
        };
        reply.units = match parts.method {
            hyper::Method::PUT => Units {
                s3_put: 1.0,
                ..Units::default()
            },
            hyper::Method::GET | hyper::Method::HEAD => Units {
                s3_get: 1.0,
                ..Units::default()
            },
            _ => Units::default(),
        };
        reply
    }

    fn put(
        &self,
        parts: &Parts,
        body: &Bytes,
        bucket: &str,
        key: String,
    ) -> Result<Reply, ApiError> {
        let chunked = header(parts, "content-encoding").is_some_and(|e| e.contains("aws-chunked"))
            || header(parts, "x-amz-content-sha256").is_some_and(|s| s.starts_with("STREAMING-"));
        let (data, trailers) = if chunked {
            decode_aws_chunked(body).ok_or_else(|| {
                ApiError::new(
                    400,
                    "IncompleteBody",
                    "The request body is not valid aws-chunked encoding",
                )
            })?
        } else {
            (body.to_vec(), Vec::new())
        };
        let etag = format!("\"{}\"", hex::encode(Md5::digest(&data)));
        let mut reply = Reply::new(200, Bytes::new())
            .header("etag", etag.clone())
            .header("x-amz-server-side-encryption", "AES256");
        // S3 answers the checksum it was sent, as a header or a trailer.
        let sent = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .chain(trailers);
        for (name, value) in sent {
            if let Some(algorithm) = name
                .strip_prefix("x-amz-checksum-")
                .filter(|a| *a != "type" && *a != "algorithm")
            {
                let name = match algorithm {
                    "crc32" => "x-amz-checksum-crc32",
                    "crc32c" => "x-amz-checksum-crc32c",
                    "crc64nvme" => "x-amz-checksum-crc64nvme",
                    "sha1" => "x-amz-checksum-sha1",
                    "sha256" => "x-amz-checksum-sha256",
                    _ => continue,
                };
                reply = reply.header(name, value);
            }
        }
        let object = Object {
            body: Bytes::from(data),
            content_type: header(parts, "content-type").map(str::to_owned),
            etag,
            modified: SystemTime::now(),
        };
        let create_only = header(parts, "if-none-match").is_some_and(|v| v.trim() == "*");
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (bucket.to_owned(), key);
        if create_only && objects.contains_key(&key) {
            return Err(ApiError::new(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
        objects.insert(key, object);
        Ok(reply)
    }

    fn get(&self, bucket: &str, key: String, with_body: bool) -> Result<Reply, ApiError> {
        let objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        let object = objects
            .get(&(bucket.to_owned(), key))
            .ok_or_else(|| ApiError::new(404, "NoSuchKey", "The specified key does not exist."))?;
        let body = if with_body {
            object.body.clone()
        } else {
            Bytes::new()
        };
        let mut reply = Reply::new(200, body)
            .header("etag", object.etag.clone())
            .header("last-modified", httpdate::fmt_http_date(object.modified))
            .header("accept-ranges", "bytes")
            .header(
                "content-type",
                object
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "binary/octet-stream".to_owned()),
            );
        if !with_body {
            reply = reply.header("content-length", object.body.len().to_string());
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_bodies_decode_with_their_trailers() {
        let body = b"5\r\nhello\r\n6;chunk-signature=x\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        let (data, trailers) = decode_aws_chunked(body).unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(
            trailers,
            [("x-amz-checksum-crc32".to_owned(), "DUoRhQ==".to_owned())]
        );
        assert!(decode_aws_chunked(b"5\r\nhel").is_none());
    }
}
