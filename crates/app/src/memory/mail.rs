//! Mail in memory: the SES double and the mail ledger (sent markers, each
//! its message's lock, and mailbox quotas).

use super::{carries, free_for, lock, Faults};
use crate::ports::{Admission, MailLedger, MailMarker, Mailer, PortError, Sent};
use eventline_domain::{MailboxKey, OutgoingEmail};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock, Locked};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

/// [`Mailer`] over a vector.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<OutgoingEmail>>,
    /// Failures to inject, keyed by message id.
    pub faults: Faults,
}

impl MemoryMailer {
    /// Every email sent, in order (duplicates included).
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        lock(&self.sent).clone()
    }
}

impl Mailer for MemoryMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, PortError> {
        self.faults
            .check("memory mailer send", &email.message_id)
            .await?;
        lock(&self.sent).push(email.clone());
        Ok(Sent::Now)
    }
}

/// [`MailLedger`] over a map of markers (with their locks) and
/// per-(mailbox, day) sets of message ids.
#[derive(Debug, Default)]
pub struct MemoryMailLedger {
    markers: Mutex<BTreeMap<String, Locked<MailMarker>>>,
    quota: Mutex<HashMap<(MailboxKey, String), BTreeSet<String>>>,
    /// Failures to inject, keyed by message id.
    pub faults: Faults,
}

impl MemoryMailLedger {
    /// Whether `message_id` is marked sent.
    pub fn is_sent(&self, message_id: &str) -> bool {
        lock(&self.markers)
            .get(message_id)
            .is_some_and(|m| m.value.sent)
    }

    /// The marker of `message_id` with its lock.
    pub fn marker(&self, message_id: &str) -> Option<Locked<MailMarker>> {
        lock(&self.markers).get(message_id).cloned()
    }

    /// Stores a marker as an earlier attempt (or an older version) left it.
    pub fn seed(&self, message_id: &str, marker: MailMarker, held: Option<ItemLock>) {
        lock(&self.markers).insert(
            message_id.to_owned(),
            Locked {
                value: marker,
                lock: held,
            },
        );
    }

    /// The message ids holding a slot of `mailbox`'s quota on `day`.
    pub fn slots(&self, mailbox: &MailboxKey, day: &str) -> Vec<String> {
        lock(&self.quota)
            .get(&(mailbox.clone(), day.to_owned()))
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl MailLedger for MemoryMailLedger {
    async fn lock(
        &self,
        message_id: &str,
        payload_hash: &str,
        held: &ItemLock,
    ) -> Result<Claim<MailMarker>, PortError> {
        self.faults.check("memory ledger lock", message_id).await?;
        let mut markers = lock(&self.markers);
        if let Some(existing) = markers.get(message_id) {
            return Ok(Claim::Found(existing.clone()));
        }
        markers.insert(
            message_id.to_owned(),
            Locked {
                value: MailMarker {
                    payload_hash: Some(payload_hash.to_owned()),
                    sent: false,
                },
                lock: Some(held.clone()),
            },
        );
        Ok(Claim::Held)
    }

    async fn take_over(
        &self,
        message_id: &str,
        held: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<MailMarker>, PortError> {
        self.faults
            .check("memory ledger take over", message_id)
            .await?;
        let mut markers = lock(&self.markers);
        let stored = markers
            .get_mut(message_id)
            .ok_or_else(|| PortError::new("memory ledger take over", "no such marker"))?;
        if stored.value.sent || !free_for(stored.lock.as_ref(), held, now_ms) {
            return Ok(Claim::Found(stored.clone()));
        }
        stored.lock = Some(held.clone());
        Ok(Claim::Held)
    }

    async fn record_sent(
        &self,
        message_id: &str,
        held: &ItemLock,
    ) -> Result<Finish<MailMarker>, PortError> {
        self.faults
            .check("memory ledger record sent", message_id)
            .await?;
        let mut markers = lock(&self.markers);
        let stored = markers
            .get_mut(message_id)
            .ok_or_else(|| PortError::new("memory ledger record sent", "no such marker"))?;
        if !carries(stored.lock.as_ref(), held) {
            return Ok(Finish::NotHeld(stored.clone()));
        }
        stored.value.sent = true;
        Ok(Finish::Recorded)
    }

    async fn release(&self, message_id: &str, held: &ItemLock) -> Result<(), PortError> {
        self.faults
            .check("memory ledger release", message_id)
            .await?;
        let mut markers = lock(&self.markers);
        if markers
            .get(message_id)
            .is_some_and(|m| carries(m.lock.as_ref(), held) && !m.value.sent)
        {
            markers.remove(message_id);
        }
        Ok(())
    }

    async fn take_slot(
        &self,
        mailbox: &MailboxKey,
        message_id: &str,
        day: &str,
        cap: u32,
    ) -> Result<Admission, PortError> {
        self.faults
            .check("memory ledger take slot", message_id)
            .await?;
        let mut quota = lock(&self.quota);
        let ids = quota.entry((mailbox.clone(), day.to_owned())).or_default();
        if ids.contains(message_id) || ids.len() < cap as usize {
            ids.insert(message_id.to_owned());
            Ok(Admission::Admitted)
        } else {
            Ok(Admission::OverQuota)
        }
    }
}
