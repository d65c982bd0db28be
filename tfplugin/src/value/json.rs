//! cty's JSON encoding: how state files store values and how `UpgradeResourceState` receives
//! them. Unknown values have no JSON form. A value in a `dynamic` slot is
//! `{"value": …, "type": …}`. Numbers keep every digit (serde_json's `arbitrary_precision`).
//! The walk by type is [`super::walk`]'s; this file is JSON's share of it.

use super::walk::{self, Shape, Tree};
use super::{CodecError, Number, Type, Value};
use serde_json::Value as J;

pub(super) fn encode(value: &Value, ty: &Type) -> Result<J, CodecError> {
    walk::encode(value, ty, &mut Vec::new())
}

pub(super) fn decode(json: &J, ty: &Type) -> Result<Value, CodecError> {
    walk::decode(json, ty, &mut Vec::new())
}

impl Tree for J {
    fn null() -> Self {
        J::Null
    }

    fn unknown(path: &[String]) -> Result<Self, CodecError> {
        Err(CodecError::at(
            path,
            "unknown values cannot be written as JSON",
        ))
    }

    fn bool(b: bool) -> Self {
        J::Bool(b)
    }

    fn string(s: &str) -> Self {
        J::String(s.to_string())
    }

    fn number(n: &Number, path: &[String]) -> Result<Self, CodecError> {
        let text = n.to_plain_string();
        serde_json::from_str(&text)
            .map_err(|e| CodecError::at(path, format!("number {text} has no JSON form: {e}")))
    }

    fn array(items: Vec<Self>) -> Self {
        J::Array(items)
    }

    fn map(entries: Vec<(String, Self)>) -> Self {
        J::Object(entries.into_iter().collect())
    }

    fn dynamic(ty: &Type, inner: Self) -> Self {
        serde_json::json!({ "value": inner, "type": ty.to_json() })
    }

    fn shape(&self, _path: &[String]) -> Result<Shape<'_, Self>, CodecError> {
        Ok(match self {
            J::Null => Shape::Null,
            J::Bool(b) => Shape::Bool(*b),
            J::Number(_) => Shape::Number,
            J::String(s) => Shape::String(s),
            J::Array(items) => Shape::Array(items),
            J::Object(obj) => Shape::Map(obj.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        })
    }

    fn to_number(&self, path: &[String]) -> Result<Number, CodecError> {
        let text = match self {
            J::Number(n) => n.to_string(),
            // cty accepts numbers written as strings in JSON.
            J::String(s) => s.clone(),
            other => {
                return Err(CodecError::at(
                    path,
                    format!("expected number, found {}", other.kind()),
                ))
            }
        };
        text.parse::<Number>().map_err(|e| CodecError::at(path, e))
    }

    fn split_dynamic(&self, path: &[String]) -> Result<(Type, &Self), CodecError> {
        let (Some(t), Some(v)) = (self.get("type"), self.get("value")) else {
            return Err(CodecError::at(
                path,
                "dynamic value must be {\"value\": …, \"type\": …}",
            ));
        };
        let ty = Type::from_json(t).map_err(|e| CodecError::at(path, e))?;
        Ok((ty, v))
    }

    fn kind(&self) -> &'static str {
        match self {
            J::Null => "null",
            J::Bool(_) => "a bool",
            J::Number(_) => "a number",
            J::String(_) => "a string",
            J::Array(_) => "an array",
            J::Object(_) => "an object",
        }
    }
}
