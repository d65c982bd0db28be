//! Typed models: a resource reads its configuration, plan or state into a Rust struct and
//! writes one back, as the plugin framework's `Get(&model)` and `Set(model)` do. Attribute
//! names are spelled once, by the struct's field names; [`check_model`] proves in a unit test
//! that they and their types agree with the schema, so a misspelled name fails a test instead
//! of reading null.
//!
//! ```
//! use tfplugin::model::{Attr, Model};
//! tfplugin::model! {
//!     /// A `server` resource.
//!     pub struct Server {
//!         pub name: Attr<String>,
//!         pub port: Attr<i64>,
//!     }
//! }
//! let value = tfplugin::Value::object([("name", "web".into()), ("port", tfplugin::Value::Unknown)]);
//! let server = Server::from_value(&value).unwrap();
//! assert_eq!(server.name.as_str(), Some("web"));
//! assert!(server.port.is_unknown());
//! ```
//!
//! Values Terraform sends partly unknown (a list with one unknown element) read as
//! [`Attr::Unknown`], and null elements of a list or map (`{ owner = null }`) are skipped, as
//! nothing a provider does with a collection wants them. [`Model::write_into`] and
//! [`Model::written_over`] leave every field the resource did not change exactly as it was, so
//! such values survive a read–modify–write of a plan or a state untouched: write results over
//! the value Terraform sent, never build them anew with [`Model::to_value`].

use crate::diag::{AttributePath, Diagnostic, Diagnostics};
use crate::value::{Number, Type, Value};
use std::collections::BTreeMap;

/// One attribute's value as a resource sees it: null, not known until apply, or known.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Attr<T> {
    #[default]
    Null,
    Unknown,
    Known(T),
}

impl<T> Attr<T> {
    pub fn get(&self) -> Option<&T> {
        match self {
            Attr::Known(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Attr::Null)
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Attr::Unknown)
    }

    pub fn is_known(&self) -> bool {
        matches!(self, Attr::Known(_))
    }

    /// `Known` for `Some`, `Null` for `None`.
    pub fn from_option(value: Option<T>) -> Self {
        value.map_or(Attr::Null, Attr::Known)
    }
}

impl<T: Known> Attr<T> {
    /// Null, or known with nothing unknown inside.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Attr::Null => true,
            Attr::Unknown => false,
            Attr::Known(v) => v.is_wholly_known(),
        }
    }
}

impl<T: Clone> Attr<T> {
    pub fn cloned(&self) -> Option<T> {
        self.get().cloned()
    }
}

impl<T: Default + Clone> Attr<T> {
    /// The known value, or `T::default()` (an empty string, list or map) otherwise.
    pub fn or_default(&self) -> T {
        self.get().cloned().unwrap_or_default()
    }
}

impl Attr<String> {
    pub fn as_str(&self) -> Option<&str> {
        self.get().map(String::as_str)
    }
}

impl<T> From<T> for Attr<T> {
    fn from(value: T) -> Self {
        Attr::Known(value)
    }
}

impl From<&str> for Attr<String> {
    fn from(value: &str) -> Self {
        Attr::Known(value.to_string())
    }
}

/// A value that can stand in a known attribute: its cty type and its codec.
pub trait Known: Clone + PartialEq + Sized {
    fn ty() -> Type;
    /// Decodes a non-null value; `None` when it is unknown at a depth this type cannot hold
    /// unknowns (a string, a list of strings with one unknown), `Err` when it has the wrong
    /// type.
    fn decode(value: &Value) -> Result<Option<Self>, String>;
    fn encode(&self) -> Value;
    /// Whether nothing inside is unknown; only models and collections of them can hold
    /// unknowns inside a known value.
    fn is_wholly_known(&self) -> bool {
        true
    }
}

impl Known for String {
    fn ty() -> Type {
        Type::String
    }
    fn decode(value: &Value) -> Result<Option<Self>, String> {
        leaf(
            value,
            |v| v.as_str().map(str::to_string),
            "expected a string",
        )
    }
    fn encode(&self) -> Value {
        Value::string(self)
    }
}

impl Known for bool {
    fn ty() -> Type {
        Type::Bool
    }
    fn decode(value: &Value) -> Result<Option<Self>, String> {
        leaf(value, Value::as_bool, "expected a bool")
    }
    fn encode(&self) -> Value {
        Value::Bool(*self)
    }
}

