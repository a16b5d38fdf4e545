//! RON text to a [`Node`]: the value grammar of the RON specification
//! (<https://github.com/ron-rs/ron/blob/master/docs/grammar.md>) as spec files use it — comments,
//! strings (plain and raw), numbers, booleans, lists, maps, structs `(a: 1)`, tuples `(1, 2)`,
//! unit variants `Sign` and variants with content `Pams(w_bits: 2)`, `Cuda(0)` — kept with their
//! names, so an enum value reaches the spec whichever way it is written.

use super::Node;
use serde_json::Number;

/// Parse one RON value (a whole spec file is one value too; `#![enable(..)]` lines are skipped).
pub fn parse(text: &str) -> Result<Node, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.ws()?;
    while p.s[p.i..].starts_with(b"#![") {
        p.skip_line();
        p.ws()?;
    }
    let v = p.value()?;
    p.ws()?;
    if p.i < p.s.len() {
        return Err(p.err("unexpected text after the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        let before = &self.text[..self.i.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
        format!("{line}:{col}: {what}")
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_line(&mut self) {
        while self.peek().is_some_and(|c| c != b'\n') {
            self.i += 1;
        }
    }

    /// Whitespace, `// line` and `/* block */` comments (nested, as RON allows).
    fn ws(&mut self) -> Result<(), String> {
        loop {
            match (self.peek(), self.s.get(self.i + 1)) {
                (Some(c), _) if c.is_ascii_whitespace() => self.i += 1,
                (Some(b'/'), Some(b'/')) => self.skip_line(),
                (Some(b'/'), Some(b'*')) => self.block_comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn block_comment(&mut self) -> Result<(), String> {
        let mut depth = 0;
        while self.i < self.s.len() {
            if self.s[self.i..].starts_with(b"/*") {
                depth += 1;
                self.i += 2;
            } else if self.s[self.i..].starts_with(b"*/") {
                depth -= 1;
                self.i += 2;
                if depth == 0 {
                    return Ok(());
                }
            } else {
                self.i += 1;
            }
        }
        Err(self.err("unclosed /* comment"))
    }

    fn eat(&mut self, c: u8) -> Result<bool, String> {
        self.ws()?;
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        Ok(hit)
    }

    fn value(&mut self) -> Result<Node, String> {
        self.ws()?;
        match self.peek() {
            None => Err(self.err("expected a value, found the end")),
            Some(b'"') => self.string().map(Node::Str),
            Some(b'r') if matches!(self.s.get(self.i + 1), Some(b'"' | b'#')) => {
                self.raw_string().map(Node::Str)
            }
            Some(b'[') => {
                self.i += 1;
                self.items(b']').map(Node::List)
            }
            Some(b'{') => {
                self.i += 1;
                self.map()
            }
            Some(b'(') => {
                self.i += 1;
                self.parens()
            }
            Some(c) if c.is_ascii_digit() || b"+-.".contains(&c) => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.named(),
            Some(c) => Err(self.err(&format!("unexpected character {:?}", c as char))),
        }
    }

    fn ident(&mut self) -> &str {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        &self.text[start..self.i]
    }

    /// `true`, `false`, `Name` or `Name(...)`.
    fn named(&mut self) -> Result<Node, String> {
        let at = self.i;
        let name = self.ident().to_string();
        match name.as_str() {
            "true" => return Ok(Node::Bool(true)),
            "false" => return Ok(Node::Bool(false)),
            "inf" | "NaN" => {
                self.i = at;
                return Err(self.err("not a finite number"));
            }
            _ => {}
        }
        if !self.eat(b'(')? {
            return Ok(Node::Ident(name));
        }
        let content = match self.parens()? {
            Node::List(mut xs) if xs.len() == 1 => xs.remove(0),
            other => other,
        };
        Ok(Node::Variant(name, Box::new(content)))
    }

    /// After `(`: `()` (unit), `(a: 1, ..)` (named fields, a map) or `(x, ..)` (a list).
    fn parens(&mut self) -> Result<Node, String> {
        if self.eat(b')')? {
            return Ok(Node::Null);
        }
        let save = self.i;
        self.ws()?;
        let named = self
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && {
                self.ident();
                let colon = self.eat(b':')?;
                colon && self.peek() != Some(b':')
            };
        self.i = save;
        if !named {
            return self.items(b')').map(Node::List);
        }
        let mut fields = Vec::new();
        loop {
            if self.eat(b')')? {
                return Ok(Node::Map(fields));
            }
            self.ws()?;
            let key = self.ident().to_string();
            if key.is_empty() {
                return Err(self.err("expected a field name"));
            }
            if !self.eat(b':')? {
                return Err(self.err(&format!("expected `:` after `{key}`")));
            }
            fields.push((key, self.value()?));
            if self.eat(b',')? {
                continue;
            }
            return if self.eat(b')')? {
                Ok(Node::Map(fields))
            } else {
                Err(self.err("expected `,` or `)`"))
            };
        }
    }

    /// Comma-separated values up to `close` (a trailing comma allowed).
    fn items(&mut self, close: u8) -> Result<Vec<Node>, String> {
        let mut xs = Vec::new();
        loop {
            if self.eat(close)? {
                return Ok(xs);
            }
            xs.push(self.value()?);
            if !self.eat(b',')? {
                return if self.eat(close)? {
                    Ok(xs)
                } else {
                    Err(self.err(&format!("expected `,` or `{}`", close as char)))
                };
            }
        }
    }

    /// After `{`: `key: value` pairs; a key is a string, a name or a number.
    fn map(&mut self) -> Result<Node, String> {
        let mut entries = Vec::new();
        loop {
            if self.eat(b'}')? {
                return Ok(Node::Map(entries));
            }
            let key = match self.value()? {
                Node::Str(s) | Node::Ident(s) => s,
                Node::Num(n) => n.to_string(),
                _ => return Err(self.err("a map key must be a string")),
            };
            if !self.eat(b':')? {
                return Err(self.err(&format!("expected `:` after the key {key:?}")));
            }
            entries.push((key, self.value()?));
            if !self.eat(b',')? {
                return if self.eat(b'}')? {
                    Ok(Node::Map(entries))
                } else {
                    Err(self.err("expected `,` or `}`"))
                };
            }
        }
    }

    fn number(&mut self) -> Result<Node, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-._".contains(&c))
        {
            let c = self.s[self.i];
            // A sign only at the start or after an exponent.
            if b"+-".contains(&c) && self.i > start && !matches!(self.s[self.i - 1], b'e' | b'E') {
                break;
            }
            self.i += 1;
        }
        let t: String = self.text[start..self.i]
            .chars()
            .filter(|&c| c != '_')
            .collect();
        let t = t.strip_prefix('+').unwrap_or(&t);
        let n = if let Ok(u) = t.parse::<u64>() {
            Some(Number::from(u))
        } else if let Ok(i) = t.parse::<i64>() {
            Some(Number::from(i))
        } else {
            t.parse::<f64>().ok().and_then(Number::from_f64)
        };
        n.map(Node::Num).ok_or_else(|| {
            self.i = start;
            self.err(&format!("{t:?} is not a number"))
        })
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.i..];
            let Some(c) = rest.chars().next() else {
                return Err(self.err("unclosed string"));
            };
            self.i += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape()?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or_else(|| self.err("unclosed string"))?;
        self.i += 1;
        Ok(match c {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'0' => '\0',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'"' | b'\\' | b'\'' | b'/' => c as char,
            b'u' => {
                let braced = self.peek() == Some(b'{');
                let start = self.i + usize::from(braced);
                let end = if braced {
                    self.text[start..].find('}').map(|e| start + e)
                } else {
                    Some((start + 4).min(self.text.len()))
                };
                let code = end
                    .and_then(|e| u32::from_str_radix(self.text.get(start..e)?, 16).ok())
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.err("bad \\u escape"))?;
                self.i = end.unwrap_or(start) + usize::from(braced);
                code
            }
            other => return Err(self.err(&format!("unknown escape \\{}", other as char))),
        })
    }

    /// `r"..."` or `r#"..."#` (any number of `#`).
    fn raw_string(&mut self) -> Result<String, String> {
        self.i += 1;
        let hashes = self.s[self.i..].iter().take_while(|&&c| c == b'#').count();
        self.i += hashes;
        if self.peek() != Some(b'"') {
            return Err(self.err("expected `\"` of a raw string"));
        }
        self.i += 1;
        let close = format!("\"{}", "#".repeat(hashes));
        let end = self.text[self.i..]
            .find(&close)
            .ok_or_else(|| self.err("unclosed raw string"))?;
        let s = self.text[self.i..self.i + end].to_string();
        self.i += end + close.len();
        Ok(s)
    }
}
