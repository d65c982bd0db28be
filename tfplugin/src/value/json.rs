//! cty's JSON encoding: how state files store values and how `UpgradeResourceState` receives
//! them. Unknown values have no JSON form. A value in a `dynamic` slot is
//! `{"value": …, "type": …}`. Numbers keep every digit (serde_json's `arbitrary_precision`).

use super::msgpack::{kind_name, with_step};
use super::{CodecError, Number, Type, Value};
use serde_json::Value as J;
use std::collections::BTreeMap;

pub(super) fn encode(value: &Value, ty: &Type, path: &mut Vec<String>) -> Result<J, CodecError> {
    if let Type::Dynamic = ty {
        return match value {
            Value::Null => Ok(J::Null),
            Value::Unknown => Err(CodecError::at(
                path,
                "unknown values cannot be written as JSON",
            )),
            Value::Dynamic(inner_ty, inner) => {
                let inner = encode(inner, inner_ty, path)?;
                Ok(serde_json::json!({ "value": inner, "type": inner_ty.to_json() }))
            }
            _ => Err(CodecError::at(
                path,
                "a value in a dynamic slot must carry its type (Value::Dynamic)",
            )),
        };
    }
    match (value, ty) {
        (Value::Null, _) => Ok(J::Null),
        (Value::Unknown, _) => Err(CodecError::at(
            path,
            "unknown values cannot be written as JSON",
        )),
        (Value::Bool(b), Type::Bool) => Ok(J::Bool(*b)),
        (Value::String(s), Type::String) => Ok(J::String(s.clone())),
        (Value::Number(n), Type::Number) => {
            let text = n.to_plain_string();
            serde_json::from_str(&text)
                .map_err(|e| CodecError::at(path, format!("number {text} has no JSON form: {e}")))
        }
        (Value::List(elems), Type::List(elem_ty)) | (Value::Set(elems), Type::Set(elem_ty)) => {
            elems
                .iter()
                .enumerate()
                .map(|(i, v)| with_step(path, format!("[{i}]"), |p| encode(v, elem_ty, p)))
                .collect::<Result<_, _>>()
                .map(J::Array)
        }
        (Value::Tuple(elems), Type::Tuple(elem_tys)) if elems.len() == elem_tys.len() => elems
            .iter()
            .zip(elem_tys)
            .enumerate()
            .map(|(i, (v, t))| with_step(path, format!("[{i}]"), |p| encode(v, t, p)))
            .collect::<Result<_, _>>()
            .map(J::Array),
        (Value::Map(entries), Type::Map(elem_ty)) => entries
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    with_step(path, format!("[{k:?}]"), |p| encode(v, elem_ty, p))?,
                ))
            })
            .collect::<Result<serde_json::Map<_, _>, _>>()
            .map(J::Object),
        (Value::Object(attrs), Type::Object(attr_tys)) => {
            if let Some(extra) = attrs.keys().find(|k| !attr_tys.contains_key(*k)) {
                return Err(CodecError::at(
                    path,
                    format!("unsupported attribute {extra:?}"),
                ));
            }
            attr_tys
                .iter()
                .map(|(k, t)| {
                    let v = attrs.get(k).unwrap_or(&Value::Null);
                    Ok((
                        k.clone(),
                        with_step(path, format!(".{k}"), |p| encode(v, t, p))?,
                    ))
                })
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(J::Object)
        }
        (v, t) => Err(CodecError::at(
            path,
            format!("{} is not a value of type {t}", kind_name(v)),
        )),
    }
}

pub(super) fn decode(json: &J, ty: &Type, path: &mut Vec<String>) -> Result<Value, CodecError> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    let mismatch =
        |path: &[String]| CodecError::at(path, format!("expected {ty}, found {}", json_kind(json)));
    match ty {
        Type::Dynamic => {
            let obj = json.as_object().ok_or_else(|| mismatch(path))?;
            let (Some(t), Some(v)) = (obj.get("type"), obj.get("value")) else {
                return Err(CodecError::at(
                    path,
                    "dynamic value must be {\"value\": …, \"type\": …}",
                ));
            };
            let inner_ty = Type::from_json(t).map_err(|e| CodecError::at(path, e))?;
            let inner = decode(v, &inner_ty, path)?;
            Ok(Value::Dynamic(inner_ty, Box::new(inner)))
        }
        Type::Bool => json
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| mismatch(path)),
        Type::String => json
            .as_str()
            .map(Value::string)
            .ok_or_else(|| mismatch(path)),
        Type::Number => match json {
            J::Number(n) => n
                .to_string()
                .parse::<Number>()
                .map(Value::Number)
                .map_err(|e| CodecError::at(path, e)),
            // cty accepts numbers written as strings in JSON.
            J::String(s) => s
                .parse::<Number>()
                .map(Value::Number)
                .map_err(|e| CodecError::at(path, e)),
            _ => Err(mismatch(path)),
        },
        Type::List(elem_ty) | Type::Set(elem_ty) => {
            let items = json.as_array().ok_or_else(|| mismatch(path))?;
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
        Type::Tuple(elem_tys) => {
            let items = json.as_array().ok_or_else(|| mismatch(path))?;
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
                .map(|(i, (item, t))| with_step(path, format!("[{i}]"), |p| decode(item, t, p)))
                .collect::<Result<_, _>>()
                .map(Value::Tuple)
        }
        Type::Map(elem_ty) => {
            let obj = json.as_object().ok_or_else(|| mismatch(path))?;
            obj.iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        with_step(path, format!("[{k:?}]"), |p| decode(v, elem_ty, p))?,
                    ))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Value::Map)
        }
        Type::Object(attr_tys) => {
            let obj = json.as_object().ok_or_else(|| mismatch(path))?;
            if let Some(extra) = obj.keys().find(|k| !attr_tys.contains_key(*k)) {
                return Err(CodecError::at(
                    path,
                    format!("unsupported attribute {extra:?}"),
                ));
            }
            attr_tys
                .iter()
                .map(|(k, t)| {
                    let v = match obj.get(k) {
                        Some(v) => with_step(path, format!(".{k}"), |p| decode(v, t, p))?,
                        None => Value::Null,
                    };
                    Ok((k.clone(), v))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Value::Object)
        }
    }
}

fn json_kind(json: &J) -> &'static str {
    match json {
        J::Null => "null",
        J::Bool(_) => "a bool",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    }
}
