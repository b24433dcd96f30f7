//! DynamoDB adapters: the UsersTable and the ProfilesTable.
//!
//! Both tables are keyed by `user_id` (S). Each item is its own lock
//! ([`crate::item_lock`]): creation is one conditional `PutItem`
//! (`attribute_not_exists(user_id)`) of the item carrying its attempt's lock,
//! which asks DynamoDB to return the existing item when the condition fails,
//! so "create and lock, or tell me what is there" is a single round trip
//! with no read-then-write race.
//!
//! Effects are recorded on the items they concern (`announced_at` on the
//! user, `document_written` on the profile) with a conditional `UpdateItem`
//! owned by the lock's attempt, so the fact that an effect happened outlives
//! every replay window and a duplicate of any age causes no second effect.

use crate::item_lock::{self, Key, LockAttributes};
use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use eventline_app::ports::{ProfileStore, StoredProfile, UserStore};
use eventline_app::PortError;
use eventline_domain::{DisplayName, EmailAddress, Profile, Timestamp, User, UserId};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock, Locked};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Records a user's announcement; the first one's time (`:value`) stays.
pub(crate) const ANNOUNCE: &str = "SET announced_at = if_not_exists(announced_at, :value)";

/// Builds the DynamoDB client.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// An item struct as a DynamoDB item.
pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, serde_dynamo::Error> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(value)
}

/// A stored item as its item struct. serde_dynamo panics on an attribute
/// type this SDK does not know (`AttributeValue::Unknown`, a newer wire
/// type), so such an item is refused before it gets there.
pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, serde_dynamo::Error> {
    fn unknown(value: &AttributeValue) -> bool {
        match value {
            AttributeValue::L(list) => list.iter().any(unknown),
            AttributeValue::M(map) => map.values().any(unknown),
            other => other.is_unknown(),
        }
    }
    if item.values().any(unknown) {
        return Err(serde::de::Error::custom(
            "an attribute has a type this SDK does not know",
        ));
    }
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item)
}

fn timestamp(value: &str, name: &str, operation: &'static str) -> Result<Timestamp, PortError> {
    Timestamp::parse_rfc3339(value)
        .ok_or_else(|| invalid(operation, format!("{name}: not an RFC 3339 timestamp")))
}

fn invalid(operation: &'static str, e: impl std::fmt::Display) -> PortError {
    PortError::new(operation, format!("stored item is invalid: {e}"))
}

pub(crate) fn unwritable(operation: &'static str, e: serde_dynamo::Error) -> PortError {
    PortError::new(operation, format!("item could not be built: {e}"))
}

/// The UsersTable (`user_id`, `email`, `name`, `created_at`, and
/// `announced_at` once the user's effects happened).
#[derive(Debug, Clone)]
pub struct DynamoUserStore {
    client: Client,
    table: String,
}

impl DynamoUserStore {
    /// Adapter for `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// A users item as stored; the attribute names and types are the table's.
#[derive(Serialize, Deserialize)]
pub(crate) struct UserItem {
    user_id: String,
    email: String,
    name: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    announced_at: Option<String>,
    /// The signup's lock (absent on items written before locks lived here).
    #[serde(flatten)]
    lock: LockAttributes,
}

impl UserItem {
    pub(crate) fn new(user: &User) -> Self {
        Self {
            user_id: user.id.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            created_at: user.created_at.to_string(),
            announced_at: user.announced_at.map(|at| at.to_string()),
            lock: LockAttributes::default(),
        }
    }

    /// The item carrying `lock`.
    fn locked(mut self, lock: &ItemLock) -> Self {
        self.lock = LockAttributes::new(lock);
        self
    }

    /// A stored user with the lock it carries.
    fn read_locked(item: Item) -> Result<Locked<User>, PortError> {
        const OP: &str = "DynamoDB users item";
        let lock = from_item::<Self>(item.clone())
            .map_err(|e| invalid(OP, e))?
            .lock
            .lock();
        Ok(Locked {
            value: Self::read(item)?,
            lock,
        })
    }

    /// Email and name go through the lenient stored constructors, not the
    /// signup rules: a user stored under older rules must stay readable
    /// (and its duplicates recognised as such).
    pub(crate) fn read(item: Item) -> Result<User, PortError> {
        const OP: &str = "DynamoDB users item";
        let stored: Self = from_item(item).map_err(|e| invalid(OP, e))?;
        Ok(User {
            id: UserId::parse(&stored.user_id).map_err(|e| invalid(OP, e))?,
            email: EmailAddress::from_stored(&stored.email),
            name: DisplayName::from_stored(&stored.name),
            created_at: timestamp(&stored.created_at, "created_at", OP)?,
            announced_at: stored
                .announced_at
                .map(|at| timestamp(&at, "announced_at", OP))
                .transpose()?,
        })
    }
}

impl DynamoUserStore {
    fn key<'a>(&self, id: &'a UserId) -> Key<'a> {
        Key {
            name: "user_id",
            value: id.as_str(),
        }
    }
}

/// A failed condition's item as a stored user (an empty one means the
/// item is gone).
fn found_user(item: Item, operation: &'static str) -> Result<Locked<User>, PortError> {
    if item.is_empty() {
        return Err(PortError::new(operation, "no user is stored under this id"));
    }
    UserItem::read_locked(item)
}

