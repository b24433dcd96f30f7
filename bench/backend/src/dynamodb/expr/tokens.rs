//! Expression text into tokens.

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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

pub(super) fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
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
