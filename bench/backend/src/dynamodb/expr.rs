//! DynamoDB expressions: condition, update and projection expressions,
//! parsed with their `#name` / `:value` placeholders and evaluated on an
//! item.
//!
//! Supported: the whole condition grammar (`OR`, `AND`, `NOT`,
//! parentheses, `= <> < <= > >=`, `BETWEEN`, `IN`, `attribute_exists`,
//! `attribute_not_exists`, `attribute_type`, `begins_with`, `contains`,
//! `size`) on nested paths; update expressions (`SET` with `+`, `-`,
//! `if_not_exists`, `list_append`; `REMOVE`; `ADD`; `DELETE`) on top-level
//! attributes; projections of top-level attributes. Refused as DynamoDB
//! does: undefined or unused placeholders, overlapping update paths,
//! updates of key attributes, a clause given twice. Not checked: reserved
//! words used without a placeholder.

use super::attr::{Attr, Item};
use super::number::Decimal;
use crate::reply::ApiError;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

/// The placeholders of one request, and which of them its expressions use.
pub(crate) struct Placeholders<'a> {
    names: Option<&'a HashMap<String, String>>,
    values: Option<&'a HashMap<String, Attr>>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

impl<'a> Placeholders<'a> {
    pub fn new(
        names: Option<&'a HashMap<String, String>>,
        values: Option<&'a HashMap<String, Attr>>,
    ) -> Self {
        Self {
            names,
            values,
            used_names: BTreeSet::new(),
            used_values: BTreeSet::new(),
        }
    }

    fn name(&mut self, placeholder: &str) -> Result<String, String> {
        let name = self
            .names
            .and_then(|n| n.get(placeholder))
            .ok_or_else(|| {
                format!("An expression attribute name used in the document path is not defined; attribute name: {placeholder}")
            })?;
        self.used_names.insert(placeholder.to_owned());
        Ok(name.clone())
    }

    fn value(&mut self, placeholder: &str) -> Result<Attr, String> {
        let value = self
            .values
            .and_then(|v| v.get(placeholder))
            .ok_or_else(|| {
                format!("An expression attribute value used in expression is not defined; attribute value: {placeholder}")
            })?;
        self.used_values.insert(placeholder.to_owned());
        value.clone().normalized().map_err(|e| e.message)
    }

    /// Refuses placeholders no expression used, as DynamoDB does.
    pub fn finish(self) -> Result<(), ApiError> {
        fn unused<'k>(given: Option<Vec<&'k String>>, used: &BTreeSet<String>) -> Vec<&'k String> {
            let mut left: Vec<&String> = given
                .unwrap_or_default()
                .into_iter()
                .filter(|k| !used.contains(*k))
                .collect();
            left.sort();
            left
        }
        let names = unused(self.names.map(|n| n.keys().collect()), &self.used_names);
        if !names.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                join(&names)
            )));
        }
        let values = unused(self.values.map(|v| v.keys().collect()), &self.used_values);
        if !values.is_empty() {
            return Err(ApiError::validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                join(&values)
            )));
        }
        Ok(())
    }
}

fn join(keys: &[&String]) -> String {
    keys.iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

// ------------------------------------------------------------------------
// tokens
// ------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Name(String),
    Value(String),
    Index(usize),
    Open,
    Close,
    Comma,
    Dot,
    OpenBracket,
    CloseBracket,
    Cmp(Cmp),
    Plus,
    Minus,
}

