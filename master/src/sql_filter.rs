//! The filter language of SQL lobbies: a small, safe expression language of our own over
//! the lobby-listed properties `C0` to `C9`. Nothing is handed to a database.
//!
//! ```text
//! expr  := or
//! or    := and ("OR" and)*
//! and   := not ("AND" not)*
//! not   := "NOT" not | "(" expr ")" | cmp
//! cmp   := column op literal | literal op column | column ["NOT"] "IN" "(" literal ("," literal)* ")"
//! op    := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! column  := C0 .. C9                      (case-insensitive)
//! literal := number | 'text' | "text" | TRUE | FALSE | NULL   (quotes doubled to escape)
//! ```
//!
//! Evaluation follows SQL's three-valued logic: a comparison with a missing property or
//! NULL is unknown, and a game matches only if the whole filter is true. Numbers compare
//! numerically whether stored as integers or floats; text compares by bytes.

use std::cmp::Ordering;

use switchboard_protocol::{Properties, Value};

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 1024;
/// Deepest nesting of parentheses and NOT.
pub const MAX_DEPTH: usize = 32;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Both hold.
    And(Box<Expr>, Box<Expr>),
    /// Either holds.
    Or(Box<Expr>, Box<Expr>),
    /// It does not hold.
    Not(Box<Expr>),
    /// `Cn op literal`.
    Cmp {
        /// Column number 0..=9.
        col: u8,
        /// Comparison.
        op: Op,
        /// Right-hand side.
        lit: Lit,
    },
    /// `Cn IN (...)`.
    In {
        /// Column number.
        col: u8,
        /// Candidates.
        list: Vec<Lit>,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn flip(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            other => other,
        }
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
        }
    }
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// A number.
    Num(f64),
    /// Text.
    Str(String),
    /// TRUE or FALSE.
    Bool(bool),
    /// NULL.
    Null,
}

/// Why a filter was refused; the message says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SQL filter: {0}")]
pub struct FilterError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

fn lex(src: &str) -> Result<Vec<Tok>, FilterError> {
    let err = |at: usize, what: &str| FilterError(format!("{what} at byte {at}"));
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1
            }
            b'=' => {
                i += if b.get(i + 1) == Some(&b'=') { 2 } else { 1 };
                out.push(Tok::Op(Op::Eq));
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Op(Op::Ne));
                i += 2
            }
            b'<' => match b.get(i + 1) {
                Some(b'=') => {
                    out.push(Tok::Op(Op::Le));
                    i += 2
                }
                Some(b'>') => {
                    out.push(Tok::Op(Op::Ne));
                    i += 2
                }
                _ => {
                    out.push(Tok::Op(Op::Lt));
                    i += 1
                }
            },
            b'>' => {
                if b.get(i + 1) == Some(&b'=') {
                    out.push(Tok::Op(Op::Ge));
                    i += 2
                } else {
                    out.push(Tok::Op(Op::Gt));
                    i += 1
                }
            }
            b'\'' | b'"' => {
                let quote = c;
                let mut text = Vec::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(err(i, "unterminated text")),
                        Some(&q) if q == quote && b.get(i + 1) == Some(&quote) => {
                            text.push(quote);
                            i += 2
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&x) => {
                            text.push(x);
                            i += 1
                        }
                    }
                }
                out.push(Tok::Str(
                    String::from_utf8(text).map_err(|_| err(i, "invalid UTF-8"))?,
                ));
            }
            b'0'..=b'9' | b'-' | b'.' => {
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'e' || b[i] == b'E')
                {
                    i += 1;
                }
                let n: f64 = src[start..i]
                    .parse()
                    .map_err(|_| err(start, "malformed number"))?;
                if !n.is_finite() {
                    return Err(err(start, "number out of range"));
                }
                out.push(Tok::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Tok::Ident(src[start..i].to_ascii_uppercase()));
            }
            _ => return Err(err(i, "unexpected character")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(k)) if k == kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn err(&self, what: &str) -> FilterError {
        FilterError(format!("{what} at token {}", self.pos + 1))
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let e = if self.keyword("NOT") {
            Expr::Not(Box::new(self.not()?))
        } else if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            if self.peek() != Some(&Tok::RParen) {
                return Err(self.err("expected )"));
            }
            self.pos += 1;
            e
        } else {
            self.cmp()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn column(&mut self) -> Option<u8> {
        let col = match self.peek() {
            Some(Tok::Ident(id)) => match id.as_bytes() {
                [b'C', d] if d.is_ascii_digit() => Some(d - b'0'),
                _ => None,
            },
            _ => None,
        };
        if col.is_some() {
            self.pos += 1;
        }
        col
    }

    fn literal(&mut self) -> Result<Lit, FilterError> {
        let lit = match self.peek() {
            Some(Tok::Num(n)) => Lit::Num(*n),
            Some(Tok::Str(s)) => Lit::Str(s.clone()),
            Some(Tok::Ident(k)) if k == "TRUE" => Lit::Bool(true),
            Some(Tok::Ident(k)) if k == "FALSE" => Lit::Bool(false),
            Some(Tok::Ident(k)) if k == "NULL" => Lit::Null,
            _ => return Err(self.err("expected a literal")),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn op(&mut self) -> Result<Op, FilterError> {
        match self.peek() {
            Some(Tok::Op(op)) => {
                let op = *op;
                self.pos += 1;
                Ok(op)
            }
            _ => Err(self.err("expected a comparison")),
        }
    }

    fn cmp(&mut self) -> Result<Expr, FilterError> {
        if let Some(col) = self.column() {
            let negated = self.keyword("NOT");
            if self.keyword("IN") {
                if self.peek() != Some(&Tok::LParen) {
                    return Err(self.err("expected ( after IN"));
                }
                self.pos += 1;
                let mut list = vec![self.literal()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    list.push(self.literal()?);
                }
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("expected )"));
                }
                self.pos += 1;
                let e = Expr::In { col, list };
                return Ok(if negated { Expr::Not(Box::new(e)) } else { e });
            }
            if negated {
                return Err(self.err("expected IN after NOT"));
            }
            let op = self.op()?;
            let lit = self.literal()?;
            return Ok(Expr::Cmp { col, op, lit });
        }
        let lit = self.literal()?;
        let op = self.op()?;
        let col = self
            .column()
            .ok_or_else(|| self.err("expected a column C0 to C9"))?;
        Ok(Expr::Cmp {
            col,
            op: op.flip(),
            lit,
        })
    }
}

