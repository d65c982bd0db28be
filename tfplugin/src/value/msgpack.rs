//! cty's msgpack encoding, the main wire form of `DynamicValue`.
//!
//! `rmpv` does the msgpack itself (every int/uint/float width, ext types); this file maps
//! msgpack trees to cty values by type, following cty's rules:
//! - unknown is the extension `d4 00 00`; on input **any** extension is unknown (Terraform
//!   ≥ 1.6 sends refined unknowns as extension 12 with a payload);
//! - null is `nil`;
//! - numbers go out as int when exact, else float64 when exact, else decimal text;
//! - a value in a `dynamic` slot is `[json type as bytes, value]`.

use super::{CodecError, Number, Type, Value};
use rmpv::Value as Mp;
use std::collections::BTreeMap;

const UNKNOWN_EXT: i8 = 0;

pub(super) fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let tree = to_tree(value, ty, &mut Vec::new())?;
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &tree)
        .map_err(|e| CodecError::at(&[], format!("msgpack write failed: {e}")))?;
    Ok(out)
}

pub(super) fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut reader = bytes;
    let tree = rmpv::decode::read_value(&mut reader)
        .map_err(|e| CodecError::at(&[], format!("invalid msgpack: {e}")))?;
    if !reader.is_empty() {
        return Err(CodecError::at(
            &[],
            format!("{} bytes of trailing data after the value", reader.len()),
        ));
    }
    from_tree(&tree, ty, &mut Vec::new())
}

fn to_tree(value: &Value, ty: &Type, path: &mut Vec<String>) -> Result<Mp, CodecError> {
    if let Type::Dynamic = ty {
        return match value {
            Value::Null => Ok(Mp::Nil),
            Value::Unknown => Ok(Mp::Ext(UNKNOWN_EXT, vec![0])),
            Value::Dynamic(inner_ty, inner) => {
                let inner = to_tree(inner, inner_ty, path)?;
                Ok(Mp::Array(vec![Mp::Binary(inner_ty.to_json_bytes()), inner]))
            }
            _ => Err(CodecError::at(
                path,
                "a value in a dynamic slot must carry its type (Value::Dynamic)",
            )),
        };
    }
    match (value, ty) {
        (Value::Null, _) => Ok(Mp::Nil),
        (Value::Unknown, _) => Ok(Mp::Ext(UNKNOWN_EXT, vec![0])),
        (Value::Bool(b), Type::Bool) => Ok(Mp::Boolean(*b)),
        (Value::String(s), Type::String) => Ok(Mp::String(s.clone().into())),
        (Value::Number(n), Type::Number) => Ok(number_tree(n)),
        (Value::List(elems), Type::List(elem_ty)) | (Value::Set(elems), Type::Set(elem_ty)) => {
            elems
                .iter()
                .enumerate()
                .map(|(i, v)| with_step(path, format!("[{i}]"), |p| to_tree(v, elem_ty, p)))
                .collect::<Result<_, _>>()
                .map(Mp::Array)
        }
        (Value::Tuple(elems), Type::Tuple(elem_tys)) => {
            if elems.len() != elem_tys.len() {
                return Err(CodecError::at(
                    path,
                    format!(
                        "tuple needs {} elements, has {}",
                        elem_tys.len(),
                        elems.len()
                    ),
                ));
            }
            elems
                .iter()
                .zip(elem_tys)
                .enumerate()
                .map(|(i, (v, t))| with_step(path, format!("[{i}]"), |p| to_tree(v, t, p)))
                .collect::<Result<_, _>>()
                .map(Mp::Array)
        }
        (Value::Map(entries), Type::Map(elem_ty)) => entries
            .iter()
            .map(|(k, v)| {
                Ok((
                    Mp::String(k.clone().into()),
                    with_step(path, format!("[{k:?}]"), |p| to_tree(v, elem_ty, p))?,
                ))
            })
            .collect::<Result<_, _>>()
            .map(Mp::Map),
        (Value::Object(attrs), Type::Object(attr_tys)) => {
            if let Some(extra) = attrs.keys().find(|k| !attr_tys.contains_key(*k)) {
                return Err(CodecError::at(
                    path,
                    format!("unsupported attribute {extra:?}"),
                ));
            }
            // Every attribute is present on the wire, nulls included.
            attr_tys
                .iter()
                .map(|(k, t)| {
                    let v = attrs.get(k).unwrap_or(&Value::Null);
                    Ok((
                        Mp::String(k.clone().into()),
                        with_step(path, format!(".{k}"), |p| to_tree(v, t, p))?,
                    ))
                })
                .collect::<Result<_, _>>()
                .map(Mp::Map)
        }
        (v, t) => Err(CodecError::at(
            path,
            format!("{} is not a value of type {t}", kind_name(v)),
        )),
    }
}

fn number_tree(n: &Number) -> Mp {
    if let Some(i) = n.to_i64() {
        Mp::from(i)
    } else if let Some(u) = n.to_u64() {
        Mp::from(u)
    } else if let Some(f) = n.to_f64_exact() {
        Mp::F64(f)
    } else {
        Mp::String(n.to_plain_string().into())
    }
}

