//! Schemas with declarative attribute options.
//!
//! A provider describes each attribute once — required/optional/computed, sensitive, default,
//! requires-replace, use-state-for-unknown, validators, description — and the SDK derives the
//! wire schema, the value type, validation and the plan from it (see [`crate::plan`]).

use crate::diag::{AttributePath, Diagnostics};
use crate::value::{Type, Value};
use dr_proto::tfplugin6 as pb;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// A resource, data source or provider schema.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    /// Bumped whenever the stored state's shape changes; see `Resource::upgrade_state`.
    pub version: i64,
    pub block: Block,
}

/// A block: attributes plus nested blocks.
#[derive(Clone, Debug, Default)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub description: String,
    pub deprecated: bool,
}

/// Checks a known, non-null value; validators never see null or unknown values.
pub trait Validator: Send + Sync {
    /// Adds diagnostics (pointed at `path`) for a bad value.
    fn validate(&self, value: &Value, path: &AttributePath, diags: &mut Diagnostics);
}

impl<F> Validator for F
where
    F: Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync,
{
    fn validate(&self, value: &Value, path: &AttributePath, diags: &mut Diagnostics) {
        self(value, path, diags);
    }
}

/// One attribute and everything the SDK needs to validate and plan it.
#[derive(Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub deprecated: bool,
    /// Used when the configuration leaves the attribute null. Makes the attribute computed
    /// on the wire, as Terraform requires for provider-set values.
    pub default: Option<Value>,
    /// A change of this attribute replaces the resource.
    pub requires_replace: bool,
    /// Keep the prior value instead of "known after apply" when the resource is updated.
    pub use_state_for_unknown: bool,
    pub validators: Vec<Arc<dyn Validator>>,
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attribute")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("required", &self.required)
            .field("optional", &self.optional)
            .field("computed", &self.computed)
            .field("sensitive", &self.sensitive)
            .field("default", &self.default)
            .field("requires_replace", &self.requires_replace)
            .field("use_state_for_unknown", &self.use_state_for_unknown)
            .field("validators", &self.validators.len())
            .finish()
    }
}

impl Attribute {
    fn new(name: &str, ty: Type) -> Self {
        Attribute {
            name: name.to_string(),
            ty,
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            deprecated: false,
            default: None,
            requires_replace: false,
            use_state_for_unknown: false,
            validators: Vec::new(),
        }
    }

    /// Must be set in configuration.
    pub fn required(name: &str, ty: Type) -> Self {
        Attribute {
            required: true,
            ..Self::new(name, ty)
        }
    }

    /// May be set in configuration.
    pub fn optional(name: &str, ty: Type) -> Self {
        Attribute {
            optional: true,
            ..Self::new(name, ty)
        }
    }

    /// Set by the provider only.
    pub fn computed(name: &str, ty: Type) -> Self {
        Attribute {
            computed: true,
            ..Self::new(name, ty)
        }
    }

    /// May be set in configuration; the provider fills it in otherwise.
    pub fn optional_computed(name: &str, ty: Type) -> Self {
        Attribute {
            optional: true,
            computed: true,
            ..Self::new(name, ty)
        }
    }

    pub fn description(mut self, text: &str) -> Self {
        self.description = text.to_string();
        self
    }

    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }

    pub fn use_state_for_unknown(mut self) -> Self {
        self.use_state_for_unknown = true;
        self
    }

    pub fn validator(mut self, v: impl Validator + 'static) -> Self {
        self.validators.push(Arc::new(v));
        self
    }

    /// Whether the provider may set the value: computed, or defaulted.
    pub fn is_computed_on_wire(&self) -> bool {
        self.computed || self.default.is_some()
    }
}

/// How a nested block repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; null when absent.
    Single,
    /// Exactly one; all-null attributes when absent.
    Group,
    List,
    Set,
    /// Labelled blocks, `name "label" { … }`.
    Map,
}

