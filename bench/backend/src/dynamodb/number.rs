//! DynamoDB numbers: decimal, up to 38 significant digits, magnitude
//! between 1E-130 and 1E+126, compared and added exactly (never as f64:
//! millisecond timestamps and large counters must compare exactly).

use std::cmp::Ordering;

/// `0.d1 d2 … dn × 10^exponent`, `digits` without leading or trailing
/// zeros; no digits is zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i32,
}

/// Why a number cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NumberError {
    #[error("The parameter cannot be converted to a numeric value: {0}")]
    NotANumber(String),
    #[error("Attempting to store more than 38 significant digits in a Number")]
    TooPrecise,
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    Overflow,
    #[error("Number underflow. Attempting to store a number with magnitude smaller than supported range")]
    Underflow,
}

impl Decimal {
    /// Parses DynamoDB's number text (`-12.5`, `1e3`, `0.000`).
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let bad = || NumberError::NotANumber(text.to_owned());
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().map_err(|_| bad())?),
            None => (rest, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part)
        {
            return Err(bad());
        }
        let digits: Vec<u8> = int_part
            .bytes()
            .chain(frac_part.bytes())
            .map(|b| b - b'0')
            .collect();
        let exponent = i32::try_from(int_part.len())
            .ok()
            .and_then(|n| n.checked_add(exp))
            .ok_or_else(bad)?;
        Self::normalized(negative, digits, exponent).checked()
    }

    /// Strips leading zeros (moving the exponent) and trailing zeros.
    fn normalized(negative: bool, mut digits: Vec<u8>, mut exponent: i32) -> Self {
        let leading = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..leading);
        exponent -= leading as i32;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Self {
                negative: false,
                digits,
                exponent: 0,
            };
        }
        Self {
            negative,
            digits,
            exponent,
        }
    }

    /// Refuses what DynamoDB cannot store.
    pub fn checked(self) -> Result<Self, NumberError> {
        if self.digits.is_empty() {
            return Ok(self);
        }
        if self.digits.len() > 38 {
            return Err(NumberError::TooPrecise);
        }
        // The leading digit's power of ten is exponent - 1.
        if self.exponent - 1 > 125 {
            return Err(NumberError::Overflow);
        }
        if self.exponent - 1 < -130 {
            return Err(NumberError::Underflow);
        }
        Ok(self)
    }

    /// The text DynamoDB answers for this number (`1.50` → `1.5`).
    pub fn to_text(&self) -> String {
        if self.digits.is_empty() {
            return "0".to_owned();
        }
        let digits: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        let n = self.digits.len() as i32;
        let e = self.exponent;
        let body = if e >= n {
            format!("{digits}{}", "0".repeat((e - n) as usize))
        } else if e > 0 {
            format!("{}.{}", &digits[..e as usize], &digits[e as usize..])
        } else {
            format!("0.{}{digits}", "0".repeat((-e) as usize))
        };
        if self.negative {
            format!("-{body}")
        } else {
            body
        }
    }

    fn magnitude_cmp(&self, other: &Self) -> Ordering {
        match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            // Normalised: the larger exponent is the larger magnitude;
            // with equal exponents the digits compare left to right.
            (false, false) => self
                .exponent
                .cmp(&other.exponent)
                .then_with(|| self.digits.cmp(&other.digits)),
        }
    }

    /// `self + other`, exactly.
    pub fn add(&self, other: &Self) -> Self {
        // Both as integers times 10^low.
        let low_of = |d: &Self| d.exponent - d.digits.len() as i32;
        let low = low_of(self).min(low_of(other));
        let integer = |d: &Self| {
            let mut v = d.digits.clone();
            v.extend(std::iter::repeat_n(0, (low_of(d) - low) as usize));
            v
        };
        let (a, b) = (integer(self), integer(other));
        let (negative, digits) = if self.negative == other.negative {
            (self.negative, add_digits(&a, &b))
        } else if self.magnitude_cmp(other) == Ordering::Less {
            (other.negative, sub_digits(&b, &a))
        } else {
            (self.negative, sub_digits(&a, &b))
        };
        let exponent = digits.len() as i32 + low;
        Self::normalized(negative, digits, exponent)
    }

    /// `-self`.
    pub fn negated(&self) -> Self {
        Self {
            negative: !self.negative && !self.digits.is_empty(),
            ..self.clone()
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |d: &Self| match (d.digits.is_empty(), d.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal if self.negative => other.magnitude_cmp(self),
            Ordering::Equal => self.magnitude_cmp(other),
            unequal => unequal,
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Sum of two non-negative integers given as decimal digits.
fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut i, mut j, mut carry) = (a.len(), b.len(), 0);
    while i > 0 || j > 0 || carry > 0 {
        let mut sum = carry;
        if i > 0 {
            i -= 1;
            sum += a[i];
        }
        if j > 0 {
            j -= 1;
            sum += b[j];
        }
        out.push(sum % 10);
        carry = sum / 10;
    }
    out.reverse();
    out
}

/// `a - b` for non-negative integers with `a >= b`.
fn sub_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let (mut j, mut borrow) = (b.len(), 0i8);
    for i in (0..a.len()).rev() {
        let mut d = a[i] as i8 - borrow;
        if j > 0 {
            j -= 1;
            d -= b[j] as i8;
        }
        borrow = i8::from(d < 0);
        out.push((d + 10 * borrow) as u8);
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Decimal {
        Decimal::parse(text).unwrap()
    }

    #[test]
    fn numbers_answer_in_their_shortest_form() {
        for (input, text) in [
            ("1.50", "1.5"),
            ("007", "7"),
            ("-0", "0"),
            ("0.000", "0"),
            ("1e3", "1000"),
            ("12.5E-3", "0.0125"),
            ("-.5", "-0.5"),
            ("1764000000000", "1764000000000"),
        ] {
            assert_eq!(n(input).to_text(), text, "{input}");
        }
    }

    #[test]
    fn what_is_not_a_storable_number_is_refused() {
        for bad in ["", "-", "1.2.3", "abc", "1e", "0x10", "1 "] {
            assert!(
                matches!(Decimal::parse(bad), Err(NumberError::NotANumber(_))),
                "{bad}"
            );
        }
        assert_eq!(
            Decimal::parse(&"1".repeat(39)),
            Err(NumberError::TooPrecise)
        );
        assert_eq!(Decimal::parse("1e126"), Err(NumberError::Overflow));
        assert_eq!(Decimal::parse("1e-131"), Err(NumberError::Underflow));
        assert!(Decimal::parse("9.9e125").is_ok());
    }

    #[test]
    fn numbers_compare_exactly() {
        let ordered = [
            "-100",
            "-99.5",
            "-1",
            "-0.001",
            "0",
            "0.001",
            "1",
            "1.0000001",
            "99",
            "100",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(n(a).cmp(&n(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
        // Beyond f64's 53 bits.
        assert!(n("9007199254740993") > n("9007199254740992"));
        assert_eq!(n("1.0"), n("1"));
    }

    #[test]
    fn numbers_add_exactly() {
        for (a, b, sum) in [
            ("1", "2", "3"),
            ("0.1", "0.2", "0.3"),
            ("99", "1", "100"),
            ("-5", "3", "-2"),
            ("5", "-5", "0"),
            ("-1.5", "-1.5", "-3"),
            ("1000", "-0.001", "999.999"),
            ("9007199254740992", "1", "9007199254740993"),
        ] {
            assert_eq!(n(a).add(&n(b)).to_text(), sum, "{a} + {b}");
        }
        assert_eq!(n("3").add(&n("5").negated()).to_text(), "-2");
    }
}