/// What a create-if-absent write did, as a claim: held, or the item that
/// was there. Some emulators return no item on a failed condition; it is
/// read back (`read`) then.
async fn claimed<T, Fut>(
    written: Option<Item>,
    operation: &'static str,
    read: impl FnOnce() -> Fut,
    parse: impl FnOnce(Item) -> Result<Locked<T>, PortError>,
) -> Result<Claim<T>, PortError>
where
    Fut: std::future::Future<Output = Result<Option<Locked<T>>, PortError>>,
{
    match written {
        None => Ok(Claim::Held),
        Some(item) if item.is_empty() => match read().await? {
            Some(existing) => Ok(Claim::Found(existing)),
            None => Err(PortError::new(
                operation,
                "condition failed but no item is stored",
            )),
        },
        Some(item) => Ok(Claim::Found(parse(item)?)),
    }
}

impl UserStore for DynamoUserStore {
    async fn create(&self, user: &User, lock: &ItemLock) -> Result<Claim<User>, PortError> {
        const OP: &str = "DynamoDB PutItem users";
        let item = UserItem::new(user).locked(lock);
        let item = to_item(&item).map_err(|e| unwritable(OP, e))?;
        let written = item_lock::create(&self.client, &self.table, "user_id", item, OP).await?;
        claimed(written, OP, || self.read(&user.id), UserItem::read_locked).await
    }

    async fn take_over(
        &self,
        id: &UserId,
        lock: &ItemLock,
        now_ms: u64,
    ) -> Result<Claim<User>, PortError> {
        const OP: &str = "DynamoDB UpdateItem users lock";
        let key = self.key(id);
        match item_lock::take_over(
            &self.client,
            &self.table,
            key,
            "announced_at",
            lock,
            now_ms,
            OP,
        )
        .await?
        {
            None => Ok(Claim::Held),
            Some(item) => Ok(Claim::Found(found_user(item, OP)?)),
        }
    }

    async fn announce(
        &self,
        id: &UserId,
        lock: &ItemLock,
        at: Timestamp,
    ) -> Result<Finish<User>, PortError> {
        const OP: &str = "DynamoDB UpdateItem users announced_at";
        // The first announcement's time stays: a resend changes nothing.
        let written = item_lock::finish(
            &self.client,
            &self.table,
            self.key(id),
            ANNOUNCE,
            vec![(":value", s(at.to_string()))],
            lock,
            OP,
        )
        .await?;
        match written {
            None => Ok(Finish::Recorded),
            Some(item) => Ok(Finish::NotHeld(found_user(item, OP)?)),
        }
    }

    async fn release(&self, id: &UserId, lock: &ItemLock) -> Result<(), PortError> {
        item_lock::release(
            &self.client,
            &self.table,
            self.key(id),
            "announced_at",
            lock,
            "DynamoDB UpdateItem users release lock",
        )
        .await
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, PortError> {
        Ok(self.read(id).await?.map(|u| u.value))
    }
}

impl DynamoUserStore {
    /// The user stored under `id` with its lock, read consistently.
    async fn read(&self, id: &UserId) -> Result<Option<Locked<User>>, PortError> {
        const OP: &str = "DynamoDB GetItem users";
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("user_id", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &e, Detail::CodeAndMessage))?;
        output.item.map(UserItem::read_locked).transpose()
    }
}

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

    fn ada(announced_at: Option<Timestamp>) -> User {
        User {
            id: UserId::parse("u1").unwrap(),
            email: EmailAddress::from_stored("ada@example.com"),
            name: DisplayName::from_stored("Ada"),
            created_at: Timestamp::from_unix_millis(1_795_771_466_123),
            announced_at,
        }
    }

    fn strings(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), s(*value)))
            .collect()
    }

    #[test]
    fn a_user_is_stored_as_strings_and_announced_at_only_once_announced() {
        let stored = strings(&[
            ("user_id", "u1"),
            ("email", "ada@example.com"),
            ("name", "Ada"),
            ("created_at", "2026-11-27T09:24:26.123Z"),
        ]);
        assert_eq!(to_item(&UserItem::new(&ada(None))).unwrap(), stored);

        let at = Timestamp::from_unix_millis(1_795_771_500_000);
        let mut announced = stored.clone();
        announced.insert("announced_at".into(), s("2026-11-27T09:25:00.000Z"));
        assert_eq!(to_item(&UserItem::new(&ada(Some(at)))).unwrap(), announced);
        assert_eq!(UserItem::read(announced).unwrap(), ada(Some(at)));
    }

    #[test]
    fn a_null_announced_at_reads_as_not_announced() {
        let mut item = to_item(&UserItem::new(&ada(None))).unwrap();
        item.insert("announced_at".into(), AttributeValue::Null(true));
        assert_eq!(UserItem::read(item).unwrap(), ada(None));
    }

    #[test]
    fn a_user_item_missing_an_attribute_or_with_a_bad_time_is_refused() {
        let mut item = to_item(&UserItem::new(&ada(None))).unwrap();
        item.remove("email");
        let err = UserItem::read(item).unwrap_err();
        assert_eq!(err.operation, "DynamoDB users item");
        assert!(err.message.contains("`email`"), "{}", err.message);

        let mut item = to_item(&UserItem::new(&ada(None))).unwrap();
        item.insert("created_at".into(), s("yesterday"));
        let err = UserItem::read(item).unwrap_err();
        assert!(err.message.contains("created_at"), "{}", err.message);
    }

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