/// Parses a filter.
pub fn parse(src: &str) -> Result<Expr, FilterError> {
    if src.len() > MAX_FILTER_LEN {
        return Err(FilterError(format!("longer than {MAX_FILTER_LEN} bytes")));
    }
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err(FilterError("empty".into()));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.err("unexpected token"));
    }
    Ok(e)
}

const COLUMNS: [&str; 10] = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"];

/// The property key of column `n` (0..=9).
pub fn column_key(n: u8) -> &'static str {
    COLUMNS[usize::from(n)]
}

fn compare(value: Option<&Value>, op: Op, lit: &Lit) -> Option<bool> {
    let ord = match (value?, lit) {
        (Value::Int(a), Lit::Num(b)) => (*a as f64).partial_cmp(b)?,
        (Value::Float(a), Lit::Num(b)) => a.partial_cmp(b)?,
        (Value::Str(a), Lit::Str(b)) => a.as_str().cmp(b.as_str()),
        (Value::Bool(a), Lit::Bool(b)) => a.cmp(b),
        // NULL, missing values and mismatched types: unknown.
        _ => return None,
    };
    Some(op.holds(ord))
}

impl Expr {
    /// Evaluates with SQL three-valued logic: `None` is unknown.
    pub fn eval(&self, props: &Properties) -> Option<bool> {
        match self {
            Expr::And(a, b) => match (a.eval(props), b.eval(props)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Expr::Or(a, b) => match (a.eval(props), b.eval(props)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Expr::Not(a) => a.eval(props).map(|v| !v),
            Expr::Cmp { col, op, lit } => compare(props.get(column_key(*col)), *op, lit),
            Expr::In { col, list } => {
                let v = props.get(column_key(*col));
                let mut unknown = false;
                for lit in list {
                    match compare(v, Op::Eq, lit) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if unknown { None } else { Some(false) }
            }
        }
    }

    /// Whether a game with these properties matches.
    pub fn matches(&self, props: &Properties) -> bool {
        self.eval(props) == Some(true)
    }

    /// `Cn = 'text'` terms that every match must satisfy (top-level AND only): the
    /// matchmaker uses them to search an index instead of every game.
    pub fn required_equalities(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        self.collect_equalities(&mut out);
        out
    }

    fn collect_equalities(&self, out: &mut Vec<(String, Value)>) {
        match self {
            Expr::And(a, b) => {
                a.collect_equalities(out);
                b.collect_equalities(out);
            }
            Expr::Cmp {
                col,
                op: Op::Eq,
                lit: Lit::Str(s),
            } => out.push((column_key(*col).to_string(), Value::Str(s.clone()))),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, Value)]) -> Properties {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn the_issue_example() {
        let f = parse(r#"C0 = "eu" AND C1 > 10"#).unwrap();
        assert!(f.matches(&props(&[
            ("C0", Value::Str("eu".into())),
            ("C1", Value::Int(11))
        ])));
        assert!(!f.matches(&props(&[
            ("C0", Value::Str("eu".into())),
            ("C1", Value::Int(10))
        ])));
        assert!(!f.matches(&props(&[
            ("C0", Value::Str("us".into())),
            ("C1", Value::Int(11))
        ])));
        assert!(
            !f.matches(&props(&[("C1", Value::Int(11))])),
            "missing is unknown"
        );
        assert_eq!(
            f.required_equalities(),
            vec![("C0".into(), Value::Str("eu".into()))]
        );
    }

    #[test]
    fn operators_precedence_and_in() {
        let p = props(&[
            ("C0", Value::Int(3)),
            ("C2", Value::Str("x".into())),
            ("C3", Value::Float(2.5)),
        ]);
        for (src, want) in [
            ("C0 = 3", true),
            ("c0 == 3.0", true),
            ("C0 <> 3", false),
            ("C0 != 4", true),
            ("C0 >= 3 and C0 <= 3", true),
            ("5 > C0", true),
            ("C3 < 3", true),
            ("C0 = 1 OR C0 = 3 AND C2 = 'x'", true),
            ("(C0 = 1 OR C0 = 3) AND C2 = 'y'", false),
            ("NOT C0 = 1", true),
            ("C2 IN ('a', 'x')", true),
            ("C2 NOT IN ('a', 'x')", false),
            ("C9 = 1 OR C0 = 3", true),
            ("NOT C9 = 1", false),
            ("C0 = 'text'", false),
            ("C2 = 'it''s'", false),
        ] {
            assert_eq!(parse(src).unwrap().matches(&p), want, "{src}");
        }
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        for src in [
            "",
            "C0 =",
            "C10 = 1",
            "C0 = 'open",
            "C0 = 1 AND",
            "DROP TABLE games",
            "C0 = 1; DELETE",
            "(C0 = 1",
            "C0 IN 1",
            "C0 NOT = 1",
            "1 = 2",
            "C0 = 1e999",
        ] {
            assert!(parse(src).is_err(), "{src:?} should be refused");
        }
        let deep = format!("{}C0 = 1{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).unwrap_err().0.contains("deeply"));
        let long = format!("C0 IN ({})", vec!["1"; 600].join(","));
        assert!(parse(&long).unwrap_err().0.contains("longer"));
    }

    /// docs/PROTOCOL.md §5.4, as written there.
    #[test]
    fn the_documents_numbers_and_depth() {
        let p = props(&[("C0", Value::Int(7))]);
        for n in ["7", "-2", "0.5", ".5", "1e3"] {
            assert!(parse(&format!("C0 = {n}")).is_ok(), "{n} is a number");
        }
        assert!(parse("C0 > 1e-5").is_err(), "an exponent carries no sign");
        assert!(parse("C0 = 7").unwrap().matches(&p));
        // A comparison is 1 deep; 31 NOTs or parentheses may enclose it, not 32.
        let nots = |n: usize| format!("{}C0 = 7", "NOT ".repeat(n));
        let parens = |n: usize| format!("{}C0 = 7{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nots(31)).is_ok() && parse(&parens(31)).is_ok());
        assert!(parse(&nots(32)).is_err() && parse(&parens(32)).is_err());
        // A filter is at most 1024 bytes, spaces included.
        let padded = |n: usize| format!("C0 = 7{}", " ".repeat(n - 6));
        assert!(parse(&padded(1024)).is_ok());
        assert!(parse(&padded(1025)).is_err());
    }
}
