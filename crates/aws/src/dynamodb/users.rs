//! [`DynamoUserStore`]: the UsersTable.

use super::{claimed, from_item, invalid, s, timestamp, to_item, unwritable, Item, ANNOUNCE};
use crate::item_lock::{self, Key, LockAttributes};
use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::Client;
use eventline_app::ports::UserStore;
use eventline_app::PortError;
use eventline_domain::{DisplayName, EmailAddress, Timestamp, User, UserId};
use eventline_powertools::item_lock::{Claim, Finish, ItemLock, Locked};
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::strings;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn ada(announced_at: Option<Timestamp>) -> User {
        User {
            id: UserId::parse("u1").unwrap(),
            email: EmailAddress::from_stored("ada@example.com"),
            name: DisplayName::from_stored("Ada"),
            created_at: Timestamp::from_unix_millis(1_795_771_466_123),
            announced_at,
        }
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
}
