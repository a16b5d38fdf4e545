//! One syntax for values: `--set FIELD=VALUE` and grid axis values are read as RON, the syntax of
//! a spec file (`Sign`, `Pams(w_bits: 2, a_bits: 2)`, `Mismatch(lambda: 1e-5)`), and the
//! JSON-like tagged form older experiment files use (`"Sign"`, `{"Pams": {"w_bits": 2}}`) keeps
//! its meaning. A value is parsed into a [`Node`], which keeps enum names, and decoded by the
//! type it lands in (`de`), so `None` is an absent option in `grad_clip` and the unit variant in
//! `offsets`, and a bad value's error names the field and what it allows.

mod de;
mod parse;

pub use de::{decode, ValueError};
pub use parse::parse;
use serde_json::{Number, Value};

/// A parsed value, its enum names kept.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// JSON `null`, RON `()`.
    Null,
    Bool(bool),
    Num(Number),
    /// A string, or (tagged form) a unit variant's name.
    Str(String),
    /// A bare RON name: a unit variant, or `None`.
    Ident(String),
    /// `[..]` or a tuple `(a, b)`.
    List(Vec<Node>),
    /// `{..}` (a map, or the tagged form `{"Variant": content}`) or a struct `(a: 1)`, in order.
    Map(Vec<(String, Node)>),
    /// `Name(content)`: content is a map (named fields), a list (a tuple) or one value.
    Variant(String, Box<Node>),
}

impl Node {
    /// The node of a JSON value (a spec as `serde_json::to_value` writes it).
    pub fn from_json(v: &Value) -> Node {
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Num(n.clone()),
            Value::String(s) => Node::Str(s.clone()),
            Value::Array(xs) => Node::List(xs.iter().map(Node::from_json).collect()),
            Value::Object(m) => Node::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The JSON of a node in the tagged form (`Name(c)` as `{"Name": c}`, `Sign` as `"Sign"`),
    /// `None` as `null` and `Some(x)` as `x`, as RON's own value type gave it before.
    pub fn to_json(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Ident(s) if s == "None" => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Num(n) => Value::Number(n.clone()),
            Node::Str(s) | Node::Ident(s) => Value::String(s.clone()),
            Node::List(xs) => Value::Array(xs.iter().map(Node::to_json).collect()),
            Node::Map(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Node::Variant(n, c) if n == "Some" => c.to_json(),
            Node::Variant(n, c) => Value::Object([(n.clone(), c.to_json())].into_iter().collect()),
        }
    }

    /// RON text that [`parse`] reads back as this node.
    pub fn to_ron(&self) -> String {
        let join = |xs: &mut dyn Iterator<Item = String>| xs.collect::<Vec<_>>().join(", ");
        let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
        match self {
            Node::Null => "()".into(),
            Node::Bool(b) => b.to_string(),
            Node::Num(n) => n.to_string(),
            Node::Str(s) => quote(s),
            Node::Ident(s) => s.clone(),
            Node::List(xs) => format!("[{}]", join(&mut xs.iter().map(Node::to_ron))),
            Node::Map(m) => format!(
                "{{{}}}",
                join(
                    &mut m
                        .iter()
                        .map(|(k, v)| format!("{}: {}", quote(k), v.to_ron()))
                )
            ),
            Node::Variant(n, c) => match &**c {
                Node::Map(m) => format!(
                    "{n}({})",
                    join(&mut m.iter().map(|(k, v)| format!("{k}: {}", v.to_ron())))
                ),
                Node::List(xs) => format!("{n}({})", join(&mut xs.iter().map(Node::to_ron))),
                other => format!("{n}({})", other.to_ron()),
            },
        }
    }

    /// The name of a value in a grid point's run name: a string or unit variant as written, a
    /// number, `none` for an absent option, a variant's name, else a short hash of its JSON.
    pub fn label(&self) -> String {
        match self {
            Node::Ident(s) if s == "None" => "none".into(),
            Node::Variant(n, c) if n == "Some" => c.label(),
            Node::Str(s) | Node::Ident(s) | Node::Variant(s, _) => s.clone(),
            Node::Num(n) => n.to_string(),
            Node::Bool(b) => b.to_string(),
            Node::Map(m) if m.len() == 1 => m[0].0.clone(),
            Node::Null => "none".into(),
            other => crate::digest::short_hash(other.to_json().to_string().as_bytes()),
        }
    }
}

/// The slot a dotted path names, walking through structs and entering enum variants
/// transparently (`model.n_feats` reaches the fields of `Edsr(..)`); `None` when a field on the
/// path is missing or a value has no fields. With `add`, a missing last field is added (so a
/// field the serialized spec leaves out, such as an absent option, can be set; decoding then
/// names a misspelt one with the fields allowed).
pub fn slot<'a>(root: &'a mut Node, path: &str, add: bool) -> Option<&'a mut Node> {
    let segs: Vec<&str> = path.split('.').collect();
    let mut cur = root;
    for (i, seg) in segs.iter().enumerate() {
        cur = descend(cur, seg, add && i + 1 == segs.len())?;
    }
    Some(cur)
}

fn descend<'a>(v: &'a mut Node, seg: &str, add: bool) -> Option<&'a mut Node> {
    let m = match v {
        Node::Map(m) => m,
        Node::Variant(_, c) => return descend(c, seg, add),
        _ => return None,
    };
    if let Some(i) = m.iter().position(|(k, _)| k == seg) {
        return Some(&mut m[i].1);
    }
    let tagged = m.len() == 1
        && m[0].0.starts_with(|c: char| c.is_ascii_uppercase())
        && matches!(m[0].1, Node::Map(_) | Node::Variant(..));
    if tagged {
        return descend(&mut m[0].1, seg, add);
    }
    if !add || seg.is_empty() {
        return None;
    }
    m.push((seg.to_string(), Node::Null));
    m.last_mut().map(|e| &mut e.1)
}
