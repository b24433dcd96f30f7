//! The queue, the bus and the dead-letter queue in memory: each records
//! what it accepted, in order.

use super::{lock, Faults};
use crate::ports::{EventPublisher, NotificationQueue, PortError};
use eventline_domain::{Notification, UserCreated};
use eventline_powertools::batch::{DeadLetter, DeadLetterSink};
use futures::future::BoxFuture;
use std::sync::Mutex;

/// [`NotificationQueue`] over a vector.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<Notification>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
}

impl MemoryQueue {
    /// Everything enqueued, in order (duplicates included).
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }
}

impl NotificationQueue for MemoryQueue {
    async fn enqueue_all(&self, notifications: &[Notification]) -> Vec<Result<(), PortError>> {
        let mut results = Vec::with_capacity(notifications.len());
        for n in notifications {
            let result = self
                .faults
                .check("memory queue send", n.user_id.as_str())
                .await;
            if result.is_ok() {
                lock(&self.sent).push(n.clone());
            }
            results.push(result);
        }
        results
    }
}

/// [`EventPublisher`] over a vector.
#[derive(Debug, Default)]
pub struct MemoryEventBus {
    published: Mutex<Vec<UserCreated>>,
    /// Failures to inject, keyed by user id.
    pub faults: Faults,
}

impl MemoryEventBus {
    /// Everything published, in order (duplicates included).
    pub fn published(&self) -> Vec<UserCreated> {
        lock(&self.published).clone()
    }
}

impl EventPublisher for MemoryEventBus {
    async fn publish_all(&self, events: &[UserCreated]) -> Vec<Result<(), PortError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            let result = self
                .faults
                .check("memory bus publish", event.user_id.as_str())
                .await;
            if result.is_ok() {
                lock(&self.published).push(event.clone());
            }
            results.push(result);
        }
        results
    }
}

/// [`DeadLetterSink`] over a vector.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
    /// Refusals to inject, keyed by the letter's source message id.
    pub faults: Faults,
}

impl MemoryDeadLetters {
    /// Every letter received, in order.
    pub fn letters(&self) -> Vec<DeadLetter> {
        lock(&self.letters).clone()
    }
}

impl DeadLetterSink for MemoryDeadLetters {
    fn send<'a>(&'a self, letter: &'a DeadLetter) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.faults
                .check("memory dead letters send", &letter.source_message_id)
                .await
                .map_err(|e| e.to_string())?;
            lock(&self.letters).push(letter.clone());
            Ok(())
        })
    }
}
