//! Condition, update and projection expressions parsed, placeholders
//! resolved and checked as they are used.

use super::tokens::{tokenize, Tok};
use super::{Cmp, Condition, Operand, Path, Placeholders, Step, Update};
use crate::dynamodb::attr::Attr;
use crate::reply::ApiError;
use std::collections::BTreeSet;

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
