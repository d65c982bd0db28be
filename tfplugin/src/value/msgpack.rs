//! cty's msgpack encoding, the main wire form of `DynamicValue`.
//!
//! `rmpv` does the msgpack itself (every int/uint/float width, ext types); this file maps
//! msgpack trees to cty values by type, following cty's rules:
//! - unknown is the extension `d4 00 00`; on input **any** extension is unknown (Terraform
//!   ≥ 1.6 sends refined unknowns as extension 12 with a payload);
//! - null is `nil`;
//! - numbers go out as int when exact, else float64 when exact, else decimal text;
//! - a value in a `dynamic` slot is `[json type as bytes, value]`.
//!
//! The walk by type is [`super::walk`]'s; this file is msgpack's share of it.

use super::walk::{self, Shape, Tree};
use super::{CodecError, Number, Type, Value};
use rmpv::Value as Mp;

const UNKNOWN_EXT: i8 = 0;

pub(super) fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let tree: Mp = walk::encode(value, ty, &mut Vec::new())?;
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
    walk::decode(&tree, ty, &mut Vec::new())
}

impl Tree for Mp {
    fn null() -> Self {
        Mp::Nil
    }

    fn unknown(_path: &[String]) -> Result<Self, CodecError> {
        Ok(Mp::Ext(UNKNOWN_EXT, vec![0]))
    }

    fn bool(b: bool) -> Self {
        Mp::Boolean(b)
    }

    fn string(s: &str) -> Self {
        Mp::String(s.into())
    }

    /// An int when exact, else a float64 when exact, else decimal text.
    fn number(n: &Number, _path: &[String]) -> Result<Self, CodecError> {
        Ok(if let Some(i) = n.to_i64() {
            Mp::from(i)
        } else if let Some(u) = n.to_u64() {
            Mp::from(u)
        } else if let Some(f) = n.to_f64_exact() {
            Mp::F64(f)
        } else {
            Mp::String(n.to_plain_string().into())
        })
    }

    fn array(items: Vec<Self>) -> Self {
        Mp::Array(items)
    }

    fn map(entries: Vec<(String, Self)>) -> Self {
        Mp::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Mp::String(k.into()), v))
                .collect(),
        )
    }

    fn dynamic(ty: &Type, inner: Self) -> Self {
        Mp::Array(vec![Mp::Binary(ty.to_json_bytes()), inner])
    }

    fn shape(&self, path: &[String]) -> Result<Shape<'_, Self>, CodecError> {
        Ok(match self {
            // Any extension: Terraform ≥ 1.6 refines unknowns as extension 12 with a payload.
            Mp::Ext(..) => Shape::Unknown,
            Mp::Nil => Shape::Null,
            Mp::Boolean(b) => Shape::Bool(*b),
            Mp::Integer(_) | Mp::F32(_) | Mp::F64(_) => Shape::Number,
            Mp::String(s) => Shape::String(
                s.as_str()
                    .ok_or_else(|| CodecError::at(path, "string is not valid UTF-8"))?,
            ),
            Mp::Array(items) => Shape::Array(items),
            Mp::Map(entries) => Shape::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((key_str(k, path)?, v)))
                    .collect::<Result<_, CodecError>>()?,
            ),
            Mp::Binary(_) => Shape::Other,
        })
    }

    fn to_number(&self, path: &[String]) -> Result<Number, CodecError> {
        match self {
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
            other => Err(CodecError::at(
                path,
                format!("expected number, found {}", other.kind()),
            )),
        }
    }

    fn split_dynamic(&self, path: &[String]) -> Result<(Type, &Self), CodecError> {
        let Mp::Array(parts) = self else {
            return Err(CodecError::at(
                path,
                "dynamic value must be a [type, value] pair",
            ));
        };
        let [ty, value] = parts.as_slice() else {
            return Err(CodecError::at(
                path,
                "dynamic value must be a [type, value] pair",
            ));
        };
        let type_bytes = match ty {
            Mp::Binary(b) => b.as_slice(),
            Mp::String(s) => s.as_bytes(),
            _ => return Err(CodecError::at(path, "dynamic value's type must be bytes")),
        };
        let ty = Type::from_json_bytes(type_bytes).map_err(|e| CodecError::at(path, e))?;
        Ok((ty, value))
    }

    fn kind(&self) -> &'static str {
        match self {
            Mp::Nil => "nil",
            Mp::Boolean(_) => "a bool",
            Mp::Integer(_) | Mp::F32(_) | Mp::F64(_) => "a number",
            Mp::String(_) => "a string",
            Mp::Binary(_) => "bytes",
            Mp::Array(_) => "an array",
            Mp::Map(_) => "a map",
            Mp::Ext(..) => "an extension",
        }
    }
}

fn key_str<'a>(key: &'a Mp, path: &[String]) -> Result<&'a str, CodecError> {
    match key {
        Mp::String(s) => s
            .as_str()
            .ok_or_else(|| CodecError::at(path, "map key is not UTF-8")),
        _ => Err(CodecError::at(path, "map key must be a string")),
    }
}