/// A comparator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let take_word = |from: usize| {
            let mut j = from;
            while j < chars.len() && word_char(chars[j]) {
                j += 1;
            }
            (chars[from..j].iter().collect::<String>(), j)
        };
        match c {
            c if c.is_whitespace() => i += 1,
            '#' | ':' => {
                let (word, j) = take_word(i + 1);
                if word.is_empty() {
                    return Err(format!("Syntax error; token: \"{c}\""));
                }
                out.push(if c == '#' {
                    Tok::Name(format!("#{word}"))
                } else {
                    Tok::Value(format!(":{word}"))
                });
                i = j;
            }
            c if c.is_ascii_digit() => {
                let (word, j) = take_word(i);
                let index = word
                    .parse()
                    .map_err(|_| format!("Syntax error; token: \"{word}\""))?;
                out.push(Tok::Index(index));
                i = j;
            }
            c if word_char(c) => {
                let (word, j) = take_word(i);
                out.push(Tok::Word(word));
                i = j;
            }
            _ => {
                let next = chars.get(i + 1).copied();
                let (tok, len) = match (c, next) {
                    ('<', Some('>')) => (Tok::Cmp(Cmp::Ne), 2),
                    ('<', Some('=')) => (Tok::Cmp(Cmp::Le), 2),
                    ('>', Some('=')) => (Tok::Cmp(Cmp::Ge), 2),
                    ('<', _) => (Tok::Cmp(Cmp::Lt), 1),
                    ('>', _) => (Tok::Cmp(Cmp::Gt), 1),
                    ('=', _) => (Tok::Cmp(Cmp::Eq), 1),
                    ('(', _) => (Tok::Open, 1),
                    (')', _) => (Tok::Close, 1),
                    (',', _) => (Tok::Comma, 1),
                    ('.', _) => (Tok::Dot, 1),
                    ('[', _) => (Tok::OpenBracket, 1),
                    (']', _) => (Tok::CloseBracket, 1),
                    ('+', _) => (Tok::Plus, 1),
                    ('-', _) => (Tok::Minus, 1),
                    _ => return Err(format!("Invalid token: \"{c}\"")),
                };
                out.push(tok);
                i += len;
            }
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------
// syntax
// ------------------------------------------------------------------------

/// One step of a document path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Name(String),
    Index(usize),
}

pub(crate) type Path = Vec<Step>;

/// A value in an expression.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Path(Path),
    Value(Attr),
    Size(Path),
    IfNotExists(Path, Box<Operand>),
    ListAppend(Box<Operand>, Box<Operand>),
    Plus(Box<Operand>, Box<Operand>),
    Minus(Box<Operand>, Box<Operand>),
}

/// A parsed condition expression.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    Or(Box<Condition>, Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare(Operand, Cmp, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    Type(Path, &'static str),
    BeginsWith(Path, Operand),
    Contains(Path, Operand),
}

/// A parsed update expression, on top-level attributes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Update {
    set: Vec<(String, Operand)>,
    remove: Vec<String>,
    add: Vec<(String, Attr)>,
    delete: Vec<(String, Attr)>,
}

struct Parser<'p, 'a> {
    toks: Vec<Tok>,
    pos: usize,
    placeholders: &'p mut Placeholders<'a>,
}

