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

/// Who sets an attribute's value. One value of four, so an impossible mix (required and
/// computed) cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    /// The configuration must set it.
    Required,
    /// The configuration may set it; null otherwise (or the attribute's default).
    Optional,
    /// Only the provider sets it.
    Computed,
    /// The configuration may set it; the provider fills it in otherwise.
    OptionalComputed,
}

impl AttrKind {
    pub fn is_required(self) -> bool {
        self == AttrKind::Required
    }

    pub fn is_optional(self) -> bool {
        matches!(self, AttrKind::Optional | AttrKind::OptionalComputed)
    }

    pub fn is_computed(self) -> bool {
        matches!(self, AttrKind::Computed | AttrKind::OptionalComputed)
    }
}

/// Decides from the prior and the planned value of one attribute whether the change replaces
/// the resource. Both may be null or unknown.
pub type ReplaceCheck = dyn Fn(&Value, &Value) -> bool + Send + Sync;

/// A rule the plan pipeline applies to one attribute of an existing resource (step 3 of
/// [`crate::plan`]), in the spirit of the plugin framework's plan modifiers.
#[derive(Clone)]
pub enum PlanModifier {
    /// Keep the prior value instead of "known after apply": the value changes only when the
    /// resource's `modify_plan` says so. Unlike the framework's modifier a prior null is kept
    /// too, since this SDK stores computed values it knows to be null as null.
    UseStateForUnknown,
    /// Any change replaces the resource.
    RequiresReplace,
    /// A change replaces the resource when `check(prior, planned)` says so; `why` tells the
    /// docs when that is.
    RequiresReplaceIf {
        why: &'static str,
        check: Arc<ReplaceCheck>,
    },
}

impl fmt::Debug for PlanModifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanModifier::UseStateForUnknown => f.write_str("UseStateForUnknown"),
            PlanModifier::RequiresReplace => f.write_str("RequiresReplace"),
            PlanModifier::RequiresReplaceIf { why, .. } => write!(f, "RequiresReplaceIf({why:?})"),
        }
    }
}

impl PlanModifier {
    /// Whether going from `prior` to `planned` replaces the resource.
    pub fn replaces(&self, prior: &Value, planned: &Value) -> bool {
        match self {
            PlanModifier::UseStateForUnknown => false,
            PlanModifier::RequiresReplace => prior != planned,
            PlanModifier::RequiresReplaceIf { check, .. } => {
                prior != planned && check(prior, planned)
            }
        }
    }
}

/// One attribute and everything the SDK needs to validate and plan it.
#[derive(Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub description: String,
    pub kind: AttrKind,
    pub sensitive: bool,
    pub deprecated: bool,
    /// Write-only (Terraform 1.11+): read from the configuration during apply, never planned
    /// or stored; the SDK nulls it in every plan and state, and refuses a value from a
    /// Terraform that does not know write-only attributes (it would store it).
    pub write_only: bool,
    /// Used when the configuration leaves the attribute null. Makes the attribute computed
    /// on the wire, as Terraform requires for provider-set values.
    pub default: Option<Value>,
    pub modifiers: Vec<PlanModifier>,
    pub validators: Vec<Arc<dyn Validator>>,
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attribute")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("kind", &self.kind)
            .field("sensitive", &self.sensitive)
            .field("default", &self.default)
            .field("modifiers", &self.modifiers)
            .field("validators", &self.validators.len())
            .finish()
    }
}

impl Attribute {
    fn new(name: &str, ty: Type, kind: AttrKind) -> Self {
        Attribute {
            name: name.to_string(),
            ty,
            description: String::new(),
            kind,
            sensitive: false,
            write_only: false,
            deprecated: false,
            default: None,
            modifiers: Vec::new(),
            validators: Vec::new(),
        }
    }

    /// Must be set in configuration.
    pub fn required(name: &str, ty: Type) -> Self {
        Self::new(name, ty, AttrKind::Required)
    }

    /// May be set in configuration.
    pub fn optional(name: &str, ty: Type) -> Self {
        Self::new(name, ty, AttrKind::Optional)
    }

    /// Set by the provider only.
    pub fn computed(name: &str, ty: Type) -> Self {
        Self::new(name, ty, AttrKind::Computed)
    }

    /// May be set in configuration; the provider fills it in otherwise.
    pub fn optional_computed(name: &str, ty: Type) -> Self {
        Self::new(name, ty, AttrKind::OptionalComputed)
    }

    pub fn description(mut self, text: &str) -> Self {
        self.description = text.to_string();
        self
    }

    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Write-only: see [`Attribute::write_only`].
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
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

    pub fn modifier(mut self, modifier: PlanModifier) -> Self {
        self.modifiers.push(modifier);
        self
    }

    /// [`PlanModifier::RequiresReplace`].
    pub fn requires_replace(self) -> Self {
        self.modifier(PlanModifier::RequiresReplace)
    }

