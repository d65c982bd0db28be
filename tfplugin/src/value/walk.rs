//! The one type-driven walk both wire codecs share. cty encodes a value by its type, not by
//! what the value holds: the walk matches value and type at every depth, keeps the path for
//! errors, and leaves each format ([`super::json`], [`super::msgpack`]) only how a shape is
//! written and read in its own tree.

use super::{CodecError, Number, Type, Value};
use std::collections::BTreeMap;

/// A format's document tree (`serde_json::Value`, `rmpv::Value`).
pub(super) trait Tree: Sized {
    fn null() -> Self;
    /// An unknown value; an error where the format has none (JSON).
    fn unknown(path: &[String]) -> Result<Self, CodecError>;
    fn bool(b: bool) -> Self;
    fn string(s: &str) -> Self;
    fn number(n: &Number, path: &[String]) -> Result<Self, CodecError>;
    /// Lists, sets and tuples.
    fn array(items: Vec<Self>) -> Self;
    /// Maps and objects, keys in order.
    fn map(entries: Vec<(String, Self)>) -> Self;
    /// A value in a `dynamic` slot, with its concrete type.
    fn dynamic(ty: &Type, inner: Self) -> Self;

    /// What this node is.
    fn shape(&self, path: &[String]) -> Result<Shape<'_, Self>, CodecError>;
    /// A number node (or number text, which cty accepts) as a number.
    fn to_number(&self, path: &[String]) -> Result<Number, CodecError>;
    /// A `dynamic` slot's concrete type and value.
    fn split_dynamic(&self, path: &[String]) -> Result<(Type, &Self), CodecError>;
    /// "a bool", "an array", … for errors.
    fn kind(&self) -> &'static str;
}

