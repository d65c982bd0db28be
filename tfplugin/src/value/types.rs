//! cty types and their JSON form (`"string"`, `["list","number"]`, `["object",{…}]`, …), which
//! is how schemas declare attribute types and how dynamic values carry theirs.

use std::collections::BTreeMap;
use std::fmt;

/// A cty type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    String,
    Number,
    Bool,
    /// "any type": values in such a slot carry their concrete type on the wire.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }

    pub fn set(elem: Type) -> Type {
        Type::Set(Box::new(elem))
    }

    pub fn map(elem: Type) -> Type {
        Type::Map(Box::new(elem))
    }

    pub fn object<K: Into<String>>(attrs: impl IntoIterator<Item = (K, Type)>) -> Type {
        Type::Object(attrs.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    /// The JSON form Terraform uses in schemas and dynamic values.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Value as J};
        match self {
            Type::String => json!("string"),
            Type::Number => json!("number"),
            Type::Bool => json!("bool"),
            Type::Dynamic => json!("dynamic"),
            Type::List(e) => json!(["list", e.to_json()]),
            Type::Set(e) => json!(["set", e.to_json()]),
            Type::Map(e) => json!(["map", e.to_json()]),
            Type::Object(attrs) => {
                let attrs: serde_json::Map<String, J> = attrs
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json()))
                    .collect();
                json!(["object", attrs])
            }
            Type::Tuple(elems) => {
                json!(["tuple", elems.iter().map(Type::to_json).collect::<Vec<_>>()])
            }
        }
    }

    /// The JSON form as bytes, as `Schema.Attribute.type` carries it.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Parses the JSON form.
    ///
    /// # Errors
    /// When the JSON is not a cty type.
    pub fn from_json(json: &serde_json::Value) -> Result<Type, String> {
        use serde_json::Value as J;
        match json {
            J::String(s) => match s.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(format!("unknown primitive type {other:?}")),
            },
            J::Array(parts) => {
                let kind = parts
                    .first()
                    .and_then(J::as_str)
                    .ok_or("a type array must start with its kind")?;
                let arg = parts
                    .get(1)
                    .ok_or_else(|| format!("{kind} type needs an argument"))?;
                match kind {
                    "list" => Ok(Type::list(Type::from_json(arg)?)),
                    "set" => Ok(Type::set(Type::from_json(arg)?)),
                    "map" => Ok(Type::map(Type::from_json(arg)?)),
                    // A third element lists optional attributes (type constraints only);
                    // it does not change the wire form, so it is accepted and ignored.
                    "object" => {
                        let attrs = arg
                            .as_object()
                            .ok_or("object type needs a map of attribute types")?;
                        let attrs = attrs
                            .iter()
                            .map(|(k, t)| Ok((k.clone(), Type::from_json(t)?)))
                            .collect::<Result<BTreeMap<_, _>, String>>()?;
                        Ok(Type::Object(attrs))
                    }
                    "tuple" => {
                        let elems = arg
                            .as_array()
                            .ok_or("tuple type needs a list of element types")?;
                        Ok(Type::Tuple(
                            elems
                                .iter()
                                .map(Type::from_json)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    other => Err(format!("unknown type kind {other:?}")),
                }
            }
            other => Err(format!("{other} is not a type")),
        }
    }

    /// Parses the JSON form from bytes.
    ///
    /// # Errors
    /// When the bytes are not JSON of a cty type.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Type, String> {
        let json: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("type is not JSON: {e}"))?;
        Type::from_json(&json)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::Dynamic => f.write_str("any"),
            Type::List(e) => write!(f, "list({e})"),
            Type::Set(e) => write!(f, "set({e})"),
            Type::Map(e) => write!(f, "map({e})"),
            Type::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (k, t)) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={t}")?;
                }
                f.write_str("})")
            }
            Type::Tuple(elems) => {
                f.write_str("tuple([")?;
                for (i, t) in elems.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
        }
    }
}