    /// [`PlanModifier::RequiresReplaceIf`]: `check(prior, planned)` decides.
    pub fn requires_replace_if(
        self,
        why: &'static str,
        check: impl Fn(&Value, &Value) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.modifier(PlanModifier::RequiresReplaceIf {
            why,
            check: Arc::new(check),
        })
    }

    /// [`PlanModifier::UseStateForUnknown`].
    pub fn use_state_for_unknown(self) -> Self {
        self.modifier(PlanModifier::UseStateForUnknown)
    }

    pub fn validator(mut self, v: impl Validator + 'static) -> Self {
        self.validators.push(Arc::new(v));
        self
    }

    /// Whether the provider may set the value: computed, or defaulted.
    pub fn is_computed_on_wire(&self) -> bool {
        self.kind.is_computed() || self.default.is_some()
    }

    pub fn has_modifier(&self, wanted: impl Fn(&PlanModifier) -> bool) -> bool {
        self.modifiers.iter().any(wanted)
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
            if a.default.is_some() && !a.kind.is_optional() {
                out.push(format!("{here}: a default needs an optional attribute"));
            }
            if a.write_only && (a.default.is_some() || a.is_computed_on_wire()) {
                out.push(format!(
                    "{here}: a write-only attribute cannot be computed or have a default"
                ));
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

    /// Sets every write-only attribute of `value` (an object of this block), nested blocks
    /// included, to null: what plans and states must hold for them.
    pub fn clear_write_only(&self, value: &mut Value) {
        let Value::Object(fields) = value else { return };
        for a in self.attributes.iter().filter(|a| a.write_only) {
            if let Some(v) = fields.get_mut(&a.name) {
                *v = Value::Null;
            }
        }
        for b in &self.blocks {
            match fields.get_mut(&b.type_name) {
                Some(Value::List(items) | Value::Set(items)) => {
                    items.iter_mut().for_each(|i| b.block.clear_write_only(i))
                }
                Some(Value::Map(items)) => {
                    items.values_mut().for_each(|i| b.block.clear_write_only(i))
                }
                Some(single @ Value::Object(_)) => b.block.clear_write_only(single),
                _ => {}
            }
        }
    }

    /// The write-only attributes `config` sets (top level and nested), for a Terraform that
    /// cannot keep them out of its plan and state.
    pub fn write_only_set(&self, config: &Value, path: &AttributePath) -> Vec<AttributePath> {
        let mut out = Vec::new();
        if config.is_null() || config.is_unknown() {
            return out;
        }
        for a in self.attributes.iter().filter(|a| a.write_only) {
            if !config.attr(&a.name).is_null() {
                out.push(path.clone().attribute(&a.name));
            }
        }
        for b in &self.blocks {
            let here = path.clone().attribute(&b.type_name);
            match config.attr(&b.type_name) {
                Value::List(items) | Value::Set(items) => {
                    for (i, item) in items.iter().enumerate() {
                        out.extend(b.block.write_only_set(item, &here.clone().index(i)));
                    }
                }
                Value::Map(items) => {
                    for (k, item) in items {
                        out.extend(b.block.write_only_set(item, &here.clone().key(k)));
                    }
                }
                single @ Value::Object(_) => out.extend(b.block.write_only_set(single, &here)),
                _ => {}
            }
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
            required: self.kind.is_required(),
            optional: self.kind.is_optional(),
            computed: self.is_computed_on_wire(),
            sensitive: self.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            write_only: self.write_only,
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

#[cfg(test)]
mod write_only_tests {
    use super::*;

    fn block() -> Block {
        let mut block = Block::new(vec![
            Attribute::optional("token", Type::String).write_only(),
            Attribute::optional("name", Type::String),
        ]);
        block.blocks.push(NestedBlock::new(
            "hook",
            Nesting::List,
            Block::new(vec![
                Attribute::optional("secret", Type::String).write_only()
            ]),
        ));
        block
    }

    fn config() -> Value {
        Value::object([
            ("token", Value::from("t0k3n")),
            ("name", Value::from("n")),
            (
                "hook",
                Value::List(vec![
                    Value::object([("secret", Value::Null)]),
                    Value::object([("secret", Value::from("s3cr3t"))]),
                ]),
            ),
        ])
    }

    #[test]
    fn write_only_values_are_found_and_cleared_at_every_depth() {
        let found: Vec<String> = block()
            .write_only_set(&config(), &AttributePath::root())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found, ["token", "hook[1].secret"]);
        let mut value = config();
        block().clear_write_only(&mut value);
        assert_eq!(value.attr("token"), &Value::Null);
        assert_eq!(value.attr("name"), &Value::from("n"));
        assert!(block()
            .write_only_set(&value, &AttributePath::root())
            .is_empty());
    }

    #[test]
    fn a_computed_write_only_attribute_is_a_schema_problem() {
        let block = Block::new(vec![
            Attribute::computed("x", Type::String).write_only(),
            Attribute::optional("y", Type::String)
                .default("d")
                .write_only(),
        ]);
        assert_eq!(block.problems("r.").len(), 2, "{:?}", block.problems("r."));
    }
}