impl Known for Number {
    fn ty() -> Type {
        Type::Number
    }
    fn decode(value: &Value) -> Result<Option<Self>, String> {
        leaf(value, |v| v.as_number().cloned(), "expected a number")
    }
    fn encode(&self) -> Value {
        Value::Number(self.clone())
    }
}

impl Known for u64 {
    fn ty() -> Type {
        Type::Number
    }
    fn decode(value: &Value) -> Result<Option<Self>, String> {
        leaf(
            value,
            |v| v.as_number().and_then(Number::to_u64),
            "expected a whole number of at least 0",
        )
    }
    fn encode(&self) -> Value {
        Value::number(*self)
    }
}

impl Known for i64 {
    fn ty() -> Type {
        Type::Number
    }
    fn decode(value: &Value) -> Result<Option<Self>, String> {
        leaf(
            value,
            |v| v.as_number().and_then(Number::to_i64),
            "expected a whole number",
        )
    }
    fn encode(&self) -> Value {
        Value::number(*self)
    }
}

impl<T: Known> Known for Vec<T> {
    fn ty() -> Type {
        Type::list(T::ty())
    }
    fn decode(value: &Value) -> Result<Option<Self>, String> {
        match value {
            Value::Unknown => Ok(None),
            Value::List(items) => items
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_null())
                .map(|(i, v)| T::decode(v).map_err(|e| format!("[{i}]: {e}")))
                .collect(),
            _ => Err("expected a list".into()),
        }
    }
    fn encode(&self) -> Value {
        Value::List(self.iter().map(T::encode).collect())
    }
    fn is_wholly_known(&self) -> bool {
        self.iter().all(T::is_wholly_known)
    }
}

impl<T: Known> Known for BTreeMap<String, T> {
    fn ty() -> Type {
        Type::map(T::ty())
    }
    fn decode(value: &Value) -> Result<Option<Self>, String> {
        match value {
            Value::Unknown => Ok(None),
            Value::Map(entries) => {
                let mut out = BTreeMap::new();
                for (k, v) in entries.iter().filter(|(_, v)| !v.is_null()) {
                    match T::decode(v).map_err(|e| format!("[{k:?}]: {e}"))? {
                        Some(v) => out.insert(k.clone(), v),
                        None => return Ok(None),
                    };
                }
                Ok(Some(out))
            }
            _ => Err("expected a map".into()),
        }
    }
    fn encode(&self) -> Value {
        Value::Map(self.iter().map(|(k, v)| (k.clone(), v.encode())).collect())
    }
    fn is_wholly_known(&self) -> bool {
        self.values().all(T::is_wholly_known)
    }
}

/// Decodes a scalar: unknown reads as `None`.
fn leaf<T>(
    value: &Value,
    get: impl Fn(&Value) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, String> {
    if value.is_unknown() {
        return Ok(None);
    }
    get(value).map(Some).ok_or_else(|| expected.to_string())
}

/// A struct field of a model.
pub trait Field: PartialEq + Sized {
    fn ty() -> Type;
    fn read(value: &Value) -> Result<Self, String>;
    fn write(&self) -> Value;
}

impl<T: Known> Field for Attr<T> {
    fn ty() -> Type {
        T::ty()
    }
    fn read(value: &Value) -> Result<Self, String> {
        if value.is_null() {
            return Ok(Attr::Null);
        }
        Ok(T::decode(value)?.map_or(Attr::Unknown, Attr::Known))
    }
    fn write(&self) -> Value {
        match self {
            Attr::Null => Value::Null,
            Attr::Unknown => Value::Unknown,
            Attr::Known(v) => v.encode(),
        }
    }
}

/// Why a value does not fit a model: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    pub path: AttributePath,
    pub message: String,
}

impl From<ModelError> for Diagnostic {
    fn from(e: ModelError) -> Self {
        Diagnostic::error(
            "Unexpected Attribute Value",
            format!(
                "{}: {}. This is a bug in the provider; please report it with the configuration that caused it.",
                e.path, e.message
            ),
        )
        .at(e.path)
    }
}

