//! [`DynamoProfileStore`]: the ProfilesTable.

use super::{claimed, from_item, invalid, s, timestamp, to_item, unwritable, Item};
use crate::item_lock::{self, Key, LockAttributes};
use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use eventline_app::ports::{ProfileStore, StoredProfile};
use eventline_app::PortError;
use eventline_domain::{DisplayName, Profile, UserId};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock, Locked};
use serde::{Deserialize, Serialize};

/// The ProfilesTable (`user_id`, `display_name`, `bio`, `avatar_url`,
/// `locale`, `marketing_opt_in`, `created_at`, `document_written`, and
/// the lock attributes and `payload_hash` of the `User Created` it was made
/// for: the profile is its own lock, [`crate::item_lock`]). Profiles
/// written before they carried locks have none of the last three and read
/// as unlocked, same payload.
#[derive(Debug, Clone)]
pub struct DynamoProfileStore {
    client: Client,
    table: String,
}

impl DynamoProfileStore {
    /// Adapter for `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn key<'a>(&self, id: &'a UserId) -> Key<'a> {
        Key {
            name: "user_id",
            value: id.as_str(),
        }
    }

    /// The profile stored under `id` with its lock, read consistently.
    async fn read(&self, id: &UserId) -> Result<Option<Locked<StoredProfile>>, PortError> {
        const OP: &str = "DynamoDB GetItem profiles";
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("user_id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &e, Detail::CodeAndMessage))?;
        output.item.map(ProfileItem::read_locked).transpose()
    }
}

/// A profiles item as stored; the attribute names and types are the table's.
/// A profile without a picture stores `avatar_url` as NULL.
#[derive(Serialize, Deserialize)]
struct ProfileItem {
    user_id: String,
    display_name: String,
    bio: String,
    avatar_url: Option<String>,
    locale: String,
    #[serde(default)]
    marketing_opt_in: bool,
    created_at: String,
    #[serde(default)]
    document_written: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_hash: Option<String>,
    #[serde(flatten)]
    lock: LockAttributes,
}

impl ProfileItem {
    fn new(p: &Profile) -> Self {
        Self {
            user_id: p.user_id.as_str().to_owned(),
            display_name: p.display_name.as_str().to_owned(),
            bio: p.bio.clone(),
            avatar_url: p.avatar_url.clone(),
            locale: p.locale.clone(),
            marketing_opt_in: p.marketing_opt_in,
            created_at: p.created_at.to_string(),
            document_written: p.document_written,
            payload_hash: None,
            lock: LockAttributes::default(),
        }
    }

    #[cfg(test)]
    fn read(item: Item) -> Result<Profile, PortError> {
        Ok(Self::read_locked(item)?.value.profile)
    }

    fn read_locked(item: Item) -> Result<Locked<StoredProfile>, PortError> {
        const OP: &str = "DynamoDB profiles item";
        let stored: Self = from_item(item).map_err(|e| invalid(OP, e))?;
        let profile = Profile {
            user_id: UserId::parse(&stored.user_id).map_err(|e| invalid(OP, e))?,
            display_name: DisplayName::from_stored(&stored.display_name),
            bio: stored.bio,
            avatar_url: stored.avatar_url,
            locale: stored.locale,
            marketing_opt_in: stored.marketing_opt_in,
            created_at: timestamp(&stored.created_at, "created_at", OP)?,
            document_written: stored.document_written,
        };
        Ok(Locked {
            value: StoredProfile {
                profile,
                payload_hash: stored.payload_hash,
            },
            lock: stored.lock.lock(),
        })
    }
}

/// A failed condition's item as a stored profile (an empty one means the
/// item is gone).
fn found_profile(item: Item, operation: &'static str) -> Result<Locked<StoredProfile>, PortError> {
    if item.is_empty() {
        return Err(PortError::new(
            operation,
            "no profile is stored for this user",
        ));
    }
    ProfileItem::read_locked(item)
}

/// The profile's fact attribute.
const DOCUMENT_WRITTEN: &str = "document_written";

impl ProfileStore for DynamoProfileStore {
    async fn create(
        &self,
        profile: &Profile,
        payload_hash: &str,
        lock: &ItemLock,
    ) -> Result<Claim<StoredProfile>, PortError> {
        const OP: &str = "DynamoDB PutItem profiles";
        let item = ProfileItem {
            payload_hash: Some(payload_hash.to_owned()),
            lock: LockAttributes::new(lock),
            ..ProfileItem::new(profile)
        };
        let item = to_item(&item).map_err(|e| unwritable(OP, e))?;
        let written = item_lock::create(&self.client, &self.table, "user_id", item, OP).await?;
        claimed(
            written,
            OP,
            || self.read(&profile.user_id),
            ProfileItem::read_locked,
        )
        .await
    }

