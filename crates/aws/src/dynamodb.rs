//! DynamoDB adapters: the UsersTable and the ProfilesTable.
//!
//! Both tables are keyed by `user_id` (S). Creation is one conditional
//! `PutItem` (`attribute_not_exists(user_id)`) that asks DynamoDB to return
//! the existing item when the condition fails, so "create or tell me what is
//! there" is a single round trip with no read-then-write race.
//!
//! Effects are recorded on the items they concern (`announced_at` on the
//! user, `document_written` on the profile) with a conditional `UpdateItem`,
//! so the fact that an effect happened outlives every idempotency window and
//! a duplicate of any age causes no second effect.

use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use eventline_app::ports::{Inserted, ProfileStore, UserStore};
use eventline_app::PortError;
use eventline_domain::{DisplayName, EmailAddress, Profile, Timestamp, User, UserId};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Builds the DynamoDB client.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn get_s<'a>(
    item: &'a Item,
    name: &'static str,
    operation: &'static str,
) -> Result<&'a str, PortError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(PortError::new(
            operation,
            format!("stored item has no string attribute '{name}'"),
        )),
    }
}

fn get_timestamp(
    item: &Item,
    name: &'static str,
    operation: &'static str,
) -> Result<Timestamp, PortError> {
    Timestamp::parse_rfc3339(get_s(item, name, operation)?)
        .ok_or_else(|| invalid(operation, format!("{name}: not an RFC 3339 timestamp")))
}

fn invalid(operation: &'static str, e: impl std::fmt::Display) -> PortError {
    PortError::new(operation, format!("stored item is invalid: {e}"))
}

/// Runs a create-if-absent `PutItem` and returns the existing item on conflict.
async fn put_if_absent(
    client: &Client,
    table: &str,
    item: Item,
    operation: &'static str,
) -> Result<Option<Item>, PortError> {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(user_id)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(None),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
        {
            match e.into_err() {
                PutItemError::ConditionalCheckFailedException(c) => {
                    Ok(Some(c.item.unwrap_or_default()))
                }
                _ => unreachable!("matched above"),
            }
        }
        Err(e) => Err(sdk_error(operation, &e, Detail::CodeAndMessage)),
    }
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

    fn to_item(user: &User) -> Item {
        let mut item = HashMap::from([
            ("user_id".to_owned(), s(user.id.as_str())),
            ("email".to_owned(), s(user.email.as_str())),
            ("name".to_owned(), s(user.name.as_str())),
            ("created_at".to_owned(), s(user.created_at.to_string())),
        ]);
        if let Some(at) = user.announced_at {
            item.insert("announced_at".to_owned(), s(at.to_string()));
        }
        item
    }

    /// Reads a stored user. Email and name go through the lenient stored
    /// constructors, not the signup rules: a user stored under older rules
    /// must stay readable (and its duplicates recognised as such).
    fn from_item(item: &Item) -> Result<User, PortError> {
        const OP: &str = "DynamoDB users item";
        Ok(User {
            id: UserId::parse(get_s(item, "user_id", OP)?).map_err(|e| invalid(OP, e))?,
            email: EmailAddress::from_stored(get_s(item, "email", OP)?),
            name: DisplayName::from_stored(get_s(item, "name", OP)?),
            created_at: get_timestamp(item, "created_at", OP)?,
            announced_at: match item.get("announced_at") {
                None | Some(AttributeValue::Null(true)) => None,
                Some(_) => Some(get_timestamp(item, "announced_at", OP)?),
            },
        })
    }
}

impl UserStore for DynamoUserStore {
    async fn insert(&self, user: &User) -> Result<Inserted<User>, PortError> {
        const OP: &str = "DynamoDB PutItem users";
        match put_if_absent(&self.client, &self.table, Self::to_item(user), OP).await? {
            None => Ok(Inserted::New),
            // Some emulators do not return the item on a failed condition; read it then.
            Some(item) if item.is_empty() => match self.get(&user.id).await? {
                Some(existing) => Ok(Inserted::Existing(existing)),
                None => Err(PortError::new(OP, "condition failed but no item is stored")),
            },
            Some(item) => Ok(Inserted::Existing(Self::from_item(&item)?)),
        }
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, PortError> {
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
        output.item.as_ref().map(Self::from_item).transpose()
    }

    async fn mark_announced(&self, id: &UserId, at: Timestamp) -> Result<(), PortError> {
        // The first announcement's time stays: a later duplicate changes nothing.
        mark(
            &self.client,
            &self.table,
            id,
            "SET announced_at = if_not_exists(announced_at, :value)",
            s(at.to_string()),
            "DynamoDB UpdateItem users announced_at",
        )
        .await
    }
}

/// The ProfilesTable (`user_id`, `display_name`, `bio`, `avatar_url`,
/// `locale`, `marketing_opt_in`, `created_at`, `document_written`).
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