fn from_tree(tree: &Mp, ty: &Type, path: &mut Vec<String>) -> Result<Value, CodecError> {
    if let Mp::Ext(..) = tree {
        return Ok(Value::Unknown);
    }
    if let Type::Dynamic = ty {
        return match tree {
            Mp::Nil => Ok(Value::Null),
            Mp::Array(parts) if parts.len() == 2 => {
                let type_bytes = match &parts[0] {
                    Mp::Binary(b) => b.as_slice(),
                    Mp::String(s) => s.as_bytes(),
                    _ => return Err(CodecError::at(path, "dynamic value's type must be bytes")),
                };
                let inner_ty =
                    Type::from_json_bytes(type_bytes).map_err(|e| CodecError::at(path, e))?;
                let inner = from_tree(&parts[1], &inner_ty, path)?;
                Ok(Value::Dynamic(inner_ty, Box::new(inner)))
            }
            _ => Err(CodecError::at(
                path,
                "dynamic value must be a [type, value] pair",
            )),
        };
    }
    if let Mp::Nil = tree {
        return Ok(Value::Null);
    }
    match ty {
        Type::Bool => match tree {
            Mp::Boolean(b) => Ok(Value::Bool(*b)),
            _ => Err(mismatch(path, tree, ty)),
        },
        Type::String => match tree {
            Mp::String(s) => s
                .as_str()
                .map(|s| Value::String(s.to_string()))
                .ok_or_else(|| CodecError::at(path, "string is not valid UTF-8")),
            _ => Err(mismatch(path, tree, ty)),
        },
        Type::Number => number_from_tree(tree, path).map(Value::Number),
        Type::List(elem_ty) | Type::Set(elem_ty) => {
            let items = array(tree, ty, path)?;
            let elems = items
                .iter()
                .enumerate()
                .map(|(i, item)| with_step(path, format!("[{i}]"), |p| from_tree(item, elem_ty, p)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(elems)
            } else {
                Value::Set(elems)
            })
        }
        Type::Tuple(elem_tys) => {
            let items = array(tree, ty, path)?;
            if items.len() != elem_tys.len() {
                return Err(CodecError::at(
                    path,
                    format!(
                        "tuple needs {} elements, has {}",
                        elem_tys.len(),
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .zip(elem_tys)
                .enumerate()
                .map(|(i, (item, t))| with_step(path, format!("[{i}]"), |p| from_tree(item, t, p)))
                .collect::<Result<_, _>>()
                .map(Value::Tuple)
        }
        Type::Map(elem_ty) => {
            let mut entries = BTreeMap::new();
            for (k, v) in map(tree, ty, path)? {
                let key = key_str(k, path)?;
                let value = with_step(path, format!("[{key:?}]"), |p| from_tree(v, elem_ty, p))?;
                entries.insert(key, value);
            }
            Ok(Value::Map(entries))
        }
        Type::Object(attr_tys) => {
            let mut attrs = BTreeMap::new();
            for (k, v) in map(tree, ty, path)? {
                let key = key_str(k, path)?;
                let attr_ty = attr_tys.get(&key).ok_or_else(|| {
                    CodecError::at(path, format!("unsupported attribute {key:?}"))
                })?;
                let value = with_step(path, format!(".{key}"), |p| from_tree(v, attr_ty, p))?;
                attrs.insert(key, value);
            }
            for name in attr_tys.keys() {
                attrs.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(attrs))
        }
        Type::Dynamic => unreachable!("handled above"),
    }
}

fn number_from_tree(tree: &Mp, path: &[String]) -> Result<Number, CodecError> {
    match tree {
        Mp::Integer(i) => {
            if let Some(v) = i.as_i64() {
                Ok(v.into())
            } else if let Some(v) = i.as_u64() {
                Ok(v.into())
            } else {
                Err(CodecError::at(path, "integer out of range"))
            }
        }
        Mp::F32(f) => Number::from_f64(f64::from(*f))
            .ok_or_else(|| CodecError::at(path, "number is not finite")),
        Mp::F64(f) => {
            Number::from_f64(*f).ok_or_else(|| CodecError::at(path, "number is not finite"))
        }
        Mp::String(s) => {
            let text = s
                .as_str()
                .ok_or_else(|| CodecError::at(path, "number text is not UTF-8"))?;
            text.parse().map_err(|e: String| CodecError::at(path, e))
        }
        other => Err(mismatch(path, other, &Type::Number)),
    }
}

fn array<'a>(tree: &'a Mp, ty: &Type, path: &[String]) -> Result<&'a [Mp], CodecError> {
    match tree {
        Mp::Array(items) => Ok(items),
        _ => Err(mismatch(path, tree, ty)),
    }
}

fn map<'a>(tree: &'a Mp, ty: &Type, path: &[String]) -> Result<&'a [(Mp, Mp)], CodecError> {
    match tree {
        Mp::Map(entries) => Ok(entries),
        _ => Err(mismatch(path, tree, ty)),
    }
}

fn key_str(key: &Mp, path: &[String]) -> Result<String, CodecError> {
    match key {
        Mp::String(s) => s
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CodecError::at(path, "map key is not UTF-8")),
        _ => Err(CodecError::at(path, "map key must be a string")),
    }
}

fn mismatch(path: &[String], tree: &Mp, ty: &Type) -> CodecError {
    let found = match tree {
        Mp::Nil => "nil",
        Mp::Boolean(_) => "a bool",
        Mp::Integer(_) | Mp::F32(_) | Mp::F64(_) => "a number",
        Mp::String(_) => "a string",
        Mp::Binary(_) => "bytes",
        Mp::Array(_) => "an array",
        Mp::Map(_) => "a map",
        Mp::Ext(..) => "an extension",
    };
    CodecError::at(path, format!("expected {ty}, found {found}"))
}

pub(super) fn kind_name(v: &Value) -> &'static str {
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

pub(super) fn with_step<T>(
    path: &mut Vec<String>,
    step: String,
    f: impl FnOnce(&mut Vec<String>) -> T,
) -> T {
    path.push(step);
    let out = f(path);
    path.pop();
    out
}