const TYPES: [&str; 10] = ["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

impl<'p, 'a> Parser<'p, 'a> {
    fn new(text: &str, placeholders: &'p mut Placeholders<'a>) -> Result<Self, String> {
        Ok(Self {
            toks: tokenize(text)?,
            pos: 0,
            placeholders,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.pos + ahead)
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn unexpected(&self) -> String {
        match self.peek() {
            Some(tok) => format!("Syntax error; token: {tok:?}"),
            None => "Syntax error; token: <EOF>".to_owned(),
        }
    }

    fn expect(&mut self, tok: Tok) -> Result<(), String> {
        if self.peek() == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn function_call(&self) -> Option<String> {
        match (self.peek(), self.peek_at(1)) {
            (Some(Tok::Word(w)), Some(Tok::Open)) => Some(w.clone()),
            _ => None,
        }
    }

    fn end(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.unexpected()),
        }
    }

    fn path(&mut self) -> Result<Path, String> {
        let mut path = vec![match self.next() {
            Some(Tok::Word(w)) => Step::Name(w),
            Some(Tok::Name(n)) => Step::Name(self.placeholders.name(&n)?),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.unexpected());
            }
        }];
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    path.push(match self.next() {
                        Some(Tok::Word(w)) => Step::Name(w),
                        Some(Tok::Name(n)) => Step::Name(self.placeholders.name(&n)?),
                        _ => return Err("Syntax error; a path step is missing after '.'".into()),
                    });
                }
                Some(Tok::OpenBracket) => {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Index(i)) => path.push(Step::Index(i)),
                        _ => return Err("Syntax error; a list index must be a number".into()),
                    }
                    self.expect(Tok::CloseBracket)?;
                }
                _ => return Ok(path),
            }
        }
    }

    /// An operand of a condition: a path, a value or `size(path)`.
    fn condition_operand(&mut self) -> Result<Operand, String> {
        if let Some(Tok::Value(v)) = self.peek().cloned() {
            self.pos += 1;
            return Ok(Operand::Value(self.placeholders.value(&v)?));
        }
        if self.function_call().as_deref() == Some("size") {
            self.pos += 2;
            let path = self.path()?;
            self.expect(Tok::Close)?;
            return Ok(Operand::Size(path));
        }
        Ok(Operand::Path(self.path()?))
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            self.pos += 1;
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            self.pos += 1;
            left = Condition::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, String> {
        if self.keyword("NOT") {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, String> {
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let inner = self.or()?;
            self.expect(Tok::Close)?;
            return Ok(inner);
        }
        if let Some(function) = self.function_call() {
            let condition = match function.as_str() {
                "attribute_exists" | "attribute_not_exists" => {
                    self.pos += 2;
                    let path = self.path()?;
                    if function == "attribute_exists" {
                        Condition::Exists(path)
                    } else {
                        Condition::NotExists(path)
                    }
                }
                "attribute_type" => {
                    self.pos += 2;
                    let path = self.path()?;
                    self.expect(Tok::Comma)?;
                    let name = match self.condition_operand()? {
                        Operand::Value(Attr::S(t)) => TYPES.into_iter().find(|k| *k == t),
                        _ => None,
                    }
                    .ok_or("Invalid attribute type name found in type condition of condition expression")?;
                    Condition::Type(path, name)
                }
                "begins_with" | "contains" => {
                    self.pos += 2;
                    let path = self.path()?;
                    self.expect(Tok::Comma)?;
                    let operand = self.condition_operand()?;
                    if function == "begins_with" {
                        Condition::BeginsWith(path, operand)
                    } else {
                        Condition::Contains(path, operand)
                    }
                }
                "size" => return self.comparison(),
                other => return Err(format!("Invalid function name; function: {other}")),
            };
            self.expect(Tok::Close)?;
            return Ok(condition);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Condition, String> {
        let left = self.condition_operand()?;
        match self.peek().cloned() {
            Some(Tok::Cmp(cmp)) => {
                self.pos += 1;
                Ok(Condition::Compare(left, cmp, self.condition_operand()?))
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("BETWEEN") => {
                self.pos += 1;
                let low = self.condition_operand()?;
                if !self.keyword("AND") {
                    return Err(self.unexpected());
                }
                self.pos += 1;
                Ok(Condition::Between(left, low, self.condition_operand()?))
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN") => {
                self.pos += 1;
                self.expect(Tok::Open)?;
                let mut list = vec![self.condition_operand()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    list.push(self.condition_operand()?);
                }
                self.expect(Tok::Close)?;
                Ok(Condition::In(left, list))
            }
            _ => Err(self.unexpected()),
        }
    }

    /// The right-hand side of a `SET` action.
    fn set_value(&mut self) -> Result<Operand, String> {
        let left = self.set_term()?;
        match self.peek() {
            Some(Tok::Plus) => {
                self.pos += 1;
                Ok(Operand::Plus(Box::new(left), Box::new(self.set_term()?)))
            }
            Some(Tok::Minus) => {
                self.pos += 1;
                Ok(Operand::Minus(Box::new(left), Box::new(self.set_term()?)))
            }
            _ => Ok(left),
        }
    }

    fn set_term(&mut self) -> Result<Operand, String> {
        if let Some(Tok::Value(v)) = self.peek().cloned() {
            self.pos += 1;
            return Ok(Operand::Value(self.placeholders.value(&v)?));
        }
        match self.function_call().as_deref() {
            Some("if_not_exists") => {
                self.pos += 2;
                let path = self.path()?;
                self.expect(Tok::Comma)?;
                let fallback = self.set_term()?;
                self.expect(Tok::Close)?;
                Ok(Operand::IfNotExists(path, Box::new(fallback)))
            }
            Some("list_append") => {
                self.pos += 2;
                let first = self.set_term()?;
                self.expect(Tok::Comma)?;
                let second = self.set_term()?;
                self.expect(Tok::Close)?;
                Ok(Operand::ListAppend(Box::new(first), Box::new(second)))
            }
            Some(other) => Err(format!("Invalid function name; function: {other}")),
            None => Ok(Operand::Path(self.path()?)),
        }
    }

    /// A top-level attribute name (nested update paths are not supported).
    fn top_level(&mut self) -> Result<String, String> {
        let path = self.path()?;
        match path.as_slice() {
            [Step::Name(name)] => Ok(name.clone()),
            _ => Err("the fixed-latency backend updates top-level attributes only".into()),
        }
    }

    fn value(&mut self) -> Result<Attr, String> {
        match self.next() {
            Some(Tok::Value(v)) => self.placeholders.value(&v),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                Err(self.unexpected())
            }
        }
    }

    fn update(&mut self) -> Result<Update, String> {
        let mut update = Update::default();
        let mut seen = BTreeSet::new();
        while let Some(Tok::Word(word)) = self.peek().cloned() {
            let clause = word.to_ascii_uppercase();
            if !seen.insert(clause.clone()) {
                return Err(format!(
                    "The \"{clause}\" section can only be used once in an update expression;"
                ));
            }
            self.pos += 1;
            loop {
                match clause.as_str() {
                    "SET" => {
                        let name = self.top_level()?;
                        self.expect(Tok::Cmp(Cmp::Eq))?;
                        update.set.push((name, self.set_value()?));
                    }
                    "REMOVE" => update.remove.push(self.top_level()?),
                    "ADD" => {
                        let name = self.top_level()?;
                        update.add.push((name, self.value()?));
                    }
                    "DELETE" => {
                        let name = self.top_level()?;
                        update.delete.push((name, self.value()?));
                    }
                    _ => return Err(format!("Syntax error; token: \"{word}\"")),
                }
                if self.peek() != Some(&Tok::Comma) {
                    break;
                }
                self.pos += 1;
            }
        }
        self.end()?;
        let mut names: Vec<&String> = update.touched().collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [{}], path two: [{}]",
                w[0], w[1]
            ));
        }
        if names.is_empty() {
            return Err("Syntax error; token: <EOF>".into());
        }
        Ok(update)
    }
}

