//! An [`IdempotencyStore`] in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{is_free, is_held_by, Acquire, CompleteError, IdempotencyStore, Record, StoreError};

/// An [`IdempotencyStore`] in memory, for tests and examples.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, Record>>,
}

impl MemoryStore {
    /// The record with `id`, if any.
    #[cfg(any(test, feature = "test-util"))]
    pub fn get(&self, id: &str) -> Option<Record> {
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl IdempotencyStore for MemoryStore {
    async fn acquire(&self, record: &Record, now_ms: u64) -> Result<Acquire, StoreError> {
        let mut records = self.lock();
        let existing = records.get(&record.id);
        if is_free(existing, now_ms) {
            records.insert(record.id.clone(), record.clone());
            return Ok(Acquire::Acquired);
        }
        Ok(Acquire::Existing(
            existing.cloned().unwrap_or_else(|| record.clone()),
        ))
    }

    async fn complete_all(&self, records: &[Record]) -> Vec<Result<(), CompleteError>> {
        let mut stored = self.lock();
        records
            .iter()
            .map(|record| {
                if is_held_by(stored.get(&record.id), record) {
                    stored.insert(record.id.clone(), record.clone());
                    Ok(())
                } else {
                    Err(CompleteError::LockLost)
                }
            })
            .collect()
    }

    async fn release(&self, record: &Record) -> Result<(), StoreError> {
        let mut stored = self.lock();
        if is_held_by(stored.get(&record.id), record) {
            stored.remove(&record.id);
        }
        Ok(())
    }
}
