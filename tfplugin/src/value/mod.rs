//! cty types and values, the data model of Terraform's wire protocol.
//!
//! A [`Value`] is untyped on its own: the [`Type`] it is read or written with decides how it
//! travels. The one exception is a value in a `dynamic` slot, which has to carry its concrete
//! type with it ([`Value::Dynamic`]), exactly as cty sends it.

mod json;
mod msgpack;
mod number;
mod types;
mod walk;

pub use number::Number;
pub use types::Type;

use std::collections::BTreeMap;

/// A cty value. `Null` and `Unknown` can stand anywhere, at any depth.
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// A null of whatever type the slot has.
    #[default]
    Null,
    /// A value not known until apply (`(known after apply)` in a plan).
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    /// Elements in no particular order; equality ignores order.
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A value of concrete type `ty` stored in a slot of type `dynamic`.
    Dynamic(Type, Box<Value>),
}

/// Why a value could not be encoded or decoded; carries the attribute path where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CodecError {
    /// Dotted path to the offending value, `(root)` for the top.
    pub path: String,
    pub message: String,
}

impl CodecError {
    pub(crate) fn at(path: &[String], message: impl Into<String>) -> Self {
        let joined = path.join("");
        let path = match joined.strip_prefix('.') {
            _ if joined.is_empty() => "(root)".to_string(),
            Some(rest) => rest.to_string(),
            None => joined,
        };
        CodecError {
            path,
            message: message.into(),
        }
    }
}

impl Value {
    /// Builds an object from `(name, value)` pairs.
    pub fn object<K: Into<String>>(attrs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn number(n: impl Into<Number>) -> Value {
        Value::Number(n.into())
    }

    /// Null, including a typed null in a `dynamic` slot (`[type, nil]` on the wire).
    pub fn is_null(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Dynamic(_, v) => v.is_null(),
            _ => false,
        }
    }

    /// Unknown, including a typed unknown in a `dynamic` slot.
    pub fn is_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::Dynamic(_, v) => v.is_unknown(),
            _ => false,
        }
    }

    /// True when neither this value nor anything inside it is unknown.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, v) => v.is_wholly_known(),
            _ => true,
        }
    }

    /// The attribute `name` of an object; `Null` for a null/unknown object or a missing name.
    pub fn attr(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Value::Object(m) => m.get(name).unwrap_or(&NULL),
            Value::Dynamic(_, v) => v.attr(name),
            _ => &NULL,
        }
    }

    /// Mutable access to an object's attribute; `None` when this is not an object.
    pub fn attr_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Object(m) => m.get_mut(name),
            _ => None,
        }
    }

    /// Sets an object attribute; does nothing on a non-object.
    pub fn set_attr(&mut self, name: &str, value: Value) {
        if let Value::Object(m) = self {
            m.insert(name.to_string(), value);
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// Elements of a list, set or tuple; empty for anything else (null included).
    pub fn elements(&self) -> &[Value] {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => v,
            _ => &[],
        }
    }

    /// Applies `f` to each element of a list, set or map (keeping the collection), or to the
    /// value itself otherwise: the shape of every nesting mode of a nested block.
    pub fn map_elements(&self, f: impl Fn(&Value) -> Value) -> Value {
        match self {
            Value::List(e) => Value::List(e.iter().map(&f).collect()),
            Value::Set(e) => Value::Set(e.iter().map(&f).collect()),
            Value::Map(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), f(v))).collect()),
            other => f(other),
        }
    }

    /// Entries of a map or object; `None` for anything else.
    pub fn entries(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Encodes as cty msgpack, the form `DynamicValue.msgpack` carries.
    ///
    /// # Errors
    /// When the value does not conform to `ty`.
    pub fn to_msgpack(&self, ty: &Type) -> Result<Vec<u8>, CodecError> {
        msgpack::encode(self, ty)
    }

    /// Decodes cty msgpack read with type `ty`.
    ///
    /// # Errors
    /// Malformed msgpack, or data that does not conform to `ty`.
    pub fn from_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
        msgpack::decode(bytes, ty)
    }

    /// Encodes as cty JSON. Unknown values have no JSON form.
    ///
    /// # Errors
    /// When the value holds unknowns or does not conform to `ty`.
    pub fn to_json(&self, ty: &Type) -> Result<serde_json::Value, CodecError> {
        json::encode(self, ty)
    }

    /// Decodes cty JSON (as found in state files and `RawState.json`).
    ///
    /// # Errors
    /// When the JSON does not conform to `ty`.
    pub fn from_json(json: &serde_json::Value, ty: &Type) -> Result<Value, CodecError> {
        json::decode(json, ty)
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) | (Unknown, Unknown) => true,
            (Bool(a), Bool(b)) => a == b,
            (Number(a), Number(b)) => a == b,
            (String(a), String(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => a == b,
            (Set(a), Set(b)) => set_eq(a, b),
            (Map(a), Map(b)) | (Object(a), Object(b)) => a == b,
            (Dynamic(ta, a), Dynamic(tb, b)) => ta == tb && a == b,
            _ => false,
        }
    }
}

/// Order-insensitive multiset equality; sets are small in provider schemas, so the
/// quadratic walk is cheaper than hashing values that have no total order.
fn set_eq(a: &[Value], b: &[Value]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let found = b.iter().enumerate().find(|(i, y)| !used[*i] && *y == x);
        match found {
            Some((i, _)) => {
                used[i] = true;
                true
            }
            None => false,
        }
    })
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n.into())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n.into())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests;