/// Parses a condition expression.
pub(crate) fn condition(
    text: &str,
    placeholders: &mut Placeholders,
) -> Result<Condition, ApiError> {
    let invalid = |e: String| ApiError::validation(format!("Invalid ConditionExpression: {e}"));
    let mut parser = Parser::new(text, placeholders).map_err(invalid)?;
    let condition = parser.or().map_err(invalid)?;
    parser.end().map_err(invalid)?;
    Ok(condition)
}

/// Parses an update expression.
pub(crate) fn update(text: &str, placeholders: &mut Placeholders) -> Result<Update, ApiError> {
    let invalid = |e: String| ApiError::validation(format!("Invalid UpdateExpression: {e}"));
    Parser::new(text, placeholders)
        .and_then(|mut p| p.update())
        .map_err(invalid)
}

/// Parses a projection expression into top-level attribute names.
pub(crate) fn projection(
    text: &str,
    placeholders: &mut Placeholders,
) -> Result<Vec<String>, ApiError> {
    let invalid = |e: String| ApiError::validation(format!("Invalid ProjectionExpression: {e}"));
    let mut parser = Parser::new(text, placeholders).map_err(invalid)?;
    let mut names = vec![parser.top_level().map_err(invalid)?];
    while parser.peek() == Some(&Tok::Comma) {
        parser.pos += 1;
        names.push(parser.top_level().map_err(invalid)?);
    }
    parser.end().map_err(invalid)?;
    Ok(names)
}