/// One node of a tree, as the walk sees it.
pub(super) enum Shape<'a, T> {
    Null,
    Unknown,
    Bool(bool),
    Number,
    String(&'a str),
    Array(&'a [T]),
    Map(Vec<(&'a str, &'a T)>),
    Other,
}

pub(super) fn encode<T: Tree>(
    value: &Value,
    ty: &Type,
    path: &mut Vec<String>,
) -> Result<T, CodecError> {
    if let Type::Dynamic = ty {
        return match value {
            Value::Null => Ok(T::null()),
            Value::Unknown => T::unknown(path),
            Value::Dynamic(inner_ty, inner) => {
                let inner = encode(inner, inner_ty, path)?;
                Ok(T::dynamic(inner_ty, inner))
            }
            _ => Err(CodecError::at(
                path,
                "a value in a dynamic slot must carry its type (Value::Dynamic)",
            )),
        };
    }
    match (value, ty) {
        (Value::Null, _) => Ok(T::null()),
        (Value::Unknown, _) => T::unknown(path),
        (Value::Bool(b), Type::Bool) => Ok(T::bool(*b)),
        (Value::String(s), Type::String) => Ok(T::string(s)),
        (Value::Number(n), Type::Number) => T::number(n, path),
        (Value::List(elems), Type::List(elem_ty)) | (Value::Set(elems), Type::Set(elem_ty)) => {
            elems
                .iter()
                .enumerate()
                .map(|(i, v)| with_step(path, format!("[{i}]"), |p| encode(v, elem_ty, p)))
                .collect::<Result<_, _>>()
                .map(T::array)
        }
        (Value::Tuple(elems), Type::Tuple(elem_tys)) => {
            check_tuple_len(elem_tys.len(), elems.len(), path)?;
            elems
                .iter()
                .zip(elem_tys)
                .enumerate()
                .map(|(i, (v, t))| with_step(path, format!("[{i}]"), |p| encode(v, t, p)))
                .collect::<Result<_, _>>()
                .map(T::array)
        }
        (Value::Map(entries), Type::Map(elem_ty)) => entries
            .iter()
            .map(|(k, v)| {
                let tree = with_step(path, format!("[{k:?}]"), |p| encode(v, elem_ty, p))?;
                Ok((k.clone(), tree))
            })
            .collect::<Result<_, _>>()
            .map(T::map),
        (Value::Object(attrs), Type::Object(attr_tys)) => {
            if let Some(extra) = attrs.keys().find(|k| !attr_tys.contains_key(*k)) {
                return Err(unsupported_attribute(extra, path));
            }
            // Every attribute is written, nulls included.
            attr_tys
                .iter()
                .map(|(k, t)| {
                    let v = attrs.get(k).unwrap_or(&Value::Null);
                    let tree = with_step(path, format!(".{k}"), |p| encode(v, t, p))?;
                    Ok((k.clone(), tree))
                })
                .collect::<Result<_, _>>()
                .map(T::map)
        }
        (v, t) => Err(CodecError::at(
            path,
            format!("{} is not a value of type {t}", kind_name(v)),
        )),
    }
}

pub(super) fn decode<T: Tree>(
    tree: &T,
    ty: &Type,
    path: &mut Vec<String>,
) -> Result<Value, CodecError> {
    let shape = tree.shape(path)?;
    match (shape, ty) {
        (Shape::Unknown, _) => Ok(Value::Unknown),
        (Shape::Null, _) => Ok(Value::Null),
        (_, Type::Dynamic) => {
            let (inner_ty, inner) = tree.split_dynamic(path)?;
            let inner = decode(inner, &inner_ty, path)?;
            Ok(Value::Dynamic(inner_ty, Box::new(inner)))
        }
        (Shape::Bool(b), Type::Bool) => Ok(Value::Bool(b)),
        (Shape::String(s), Type::String) => Ok(Value::string(s)),
        (Shape::Number | Shape::String(_), Type::Number) => tree.to_number(path).map(Value::Number),
        (Shape::Array(items), Type::List(elem_ty) | Type::Set(elem_ty)) => {
            let elems = items
                .iter()
                .enumerate()
                .map(|(i, item)| with_step(path, format!("[{i}]"), |p| decode(item, elem_ty, p)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(elems)
            } else {
                Value::Set(elems)
            })
        }
        (Shape::Array(items), Type::Tuple(elem_tys)) => {
            check_tuple_len(elem_tys.len(), items.len(), path)?;
            items
                .iter()
                .zip(elem_tys)
                .enumerate()
                .map(|(i, (item, t))| with_step(path, format!("[{i}]"), |p| decode(item, t, p)))
                .collect::<Result<_, _>>()
                .map(Value::Tuple)
        }
        (Shape::Map(entries), Type::Map(elem_ty)) => entries
            .into_iter()
            .map(|(k, v)| {
                let value = with_step(path, format!("[{k:?}]"), |p| decode(v, elem_ty, p))?;
                Ok((k.to_string(), value))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Value::Map),
        (Shape::Map(entries), Type::Object(attr_tys)) => {
            let mut attrs = BTreeMap::new();
            for (k, v) in entries {
                let attr_ty = attr_tys
                    .get(k)
                    .ok_or_else(|| unsupported_attribute(k, path))?;
                let value = with_step(path, format!(".{k}"), |p| decode(v, attr_ty, p))?;
                attrs.insert(k.to_string(), value);
            }
            // An attribute left out is null.
            for name in attr_tys.keys() {
                attrs.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(attrs))
        }
        (_, ty) => Err(CodecError::at(
            path,
            format!("expected {ty}, found {}", tree.kind()),
        )),
    }
}

fn check_tuple_len(wanted: usize, found: usize, path: &[String]) -> Result<(), CodecError> {
    if wanted == found {
        return Ok(());
    }
    Err(CodecError::at(
        path,
        format!("tuple needs {wanted} elements, has {found}"),
    ))
}

fn unsupported_attribute(name: &str, path: &[String]) -> CodecError {
    CodecError::at(path, format!("unsupported attribute {name:?}"))
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Set(_) => "a set",
        Value::Map(_) => "a map",
        Value::Object(_) => "an object",
        Value::Tuple(_) => "a tuple",
        Value::Dynamic(..) => "a dynamic value",
    }
}

fn with_step<T>(path: &mut Vec<String>, step: String, f: impl FnOnce(&mut Vec<String>) -> T) -> T {
    path.push(step);
    let out = f(path);
    path.pop();
    out
}