/// A struct whose fields are a block's attributes and nested blocks. Written with
/// [`crate::model!`], never by hand.
pub trait Model: Sized {
    /// The attribute and block names, in declaration order.
    const FIELDS: &'static [&'static str];

    /// The object type this model reads and writes; [`check_model`] compares it with a schema.
    fn implied_type() -> Type;

    fn from_value(value: &Value) -> Result<Self, ModelError>;

    /// The model as a whole object value.
    fn to_value(&self) -> Value;

    /// Writes the fields that differ from what `target` holds into it, leaving the others
    /// exactly as they were (including values only partly known).
    fn write_into(&self, target: &mut Value);

    /// Whether no field is unknown, at any depth.
    fn is_wholly_known(&self) -> bool;

    /// `base` with the fields that differ written over it (see [`Model::write_into`]): how a
    /// resource returns a state or a data source its result.
    fn written_over(&self, base: &Value) -> Value {
        let mut value = base.clone();
        self.write_into(&mut value);
        value
    }

    /// [`Model::from_value`], with a failure added to `diags`.
    fn read(value: &Value, diags: &mut Diagnostics) -> Option<Self> {
        match Self::from_value(value) {
            Ok(m) => Some(m),
            Err(e) => {
                diags.push(e.into());
                None
            }
        }
    }
}

/// A nested single block reads as `Attr<M>`, a list block as `Attr<Vec<M>>`.
impl<M: Model + Clone + PartialEq> Known for M {
    fn ty() -> Type {
        M::implied_type()
    }
    fn decode(value: &Value) -> Result<Option<Self>, String> {
        match value {
            Value::Unknown => Ok(None),
            Value::Object(_) => M::from_value(value)
                .map(Some)
                .map_err(|e| format!("{}: {}", e.path, e.message)),
            _ => Err("expected an object".into()),
        }
    }
    fn encode(&self) -> Value {
        self.to_value()
    }
    fn is_wholly_known(&self) -> bool {
        Model::is_wholly_known(self)
    }
}

/// Reads one field of a model; used by [`crate::model!`].
#[doc(hidden)]
pub fn read_field<F: Field>(value: &Value, name: &str) -> Result<F, ModelError> {
    F::read(value.attr(name)).map_err(|message| ModelError {
        path: AttributePath::attr(name),
        message,
    })
}

/// Writes one field unless `target` already holds it; used by [`crate::model!`].
#[doc(hidden)]
pub fn write_field<F: Field>(field: &F, target: &mut Value, name: &str) {
    if F::read(target.attr(name)).as_ref() != Ok(field) {
        target.set_attr(name, field.write());
    }
}

/// Declares a model struct: every field an [`Attr`] whose name is the attribute's.
#[macro_export]
macro_rules! model {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $field_ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq)]
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $field_ty),*
        }

        impl $crate::model::Model for $name {
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn implied_type() -> $crate::Type {
                $crate::Type::object([
                    $((stringify!($field), <$field_ty as $crate::model::Field>::ty())),*
                ])
            }

            fn from_value(value: &$crate::Value) -> Result<Self, $crate::model::ModelError> {
                Ok($name {
                    $($field: $crate::model::read_field(value, stringify!($field))?),*
                })
            }

            fn to_value(&self) -> $crate::Value {
                $crate::Value::object([
                    $((stringify!($field), $crate::model::Field::write(&self.$field))),*
                ])
            }

            fn is_wholly_known(&self) -> bool {
                true $(&& self.$field.is_wholly_known())*
            }

            fn write_into(&self, target: &mut $crate::Value) {
                if !matches!(target, $crate::Value::Object(_)) {
                    *target = self.to_value();
                    return;
                }
                $($crate::model::write_field(&self.$field, target, stringify!($field));)*
            }
        }
    };
}