    fn to_item(p: &Profile) -> Item {
        HashMap::from([
            ("user_id".to_owned(), s(p.user_id.as_str())),
            ("display_name".to_owned(), s(p.display_name.as_str())),
            ("bio".to_owned(), s(p.bio.as_str())),
            (
                "avatar_url".to_owned(),
                p.avatar_url
                    .as_deref()
                    .map_or(AttributeValue::Null(true), s),
            ),
            ("locale".to_owned(), s(p.locale.as_str())),
            (
                "marketing_opt_in".to_owned(),
                AttributeValue::Bool(p.marketing_opt_in),
            ),
            ("created_at".to_owned(), s(p.created_at.to_string())),
            (
                "document_written".to_owned(),
                AttributeValue::Bool(p.document_written),
            ),
        ])
    }

    fn from_item(item: &Item) -> Result<Profile, PortError> {
        const OP: &str = "DynamoDB profiles item";
        Ok(Profile {
            user_id: UserId::parse(get_s(item, "user_id", OP)?).map_err(|e| invalid(OP, e))?,
            display_name: DisplayName::from_stored(get_s(item, "display_name", OP)?),
            bio: get_s(item, "bio", OP)?.to_owned(),
            avatar_url: match item.get("avatar_url") {
                Some(AttributeValue::S(url)) => Some(url.clone()),
                _ => None,
            },
            locale: get_s(item, "locale", OP)?.to_owned(),
            marketing_opt_in: matches!(
                item.get("marketing_opt_in"),
                Some(AttributeValue::Bool(true))
            ),
            created_at: get_timestamp(item, "created_at", OP)?,
            document_written: matches!(
                item.get("document_written"),
                Some(AttributeValue::Bool(true))
            ),
        })
    }
}

impl ProfileStore for DynamoProfileStore {
    async fn insert(&self, profile: &Profile) -> Result<Inserted<Profile>, PortError> {
        const OP: &str = "DynamoDB PutItem profiles";
        match put_if_absent(&self.client, &self.table, Self::to_item(profile), OP).await? {
            None => Ok(Inserted::New),
            Some(item) if item.is_empty() => {
                let output = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("user_id", s(profile.user_id.as_str()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| {
                        sdk_error("DynamoDB GetItem profiles", &e, Detail::CodeAndMessage)
                    })?;
                let item = output
                    .item
                    .ok_or_else(|| PortError::new(OP, "condition failed but no item is stored"))?;
                Ok(Inserted::Existing(Self::from_item(&item)?))
            }
            Some(item) => Ok(Inserted::Existing(Self::from_item(&item)?)),
        }
    }

    async fn mark_document_written(&self, user_id: &UserId) -> Result<(), PortError> {
        mark(
            &self.client,
            &self.table,
            user_id,
            "SET document_written = :value",
            AttributeValue::Bool(true),
            "DynamoDB UpdateItem profiles document_written",
        )
        .await
    }
}

/// Records a fact on the item of `id` with one `UpdateItem`, only if the item
/// exists: a mark on an absent item would create a stub item that later
/// reads could not parse, and means the caller's order of steps is wrong.
async fn mark(
    client: &Client,
    table: &str,
    id: &UserId,
    update: &str,
    value: AttributeValue,
    operation: &'static str,
) -> Result<(), PortError> {
    let result = client
        .update_item()
        .table_name(table)
        .key("user_id", s(id.as_str()))
        .update_expression(update)
        .condition_expression("attribute_exists(user_id)")
        .expression_attribute_values(":value", value)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
        {
            Err(PortError::new(operation, "no item is stored under this id"))
        }
        Err(e) => Err(sdk_error(operation, &e, Detail::CodeAndMessage)),
    }
}