// ------------------------------------------------------------------------
// evaluation
// ------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> HashMap<String, Attr> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::from_str(v).unwrap()))
            .collect()
    }

    fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn item(json: &str) -> Item {
        serde_json::from_str(json).unwrap()
    }

    fn holds(text: &str, n: &[(&str, &str)], v: &[(&str, &str)], on: &str) -> bool {
        let (n, v) = (names(n), values(v));
        let mut p = Placeholders::new(Some(&n), Some(&v));
        let c = condition(text, &mut p).unwrap();
        p.finish().unwrap();
        c.holds(&item(on))
    }

    /// The idempotency lock condition of crates/aws (`FREE`).
    const FREE: &str = "attribute_not_exists(id) OR (#status = :completed AND expiration < :now) OR (#status = :in_progress AND in_progress_expiration < :now_ms)";

    fn free(on: &str) -> bool {
        holds(
            FREE,
            &[("#status", "status")],
            &[
                (":now", r#"{"N":"1000"}"#),
                (":completed", r#"{"S":"COMPLETED"}"#),
                (":now_ms", r#"{"N":"1000000"}"#),
                (":in_progress", r#"{"S":"INPROGRESS"}"#),
            ],
            on,
        )
    }

    #[test]
    fn the_lock_condition_frees_only_lapsed_records() {
        assert!(free("{}"));
        assert!(free(
            r#"{"id":{"S":"k"},"status":{"S":"COMPLETED"},"expiration":{"N":"999"},"in_progress_expiration":{"N":"5"}}"#
        ));
        assert!(!free(
            r#"{"id":{"S":"k"},"status":{"S":"COMPLETED"},"expiration":{"N":"1001"},"in_progress_expiration":{"N":"5"}}"#
        ));
        assert!(free(
            r#"{"id":{"S":"k"},"status":{"S":"INPROGRESS"},"expiration":{"N":"99999"},"in_progress_expiration":{"N":"999999"}}"#
        ));
        assert!(!free(
            r#"{"id":{"S":"k"},"status":{"S":"INPROGRESS"},"expiration":{"N":"1"},"in_progress_expiration":{"N":"1000001"}}"#
        ));
    }

    #[test]
    fn the_quota_condition_counts_the_set() {
        let cond = "attribute_not_exists(#ids) OR size(#ids) < :cap OR contains(#ids, :msg_id)";
        let check = |on: &str, msg: &str| {
            holds(
                cond,
                &[("#ids", "ids")],
                &[(":cap", r#"{"N":"2"}"#), (":msg_id", msg)],
                on,
            )
        };
        assert!(check("{}", r#"{"S":"m1"}"#));
        assert!(check(r#"{"ids":{"SS":["m1"]}}"#, r#"{"S":"m2"}"#));
        assert!(!check(r#"{"ids":{"SS":["m1","m2"]}}"#, r#"{"S":"m3"}"#));
        assert!(check(r#"{"ids":{"SS":["m1","m2"]}}"#, r#"{"S":"m2"}"#));
    }

    #[test]
    fn comparisons_with_missing_attributes_are_false_but_not_equal() {
        let v = [(":v", r#"{"S":"x"}"#)];
        assert!(!holds("a = :v", &[], &v, "{}"));
        assert!(holds("a <> :v", &[], &v, "{}"));
        assert!(!holds("a < :v", &[], &v, r#"{"a":{"N":"1"}}"#));
        assert!(holds("NOT a = :v", &[], &v, "{}"));
        assert!(holds(
            "a BETWEEN :lo AND :hi",
            &[],
            &[(":lo", r#"{"N":"1"}"#), (":hi", r#"{"N":"3"}"#)],
            r#"{"a":{"N":"2"}}"#
        ));
        assert!(holds(
            "a IN (:x, :y)",
            &[],
            &[(":x", r#"{"S":"p"}"#), (":y", r#"{"S":"q"}"#)],
            r#"{"a":{"S":"q"}}"#
        ));
        assert!(holds(
            "m.inner[1] = :v AND attribute_type(m, :t)",
            &[],
            &[(":v", r#"{"S":"x"}"#), (":t", r#"{"S":"M"}"#)],
            r#"{"m":{"M":{"inner":{"L":[{"S":"w"},{"S":"x"}]}}}}"#
        ));
    }

    #[test]
    fn placeholders_must_be_defined_and_used() {
        let (n, v) = (
            names(&[("#a", "a"), ("#b", "b")]),
            values(&[(":v", r#"{"S":"x"}"#)]),
        );
        let mut p = Placeholders::new(Some(&n), Some(&v));
        condition("#a = :v", &mut p).unwrap();
        let e = p.finish().unwrap_err();
        assert!(e.message.contains("ExpressionAttributeNames unused"), "{e}");

        let mut p = Placeholders::new(None, None);
        let e = condition("a = :missing", &mut p).unwrap_err();
        assert!(e.message.contains("not defined"), "{e}");

        let mut p = Placeholders::new(None, None);
        for bad in ["a =", "(a = b", "a = b c", "unknown_fn(a)", "a BETWEEN b"] {
            assert_eq!(
                condition(bad, &mut p).unwrap_err().code,
                "ValidationException",
                "{bad}"
            );
        }
    }

    fn updated(
        text: &str,
        n: &[(&str, &str)],
        v: &[(&str, &str)],
        on: &str,
    ) -> Result<Item, ApiError> {
        let (n, v) = (names(n), values(v));
        let mut p = Placeholders::new(Some(&n), Some(&v));
        let u = update(text, &mut p)?;
        p.finish()?;
        u.apply(&item(on), &["id".to_owned()])
    }

    #[test]
    fn updates_read_the_old_item_and_write_top_level_attributes() {
        // The announcement mark: the first time stays.
        let mark = |on: &str| {
            updated(
                "SET announced_at = if_not_exists(announced_at, :value)",
                &[],
                &[(":value", r#"{"S":"t2"}"#)],
                on,
            )
            .unwrap()
        };
        assert_eq!(
            mark(r#"{"id":{"S":"u"}}"#)["announced_at"],
            Attr::S("t2".into())
        );
        assert_eq!(
            mark(r#"{"id":{"S":"u"},"announced_at":{"S":"t1"}}"#)["announced_at"],
            Attr::S("t1".into())
        );
        // The mail quota: a set grows by one id, the expiration is set.
        let quota = updated(
            "ADD #ids :msg SET #expiration = :expiration",
            &[("#ids", "ids"), ("#expiration", "expiration")],
            &[
                (":msg", r#"{"SS":["m2"]}"#),
                (":expiration", r#"{"N":"172800"}"#),
            ],
            r#"{"id":{"S":"q"},"ids":{"SS":["m1"]}}"#,
        )
        .unwrap();
        assert_eq!(quota["ids"], Attr::Ss(vec!["m1".into(), "m2".into()]));
        assert_eq!(quota["expiration"], Attr::N("172800".into()));
        // Arithmetic, removal, set deletion emptying the set.
        let out = updated(
            "SET n = n + :one, m = :one - n REMOVE gone DELETE s :s",
            &[],
            &[(":one", r#"{"N":"1"}"#), (":s", r#"{"SS":["a"]}"#)],
            r#"{"id":{"S":"x"},"n":{"N":"41"},"gone":{"BOOL":true},"s":{"SS":["a"]}}"#,
        )
        .unwrap();
        assert_eq!(out["n"], Attr::N("42".into()));
        assert_eq!(out["m"], Attr::N("-40".into()));
        assert!(!out.contains_key("gone") && !out.contains_key("s"));
    }

    #[test]
    fn updates_dynamodb_refuses_are_refused() {
        let v = [(":v", r#"{"S":"x"}"#)];
        for (text, values) in [
            ("SET id = :v", &v[..]),
            ("SET a = :v, a = :v", &v[..]),
            ("SET a = :v SET b = :v", &v[..]),
            ("SET a = missing", &[][..]),
            ("ADD a :v", &v[..]),
            ("SET a.b = :v", &v[..]),
        ] {
            let e = updated(text, &[], values, r#"{"id":{"S":"x"}}"#).unwrap_err();
            assert_eq!(e.code, "ValidationException", "{text}");
        }
    }

    #[test]
    fn projections_name_top_level_attributes() {
        let n = names(&[("#s", "status")]);
        let mut p = Placeholders::new(Some(&n), None);
        assert_eq!(projection("id, #s", &mut p).unwrap(), ["id", "status"]);
        p.finish().unwrap();
    }
}