#[derive(Clone, Debug)]
pub struct NestedBlock {
    pub type_name: String,
    pub block: Block,
    pub nesting: Nesting,
    pub min_items: i64,
    pub max_items: i64,
    /// Any change inside this block replaces the resource.
    pub requires_replace: bool,
}

impl NestedBlock {
    pub fn new(type_name: &str, nesting: Nesting, block: Block) -> Self {
        NestedBlock {
            type_name: type_name.to_string(),
            block,
            nesting,
            min_items: 0,
            max_items: 0,
            requires_replace: false,
        }
    }

    pub fn min_items(mut self, n: i64) -> Self {
        self.min_items = n;
        self
    }

    pub fn max_items(mut self, n: i64) -> Self {
        self.max_items = n;
        self
    }

    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
}

impl Block {
    pub fn new(attributes: Vec<Attribute>) -> Self {
        Block {
            attributes,
            ..Block::default()
        }
    }

    pub fn with_blocks(mut self, blocks: Vec<NestedBlock>) -> Self {
        self.blocks = blocks;
        self
    }

    pub fn description(mut self, text: &str) -> Self {
        self.description = text.to_string();
        self
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Fills in what Terraform expects of a block value on the wire: LIST and SET blocks are
    /// empty rather than null, MAP blocks an empty map, GROUP blocks an object of nulls —
    /// at every depth. Partial states (imports, upgrades) would otherwise show a diff.
    pub fn normalize(&self, value: &mut Value) {
        let Value::Object(attrs) = value else { return };
        for nested in &self.blocks {
            let slot = attrs.entry(nested.type_name.clone()).or_insert(Value::Null);
            if slot.is_null() {
                *slot = match nested.nesting {
                    Nesting::Single => Value::Null,
                    Nesting::Group => Value::Object(Default::default()),
                    Nesting::List => Value::List(Vec::new()),
                    Nesting::Set => Value::Set(Vec::new()),
                    Nesting::Map => Value::Map(Default::default()),
                };
            }
            match slot {
                Value::List(elems) | Value::Set(elems) => {
                    elems.iter_mut().for_each(|e| nested.block.normalize(e))
                }
                Value::Map(entries) => entries.values_mut().for_each(|e| nested.block.normalize(e)),
                other => nested.block.normalize(other),
            }
        }
        for attr in &self.attributes {
            attrs.entry(attr.name.clone()).or_insert(Value::Null);
        }
    }

    /// The cty object type values of this block have.
    pub fn implied_type(&self) -> Type {
        let attrs = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()));
        let blocks = self.blocks.iter().map(|b| {
            let obj = b.block.implied_type();
            let ty = match b.nesting {
                Nesting::Single | Nesting::Group => obj,
                Nesting::List => Type::list(obj),
                Nesting::Set => Type::set(obj),
                Nesting::Map => Type::map(obj),
            };
            (b.type_name.clone(), ty)
        });
        Type::object(attrs.chain(blocks))
    }

    /// Mistakes in the schema itself, each as a sentence; Terraform would crash or misbehave
    /// on most of them, so the server reports them from `GetProviderSchema`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for a in &self.attributes {
            let here = format!("{at}{}", a.name);
            if !seen.insert(a.name.as_str()) {
                out.push(format!("{here}: declared twice"));
            }
            if !(a.required || a.optional || a.computed) {
                out.push(format!("{here}: must be required, optional or computed"));
            }
            if a.required && (a.optional || a.computed) {
                out.push(format!("{here}: required excludes optional and computed"));
            }
            if a.default.is_some() && !a.optional {
                out.push(format!("{here}: a default needs an optional attribute"));
            }
            if let Some(d) = &a.default {
                if let Err(e) = d.to_msgpack(&a.ty) {
                    out.push(format!("{here}: default does not fit type {}: {e}", a.ty));
                }
            }
        }
        for b in &self.blocks {
            let here = format!("{at}{}", b.type_name);
            if !seen.insert(b.type_name.as_str()) {
                out.push(format!("{here}: name used twice"));
            }
            if b.max_items != 0 && b.max_items < b.min_items {
                out.push(format!("{here}: max_items below min_items"));
            }
            out.extend(b.block.problems(&format!("{here}.")));
        }
        out
    }

    pub(crate) fn to_proto(&self) -> pb::schema::Block {
        pb::schema::Block {
            version: 0,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self.blocks.iter().map(NestedBlock::to_proto).collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            deprecation_message: String::new(),
        }
    }
}

