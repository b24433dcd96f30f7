//! Conditions evaluated on an item, and updates applied to it.

use super::{Cmp, Condition, Operand, Step, Update};
use crate::dynamodb::attr::{Attr, Item};
use crate::dynamodb::number::Decimal;
use crate::reply::ApiError;
use std::cmp::Ordering;

fn resolve<'i>(item: &'i Item, path: &[Step]) -> Option<&'i Attr> {
    let (first, rest) = path.split_first()?;
    let Step::Name(name) = first else { return None };
    let mut at = item.get(name)?;
    for step in rest {
        at = match (step, at) {
            (Step::Name(n), Attr::M(m)) => m.get(n)?,
            (Step::Index(i), Attr::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(at)
}

fn condition_value(operand: &Operand, item: &Item) -> Option<Attr> {
    match operand {
        Operand::Path(p) => resolve(item, p).cloned(),
        Operand::Value(v) => Some(v.clone()),
        Operand::Size(p) => resolve(item, p)
            .and_then(Attr::size)
            .map(|n| Attr::N(n.to_string())),
        // Not produced by the condition parser.
        _ => None,
    }
}

impl Condition {
    /// Whether `item` (empty when there is none) satisfies the condition.
    /// A comparison with a missing attribute or of incomparable types is
    /// false, except `<>`, which is true.
    pub fn holds(&self, item: &Item) -> bool {
        let value = |o: &Operand| condition_value(o, item);
        match self {
            Condition::Or(a, b) => a.holds(item) || b.holds(item),
            Condition::And(a, b) => a.holds(item) && b.holds(item),
            Condition::Not(c) => !c.holds(item),
            Condition::Compare(a, cmp, b) => match (value(a), value(b)) {
                (Some(x), Some(y)) => match cmp {
                    Cmp::Eq => x.equals(&y),
                    Cmp::Ne => !x.equals(&y),
                    Cmp::Lt => x.order(&y) == Some(Ordering::Less),
                    Cmp::Le => matches!(x.order(&y), Some(Ordering::Less | Ordering::Equal)),
                    Cmp::Gt => x.order(&y) == Some(Ordering::Greater),
                    Cmp::Ge => matches!(x.order(&y), Some(Ordering::Greater | Ordering::Equal)),
                },
                (None, None) => false,
                _ => *cmp == Cmp::Ne,
            },
            Condition::Between(a, low, high) => match (value(a), value(low), value(high)) {
                (Some(x), Some(l), Some(h)) => {
                    matches!(x.order(&l), Some(Ordering::Greater | Ordering::Equal))
                        && matches!(x.order(&h), Some(Ordering::Less | Ordering::Equal))
                }
                _ => false,
            },
            Condition::In(a, list) => value(a)
                .is_some_and(|x| list.iter().any(|o| value(o).is_some_and(|y| x.equals(&y)))),
            Condition::Exists(p) => resolve(item, p).is_some(),
            Condition::NotExists(p) => resolve(item, p).is_none(),
            Condition::Type(p, t) => resolve(item, p).is_some_and(|a| a.type_name() == *t),
            Condition::BeginsWith(p, o) => match (resolve(item, p), value(o)) {
                (Some(a), Some(prefix)) => a.begins_with(&prefix),
                _ => false,
            },
            Condition::Contains(p, o) => match (resolve(item, p), value(o)) {
                (Some(a), Some(x)) => a.contains(&x),
                _ => false,
            },
        }
    }
}

fn wrong_type(operator: &str) -> ApiError {
    ApiError::validation(format!(
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: {operator}"
    ))
}

fn number_of(attr: &Attr, operator: &str) -> Result<Decimal, ApiError> {
    match attr {
        Attr::N(n) => Decimal::parse(n).map_err(|e| ApiError::validation(e.to_string())),
        _ => Err(wrong_type(operator)),
    }
}

fn stored_number(d: Decimal) -> Result<Attr, ApiError> {
    let d = d
        .checked()
        .map_err(|e| ApiError::validation(e.to_string()))?;
    Ok(Attr::N(d.to_text()))
}

fn set_operand(operand: &Operand, item: &Item) -> Result<Attr, ApiError> {
    match operand {
        Operand::Value(v) => Ok(v.clone()),
        Operand::Path(p) => resolve(item, p).cloned().ok_or_else(|| {
            ApiError::validation(
                "The provided expression refers to an attribute that does not exist in the item",
            )
        }),
        Operand::IfNotExists(p, fallback) => match resolve(item, p) {
            Some(v) => Ok(v.clone()),
            None => set_operand(fallback, item),
        },
        Operand::ListAppend(a, b) => match (set_operand(a, item)?, set_operand(b, item)?) {
            (Attr::L(mut x), Attr::L(y)) => {
                x.extend(y);
                Ok(Attr::L(x))
            }
            _ => Err(wrong_type("list_append")),
        },
        Operand::Plus(a, b) => {
            let sum = number_of(&set_operand(a, item)?, "+")?
                .add(&number_of(&set_operand(b, item)?, "+")?);
            stored_number(sum)
        }
        Operand::Minus(a, b) => {
            let difference = number_of(&set_operand(a, item)?, "-")?
                .add(&number_of(&set_operand(b, item)?, "-")?.negated());
            stored_number(difference)
        }
        Operand::Size(_) => Err(wrong_type("size")),
    }
}

/// The union (`ADD`) or difference (`DELETE`) of two sets of one type;
/// `None` when the types differ.
fn set_merge(existing: &Attr, change: &Attr, add: bool) -> Option<Option<Attr>> {
    fn merge(
        a: &[String],
        b: &[String],
        add: bool,
        eq: impl Fn(&String, &String) -> bool,
    ) -> Vec<String> {
        if add {
            let mut out = a.to_vec();
            out.extend(b.iter().filter(|x| !a.iter().any(|y| eq(x, y))).cloned());
            out
        } else {
            a.iter()
                .filter(|x| !b.iter().any(|y| eq(x, y)))
                .cloned()
                .collect()
        }
    }
    let numbers_equal = |x: &String, y: &String| Attr::N(x.clone()).equals(&Attr::N(y.clone()));
    let merged = match (existing, change) {
        (Attr::Ss(a), Attr::Ss(b)) => Attr::Ss(merge(a, b, add, |x, y| x == y)),
        (Attr::Ns(a), Attr::Ns(b)) => Attr::Ns(merge(a, b, add, numbers_equal)),
        (Attr::Bs(a), Attr::Bs(b)) => Attr::Bs(merge(a, b, add, |x, y| {
            Attr::B(x.clone()).equals(&Attr::B(y.clone()))
        })),
        _ => return None,
    };
    // An emptied set is no attribute at all.
    Some((merged.size() != Some(0)).then_some(merged))
}

impl Update {
    /// The top-level attributes the update writes.
    pub fn touched(&self) -> impl Iterator<Item = &String> {
        self.set
            .iter()
            .map(|(n, _)| n)
            .chain(self.remove.iter())
            .chain(self.add.iter().map(|(n, _)| n))
            .chain(self.delete.iter().map(|(n, _)| n))
    }

    /// The item after the update; every right-hand side is read from the
    /// item as it was before, as DynamoDB does.
    pub fn apply(&self, old: &Item, key: &[String]) -> Result<Item, ApiError> {
        if let Some(k) = self.touched().find(|n| key.contains(n)) {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {k}. This attribute is part of the key"
            )));
        }
        let mut new = old.clone();
        for (name, operand) in &self.set {
            new.insert(name.clone(), set_operand(operand, old)?);
        }
        for name in &self.remove {
            new.remove(name);
        }
        for (name, value) in &self.add {
            let merged = match (old.get(name), value) {
                (None, Attr::N(_) | Attr::Ss(_) | Attr::Ns(_) | Attr::Bs(_)) => Some(value.clone()),
                (None, _) => return Err(wrong_type("ADD")),
                (Some(Attr::N(a)), Attr::N(b)) => Some(stored_number(
                    number_of(&Attr::N(a.clone()), "ADD")?
                        .add(&number_of(&Attr::N(b.clone()), "ADD")?),
                )?),
                (Some(existing), change) => {
                    set_merge(existing, change, true).ok_or_else(|| wrong_type("ADD"))?
                }
            };
            if let Some(v) = merged {
                new.insert(name.clone(), v);
            }
        }
        for (name, value) in &self.delete {
            if !matches!(value, Attr::Ss(_) | Attr::Ns(_) | Attr::Bs(_)) {
                return Err(wrong_type("DELETE"));
            }
            if let Some(existing) = old.get(name) {
                match set_merge(existing, value, false).ok_or_else(|| wrong_type("DELETE"))? {
                    Some(v) => new.insert(name.clone(), v),
                    None => new.remove(name),
                };
            }
        }
        Ok(new)
    }
}