    async fn take_over(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<StoredProfile>, PortError> {
        const OP: &str = "DynamoDB UpdateItem profiles lock";
        let key = self.key(user_id);
        let taken = item_lock::take_over(
            &self.client,
            &self.table,
            key,
            DOCUMENT_WRITTEN,
            lock,
            now_ms,
            OP,
        );
        match taken.await? {
            None => Ok(Claim::Held),
            Some(item) => Ok(Claim::Found(found_profile(item, OP)?)),
        }
    }

    async fn record_document(
        &self,
        user_id: &UserId,
        lock: &ItemLock,
    ) -> Result<Finish<StoredProfile>, PortError> {
        const OP: &str = "DynamoDB UpdateItem profiles document_written";
        let written = item_lock::finish(
            &self.client,
            &self.table,
            self.key(user_id),
            "SET document_written = :written",
            vec![(":written", AttributeValue::Bool(true))],
            lock,
            OP,
        )
        .await?;
        match written {
            None => Ok(Finish::Recorded),
            Some(item) => Ok(Finish::NotHeld(found_profile(item, OP)?)),
        }
    }

    async fn release(&self, user_id: &UserId, lock: &ItemLock) -> Result<(), PortError> {
        item_lock::release(
            &self.client,
            &self.table,
            self.key(user_id),
            DOCUMENT_WRITTEN,
            lock,
            "DynamoDB UpdateItem profiles release lock",
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::strings;
    use eventline_domain::Timestamp;

    #[test]
    fn a_profile_keeps_its_attribute_types_and_a_missing_picture_is_null() {
        let profile = Profile {
            user_id: UserId::parse("u1").unwrap(),
            display_name: DisplayName::from_stored("Ada"),
            bio: String::new(),
            avatar_url: None,
            locale: "en".into(),
            marketing_opt_in: false,
            created_at: Timestamp::from_unix_millis(1_795_771_466_123),
            document_written: true,
        };
        let item = to_item(&ProfileItem::new(&profile)).unwrap();

        let mut expected = strings(&[
            ("user_id", "u1"),
            ("display_name", "Ada"),
            ("bio", ""),
            ("locale", "en"),
            ("created_at", "2026-11-27T09:24:26.123Z"),
        ]);
        expected.insert("avatar_url".into(), AttributeValue::Null(true));
        expected.insert("marketing_opt_in".into(), AttributeValue::Bool(false));
        expected.insert("document_written".into(), AttributeValue::Bool(true));
        assert_eq!(item, expected);
        assert_eq!(ProfileItem::read(item).unwrap(), profile);
    }

    #[test]
    fn a_created_profile_carries_its_lock_and_payload_hash() {
        let profile = Profile {
            user_id: UserId::parse("u1").unwrap(),
            display_name: DisplayName::from_stored("Ada"),
            bio: String::new(),
            avatar_url: None,
            locale: "en".into(),
            marketing_opt_in: false,
            created_at: Timestamp::from_unix_millis(1_795_771_466_123),
            document_written: false,
        };
        let lock = ItemLock {
            attempt: "a1".into(),
            until_ms: 7,
        };
        let item = to_item(&ProfileItem {
            payload_hash: Some("h".into()),
            lock: LockAttributes::new(&lock),
            ..ProfileItem::new(&profile)
        })
        .unwrap();
        assert_eq!(item["payload_hash"], s("h"));
        assert_eq!(item["lock_attempt"], s("a1"));
        assert_eq!(item["lock_until"], AttributeValue::N("7".into()));
        assert_eq!(
            ProfileItem::read_locked(item).unwrap(),
            Locked {
                value: StoredProfile {
                    profile,
                    payload_hash: Some("h".into())
                },
                lock: Some(lock)
            }
        );
    }

    #[test]
    fn a_profile_without_its_flags_reads_them_as_false() {
        let mut item = strings(&[
            ("user_id", "u1"),
            ("display_name", "Ada"),
            ("bio", ""),
            ("locale", "en"),
            ("created_at", "2026-11-27T09:24:26.123Z"),
        ]);
        item.insert("avatar_url".into(), s("https://example.com/a.png"));
        let profile = ProfileItem::read(item).unwrap();
        assert_eq!(
            profile.avatar_url.as_deref(),
            Some("https://example.com/a.png")
        );
        assert!(!profile.marketing_opt_in);
        assert!(!profile.document_written);
    }
}