impl Attribute {
    fn to_proto(&self) -> pb::schema::Attribute {
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type: self.ty.to_json_bytes(),
            nested_type: None,
            description: self.description.clone(),
            required: self.required,
            optional: self.optional,
            computed: self.is_computed_on_wire(),
            sensitive: self.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            write_only: false,
            deprecation_message: String::new(),
        }
    }
}

impl NestedBlock {
    fn to_proto(&self) -> pb::schema::NestedBlock {
        use pb::schema::nested_block::NestingMode;
        let nesting = match self.nesting {
            Nesting::Single => NestingMode::Single,
            Nesting::Group => NestingMode::Group,
            Nesting::List => NestingMode::List,
            Nesting::Set => NestingMode::Set,
            Nesting::Map => NestingMode::Map,
        };
        pb::schema::NestedBlock {
            type_name: self.type_name.clone(),
            block: Some(self.block.to_proto()),
            nesting: nesting as i32,
            min_items: self.min_items,
            max_items: self.max_items,
        }
    }
}

impl Schema {
    pub fn new(version: i64, block: Block) -> Self {
        Schema { version, block }
    }

    pub(crate) fn to_proto(&self) -> pb::Schema {
        let mut block = self.block.to_proto();
        block.version = self.version;
        pb::Schema {
            version: self.version,
            block: Some(block),
        }
    }
}

/// Validators that most providers need.
pub mod validators {
    use super::Validator;
    use crate::diag::{AttributePath, Diagnostics};
    use crate::value::Value;

    /// The string must be one of `allowed`.
    pub fn one_of(allowed: &'static [&'static str]) -> impl Validator {
        move |v: &Value, path: &AttributePath, diags: &mut Diagnostics| {
            if let Some(s) = v.as_str() {
                if !allowed.contains(&s) {
                    diags.error_at(
                        path.clone(),
                        "Invalid Attribute Value",
                        format!("{path} must be one of {}, got {s:?}.", quoted_list(allowed)),
                    );
                }
            }
        }
    }

    /// The string must match `pattern` (anchored); `what` says in words what is expected.
    ///
    /// # Panics
    /// At schema construction when `pattern` is not a valid regex (a programming error).
    pub fn matches(pattern: &str, what: &'static str) -> impl Validator {
        let re =
            regex::Regex::new(&format!("^(?:{pattern})$")).expect("validator regex must compile");
        move |v: &Value, path: &AttributePath, diags: &mut Diagnostics| {
            if let Some(s) = v.as_str() {
                if !re.is_match(s) {
                    diags.error_at(
                        path.clone(),
                        "Invalid Attribute Value",
                        format!("{path} must be {what}, got {s:?}."),
                    );
                }
            }
        }
    }

    /// The number must be an integer within `min..=max`.
    pub fn int_between(min: i64, max: i64) -> impl Validator {
        move |v: &Value, path: &AttributePath, diags: &mut Diagnostics| {
            if let Some(n) = v.as_number() {
                match n.to_i64() {
                    Some(i) if (min..=max).contains(&i) => {}
                    _ => diags.error_at(
                        path.clone(),
                        "Invalid Attribute Value",
                        format!("{path} must be a whole number from {min} to {max}, got {n}."),
                    ),
                }
            }
        }
    }

    fn quoted_list(items: &[&str]) -> String {
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
