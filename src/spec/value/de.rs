//! Decoding a [`Node`] into a spec type, led by the type (serde's data model): a value written in
//! RON or in the tagged JSON-like form decodes to the same spec, as `serde_json` decoded the
//! tagged form before. Errors carry the dotted path of the field they arose in.

use super::Node;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::fmt;

/// A decoding error: the dotted field path (empty at the top) and the message.
#[derive(Debug)]
pub struct ValueError {
    path: Vec<String>,
    pub msg: String,
    /// A variant written with the wrong shape (fields on a unit variant, none where it needs
    /// some): clearer than what RON's own parser says of it ("Expected comma").
    pub variant_shape: bool,
}

impl ValueError {
    /// The dotted path of the field the error arose in (`gating.rule`, `crops[1].x`).
    pub fn field(&self) -> String {
        let mut out = String::new();
        for p in &self.path {
            if !out.is_empty() && !p.starts_with('[') {
                out.push('.');
            }
            out.push_str(p);
        }
        out
    }

    fn within(mut self, seg: String) -> Self {
        self.path.insert(0, seg);
        self
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field() {
            p if p.is_empty() => f.write_str(&self.msg),
            p => write!(f, "field `{p}`: {}", self.msg),
        }
    }
}

impl std::error::Error for ValueError {}

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError {
            path: Vec::new(),
            msg: msg.to_string(),
            variant_shape: false,
        }
    }
}

/// Decode `node` as a `T`.
pub fn decode<T: de::DeserializeOwned>(node: &Node) -> Result<T, ValueError> {
    T::deserialize(De(node))
}

/// `a`, `b` and `c` as "`a`, `b`, `c`".
fn listed(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fail<T>(msg: String) -> Result<T, ValueError> {
    Err(de::Error::custom(msg))
}

/// A variant of the wrong shape ([`ValueError::variant_shape`]).
fn shape<T>(msg: String) -> Result<T, ValueError> {
    Err(ValueError {
        variant_shape: true,
        ..de::Error::custom(msg)
    })
}

/// A short description of a value for errors.
fn what(n: &Node) -> String {
    let t = n.to_ron();
    if t.chars().count() > 60 {
        format!("{}…", t.chars().take(60).collect::<String>())
    } else {
        t
    }
}

struct De<'a>(&'a Node);

/// ron's token for its raw values (grid axis values keep their text, `spec::grid`).
const RAW_VALUE: &str = "$ron::private::RawValue";

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Node::Null => v.visit_unit(),
            Node::Bool(b) => v.visit_bool(*b),
            Node::Num(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => v.visit_u64(u),
                (_, Some(i), _) => v.visit_i64(i),
                (_, _, f) => v.visit_f64(f.unwrap_or(f64::NAN)),
            },
            Node::Str(s) | Node::Ident(s) => v.visit_str(s),
            Node::List(xs) => v.visit_seq(Seq { xs, i: 0 }),
            Node::Map(m) => v.visit_map(Map { m, i: 0 }),
            Node::Variant(n, c) => {
                let one = [(n.clone(), (**c).clone())];
                v.visit_map(Map { m: &one, i: 0 })
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Node::Null => v.visit_none(),
            Node::Ident(s) if s == "None" => v.visit_none(),
            Node::Variant(n, c) if n == "Some" => v.visit_some(De(c)),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Node::Ident(s) => fail(format!("expected a string; quote it: \"{s}\"")),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ValueError> {
        self.deserialize_str(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            // A raw value read from a whole file: its text again.
            n if name == RAW_VALUE && !matches!(n, Node::Str(_)) => v.visit_str(&n.to_ron()),
            _ => v.visit_newtype_struct(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Node::Map(m) => v.visit_map(Map { m, i: 0 }),
            // `()`: a struct with every field at its default.
            Node::Null => v.visit_map(Map { m: &[], i: 0 }),
            other => fail(format!(
                "{} is not a struct; write ({})",
                what(other),
                fields
                    .iter()
                    .map(|f| format!("{f}: …"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ValueError> {
        let (tag, content) = match self.0 {
            Node::Str(s) | Node::Ident(s) => (s.as_str(), None),
            Node::Variant(n, c) => (n.as_str(), Some(&**c)),
            Node::Map(m) if m.len() == 1 => (m[0].0.as_str(), Some(&m[0].1)),
            other => {
                return fail(format!(
                    "{} is not one of the variants {}",
                    what(other),
                    listed(variants)
                ))
            }
        };
        v.visit_enum(Enum { tag, content })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Seq<'a> {
    xs: &'a [Node],
    i: usize,
}

impl<'de> de::SeqAccess<'de> for Seq<'_> {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        let Some(x) = self.xs.get(self.i) else {
            return Ok(None);
        };
        self.i += 1;
        seed.deserialize(De(x))
            .map(Some)
            .map_err(|e| e.within(format!("[{}]", self.i - 1)))
    }
}

struct Map<'a> {
    m: &'a [(String, Node)],
    i: usize,
}

impl<'de> de::MapAccess<'de> for Map<'_> {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        let Some((k, _)) = self.m.get(self.i) else {
            return Ok(None);
        };
        seed.deserialize(k.as_str().into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let (k, v) = &self.m[self.i];
        self.i += 1;
        seed.deserialize(De(v)).map_err(|e| e.within(k.clone()))
    }
}

struct Enum<'a> {
    tag: &'a str,
    content: Option<&'a Node>,
}

impl<'de, 'a> de::EnumAccess<'de> for Enum<'a> {
    type Error = ValueError;
    type Variant = Enum<'a>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self), ValueError> {
        let tag: de::value::StrDeserializer<ValueError> = self.tag.into_deserializer();
        Ok((seed.deserialize(tag)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum<'_> {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.content {
            None | Some(Node::Null) => Ok(()),
            Some(_) => shape(format!(
                "`{t}` takes no fields; write just `{t}`",
                t = self.tag
            )),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.content {
            Some(c) => seed.deserialize(De(c)),
            None => shape(format!("`{t}` needs a value: `{t}(…)`", t = self.tag)),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, ValueError> {
        match self.content {
            Some(Node::List(xs)) => v.visit_seq(Seq { xs, i: 0 }),
            _ => shape(format!("`{t}` takes a tuple: `{t}(a, b, …)`", t = self.tag)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ValueError> {
        match self.content {
            Some(Node::Map(m)) => v.visit_map(Map { m, i: 0 }),
            _ => shape(format!(
                "`{t}` needs its fields: `{t}({})`",
                fields
                    .iter()
                    .map(|f| format!("{f}: …"))
                    .collect::<Vec<_>>()
                    .join(", "),
                t = self.tag
            )),
        }
    }
}