/// Compares a model with the block it models: every attribute and nested block must be a
/// field of the same type, and every field must be in the schema. Returns each mismatch as a
/// sentence; meant for a unit test next to each resource.
pub fn check_model<M: Model>(block: &crate::schema::Block) -> Result<(), String> {
    let (Type::Object(schema), Type::Object(model)) = (block.implied_type(), M::implied_type())
    else {
        return Err("a block and a model are both objects".into());
    };
    let mut problems = Vec::new();
    for (name, ty) in &schema {
        match model.get(name) {
            None => problems.push(format!("{name}: in the schema, not in the model")),
            Some(m) if m != ty => {
                problems.push(format!("{name}: the schema says {ty}, the model {m}"))
            }
            Some(_) => {}
        }
    }
    for name in model.keys().filter(|n| !schema.contains_key(*n)) {
        problems.push(format!("{name}: in the model, not in the schema"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, Block, NestedBlock, Nesting};

    crate::model! {
        struct Endpoint {
            host: Attr<String>,
            tags: Attr<Vec<String>>,
        }
    }

    crate::model! {
        struct Server {
            name: Attr<String>,
            port: Attr<u64>,
            labels: Attr<BTreeMap<String, String>>,
            endpoint: Attr<Vec<Endpoint>>,
        }
    }

    fn block() -> Block {
        Block::new(vec![
            Attribute::required("name", Type::String),
            Attribute::optional("port", Type::Number),
            Attribute::optional("labels", Type::map(Type::String)),
        ])
        .with_blocks(vec![NestedBlock::new(
            "endpoint",
            Nesting::List,
            Block::new(vec![
                Attribute::required("host", Type::String),
                Attribute::optional("tags", Type::list(Type::String)),
            ]),
        )])
    }

    #[test]
    fn a_model_that_matches_its_schema_passes_the_check() {
        assert_eq!(check_model::<Server>(&block()), Ok(()));
    }

    #[test]
    fn a_misspelled_or_mistyped_field_fails_the_check() {
        let block = Block::new(vec![
            Attribute::required("nmae", Type::String),
            Attribute::optional("port", Type::String),
            Attribute::optional("labels", Type::map(Type::String)),
        ]);
        let problems = check_model::<Server>(&block).unwrap_err();
        assert!(
            problems.contains("nmae: in the schema, not in the model"),
            "{problems}"
        );
        assert!(
            problems.contains("name: in the model, not in the schema"),
            "{problems}"
        );
        assert!(
            problems.contains("port: the schema says string"),
            "{problems}"
        );
        assert!(
            problems.contains("endpoint: in the model, not in the schema"),
            "{problems}"
        );
    }

    #[test]
    fn values_round_trip_through_a_model() {
        let value = Value::object([
            ("name", Value::string("web")),
            ("port", Value::number(443u64)),
            (
                "labels",
                Value::Map([("env".to_string(), Value::string("prod"))].into()),
            ),
            (
                "endpoint",
                Value::List(vec![Value::object([
                    ("host", Value::string("h")),
                    ("tags", Value::Null),
                ])]),
            ),
        ]);
        let server = Server::from_value(&value).unwrap();
        assert_eq!(server.port, Attr::Known(443));
        assert_eq!(server.endpoint.get().unwrap()[0].host.as_str(), Some("h"));
        assert_eq!(server.to_value(), value);
    }

    #[test]
    fn a_partly_unknown_value_survives_a_read_modify_write() {
        let tags = Value::List(vec![Value::string("a"), Value::Unknown]);
        let mut planned = Value::object([
            ("name", Value::string("web")),
            ("port", Value::Null),
            ("labels", Value::Null),
            (
                "endpoint",
                Value::List(vec![Value::object([
                    ("host", Value::string("h")),
                    ("tags", tags.clone()),
                ])]),
            ),
        ]);
        let mut server = Server::from_value(&planned).unwrap();
        assert!(server.endpoint.get().unwrap()[0].tags.is_unknown());
        server.port = Attr::Unknown;
        server.write_into(&mut planned);
        assert!(planned.attr("port").is_unknown());
        assert_eq!(planned.attr("endpoint").elements()[0].attr("tags"), &tags);
    }

    #[test]
    fn null_elements_are_skipped_on_read_and_kept_on_write() {
        let labels = Value::Map(
            [
                ("env".to_string(), Value::string("prod")),
                ("owner".to_string(), Value::Null),
            ]
            .into(),
        );
        let state = Value::object([
            ("name", Value::string("web")),
            ("port", Value::Null),
            ("labels", labels.clone()),
            ("endpoint", Value::List(vec![])),
        ]);
        let mut server = Server::from_value(&state).unwrap();
        assert_eq!(
            server.labels.get().unwrap().keys().collect::<Vec<_>>(),
            ["env"]
        );
        server.port = 8080u64.into();
        let written = server.written_over(&state);
        assert_eq!(written.attr("labels"), &labels, "the null entry survives");
        assert_eq!(written.attr("port"), &Value::number(8080u64));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_its_path() {
        let value = Value::object([("name", Value::Bool(true))]);
        let err = Server::from_value(&value).unwrap_err();
        assert_eq!(err.path, AttributePath::attr("name"));
        assert_eq!(err.message, "expected a string");
    }
}
