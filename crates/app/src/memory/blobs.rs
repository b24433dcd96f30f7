//! [`MemoryBlobStore`]: the bucket in memory.

use super::{lock, Faults};
use crate::ports::{BlobStore, PortError, Put};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// [`BlobStore`] over a map of key → (content type, body); an object once
/// written is never replaced, as S3's `If-None-Match: *` write.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    objects: Mutex<BTreeMap<String, (String, String)>>,
    /// Failures to inject, keyed by object key.
    pub faults: Faults,
    puts: AtomicU64,
}

impl MemoryBlobStore {
    /// The body stored under `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        lock(&self.objects).get(key).map(|(_, body)| body.clone())
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.objects).keys().cloned().collect()
    }

    /// How many puts reached the store (those that found the object there
    /// included).
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::Relaxed)
    }

    /// Stores `body` under `key`, replacing what was there (a test's set-up).
    pub fn seed(&self, key: &str, body: &str) {
        lock(&self.objects).insert(key.to_owned(), ("application/json".into(), body.to_owned()));
    }
}

impl BlobStore for MemoryBlobStore {
    async fn put_new(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> Result<Put, PortError> {
        self.faults.check("memory blob put", key).await?;
        self.puts.fetch_add(1, Ordering::Relaxed);
        let mut objects = lock(&self.objects);
        if objects.contains_key(key) {
            return Ok(Put::Exists);
        }
        objects.insert(key.to_owned(), (content_type.to_owned(), body));
        Ok(Put::Created)
    }
}
