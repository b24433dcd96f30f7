//! DynamoDB adapters: the UsersTable and the ProfilesTable.
//!
//! Both tables are keyed by `user_id` (S). Creation is one conditional
//! `PutItem` (`attribute_not_exists(user_id)`) that asks DynamoDB to return
//! the existing item when the condition fails, so "create or tell me what is
//! there" is a single round trip with no read-then-write race.

use crate::{sdk_error, Detail};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use eventline_app::ports::{Inserted, ProfileStore, UserStore};
use eventline_app::PortError;
use eventline_domain::{DisplayName, EmailAddress, Profile, Timestamp, User, UserId};
use std::collections::HashMap;

pub use aws_sdk_dynamodb::Client as DynamoDbClient;

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

/// The UsersTable (`user_id`, `email`, `name`, `created_at`).
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
        HashMap::from([
            ("user_id".to_owned(), s(user.id.as_str())),
            ("email".to_owned(), s(user.email.as_str())),
            ("name".to_owned(), s(user.name.as_str())),
            ("created_at".to_owned(), s(user.created_at.to_string())),
        ])
    }

    fn from_item(item: &Item) -> Result<User, PortError> {
        const OP: &str = "DynamoDB users item";
        Ok(User {
            id: UserId::parse(get_s(item, "user_id", OP)?).map_err(|e| invalid(OP, e))?,
            email: EmailAddress::parse(get_s(item, "email", OP)?).map_err(|e| invalid(OP, e))?,
            name: DisplayName::parse(get_s(item, "name", OP)?).map_err(|e| invalid(OP, e))?,
            created_at: Timestamp::parse_rfc3339(get_s(item, "created_at", OP)?)
                .ok_or_else(|| invalid(OP, "created_at: not an RFC 3339 timestamp"))?,
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
}

/// The ProfilesTable (`user_id`, `display_name`, `bio`, `avatar_url`,
/// `locale`, `marketing_opt_in`, `created_at`).
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
        ])
    }

    fn from_item(item: &Item) -> Result<Profile, PortError> {
        const OP: &str = "DynamoDB profiles item";
        Ok(Profile {
            user_id: UserId::parse(get_s(item, "user_id", OP)?).map_err(|e| invalid(OP, e))?,
            display_name: DisplayName::parse(get_s(item, "display_name", OP)?)
                .map_err(|e| invalid(OP, e))?,
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
            created_at: Timestamp::parse_rfc3339(get_s(item, "created_at", OP)?)
                .ok_or_else(|| invalid(OP, "created_at: not an RFC 3339 timestamp"))?,
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
}
