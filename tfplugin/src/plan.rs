//! The schema-driven half of planning and validation.
//!
//! `PlanResourceChange` runs these steps in the order HashiCorp's plugin framework uses, so an
//! unchanged resource plans as a no-op without any per-resource code:
//! 1. defaults for attributes the configuration leaves null;
//! 2. only if the result differs from the prior state (or there is none): computed attributes
//!    the configuration leaves null become unknown ("known after apply");
//! 3. attribute modifiers: use-state-for-unknown, then requires-replace;
//! 4. the resource's own modify-plan hook (called by the server);
//! 5. requires-replace paths sorted and de-duplicated.

use crate::diag::{AttributePath, Diagnostics};
use crate::schema::{Block, NestedBlock, Nesting, PlanModifier};
use crate::value::Value;

/// Steps 1–3 of the pipeline. Returns the planned state and the paths that force replacement.
pub fn plan_from_schema(
    block: &Block,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> (Value, Vec<AttributePath>) {
    let mut planned = proposed.clone();
    // Write-only values come from the configuration at apply; a plan never holds them.
    block.clear_write_only(&mut planned);
    drop_blocks_absent_from_config(block, config, &mut planned);
    apply_defaults(block, config, &mut planned);
    if prior.is_null() || planned != *prior {
        mark_computed_nulls_unknown(block, config, &mut planned);
    }
    let mut replace = Vec::new();
    if !prior.is_null() {
        apply_modifiers(
            block,
            prior,
            &mut planned,
            &AttributePath::root(),
            &mut replace,
        );
    }
    (planned, replace)
}

/// Step 5: the order Terraform shows them in, each once.
pub fn normalize_replace_paths(paths: &mut Vec<AttributePath>) {
    paths.sort_by_key(ToString::to_string);
    paths.dedup();
}

/// Runs every attribute validator over a configuration (known, non-null values only).
pub fn validate_config(
    block: &Block,
    config: &Value,
    path: &AttributePath,
    diags: &mut Diagnostics,
) {
    if config.is_null() || config.is_unknown() {
        return;
    }
    for attr in &block.attributes {
        let value = config.attr(&attr.name);
        if value.is_null() || !value.is_wholly_known() {
            continue;
        }
        let here = path.clone().attribute(&attr.name);
        for v in &attr.validators {
            v.validate(value, &here, diags);
        }
    }
    for nested in &block.blocks {
        let here = path.clone().attribute(&nested.type_name);
        for_each_nested(
            nested.nesting,
            config.attr(&nested.type_name),
            &here,
            |elem, p| {
                validate_config(&nested.block, elem, &p, diags);
            },
        );
    }
}

/// Calls `f` for each element of a nested block value with the element's path.
fn for_each_nested(
    nesting: Nesting,
    value: &Value,
    path: &AttributePath,
    mut f: impl FnMut(&Value, AttributePath),
) {
    match (nesting, value) {
        (Nesting::Single | Nesting::Group, v) => f(v, path.clone()),
        (Nesting::List | Nesting::Set, Value::List(elems) | Value::Set(elems)) => {
            for (i, e) in elems.iter().enumerate() {
                f(e, path.clone().index(i));
            }
        }
        (Nesting::Map, Value::Map(entries)) => {
            for (k, e) in entries {
                f(e, path.clone().key(k));
            }
        }
        _ => {}
    }
}

/// Pairs each element of a planned nested block with its counterpart in `other` (config or
/// prior state) and gives the element's path: by position for lists, by key for maps, and for
/// sets by the attributes the provider cannot compute — as Terraform itself matches set
/// elements, since they have no identity of their own.
fn zip_nested(
    nested: &NestedBlock,
    other: &Value,
    planned: &mut Value,
    path: &AttributePath,
    mut f: impl FnMut(&Value, &mut Value, AttributePath),
) {
    match (nested.nesting, planned) {
        (Nesting::Single | Nesting::Group, p) => f(other, p, path.clone()),
        (Nesting::List, Value::List(elems)) => {
            for (i, e) in elems.iter_mut().enumerate() {
                let o = other.elements().get(i).unwrap_or(&Value::Null);
                f(o, e, path.clone().index(i));
            }
        }
        (Nesting::Set, Value::Set(elems)) => {
            for e in elems.iter_mut() {
                let o = set_partner(&nested.block, e, other.elements());
                f(o, e, path.clone());
            }
        }
        (Nesting::Map, Value::Map(entries)) => {
            for (k, e) in entries.iter_mut() {
                let o = other
                    .entries()
                    .and_then(|m| m.get(k))
                    .unwrap_or(&Value::Null);
                f(o, e, path.clone().key(k));
            }
        }
        _ => {}
    }
}

/// The element of `candidates` whose non-computed attributes equal `elem`'s, or `Null`.
fn set_partner<'a>(block: &Block, elem: &Value, candidates: &'a [Value]) -> &'a Value {
    let key = configurable_view(block, elem);
    candidates
        .iter()
        .find(|c| configurable_view(block, c) == key)
        .unwrap_or(&Value::Null)
}

/// `value` with every attribute the provider may set (computed or defaulted) nulled, at every
/// depth: what is left is what only configuration decides.
fn configurable_view(block: &Block, value: &Value) -> Value {
    let Value::Object(attrs) = value else {
        return value.clone();
    };
    let mut out = attrs.clone();
    for attr in block.attributes.iter().filter(|a| a.is_computed_on_wire()) {
        out.insert(attr.name.clone(), Value::Null);
    }
    for nested in &block.blocks {
        let view =
            nested_configurable_view(nested, attrs.get(&nested.type_name).unwrap_or(&Value::Null));
        out.insert(nested.type_name.clone(), view);
    }
    Value::Object(out)
}

/// [`configurable_view`] of a nested block's value, whatever its nesting.
fn nested_configurable_view(nested: &NestedBlock, value: &Value) -> Value {
    value.map_elements(|v| configurable_view(&nested.block, v))
}

/// Terraform proposes the prior value for a single block the configuration no longer has
/// (its `ProposedNew` keeps prior objects whose config is null), yet rejects a plan that keeps
/// it. A removed single block is planned away, at every depth.
fn drop_blocks_absent_from_config(block: &Block, config: &Value, planned: &mut Value) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    for nested in &block.blocks {
        let cfg = config.attr(&nested.type_name);
        if nested.nesting == Nesting::Single && cfg.is_null() {
            planned.set_attr(&nested.type_name, Value::Null);
            continue;
        }
        if let Some(p) = planned.attr_mut(&nested.type_name) {
            zip_nested(nested, cfg, p, &AttributePath::root(), |c, p, _| {
                drop_blocks_absent_from_config(&nested.block, c, p);
            });
        }
    }
}

fn apply_defaults(block: &Block, config: &Value, planned: &mut Value) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    for attr in &block.attributes {
        let Some(default) = &attr.default else {
            continue;
        };
        if config.attr(&attr.name).is_null() {
            planned.set_attr(&attr.name, default.clone());
        }
    }
    for nested in &block.blocks {
        let cfg = config.attr(&nested.type_name);
        if let Some(p) = planned.attr_mut(&nested.type_name) {
            zip_nested(nested, cfg, p, &AttributePath::root(), |c, p, _| {
                apply_defaults(&nested.block, c, p);
            });
        }
    }
}

fn mark_computed_nulls_unknown(block: &Block, config: &Value, planned: &mut Value) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    for attr in &block.attributes {
        if attr.kind.is_computed() && attr.default.is_none() && config.attr(&attr.name).is_null() {
            planned.set_attr(&attr.name, Value::Unknown);
        }
    }
    for nested in &block.blocks {
        let cfg = config.attr(&nested.type_name);
        if let Some(p) = planned.attr_mut(&nested.type_name) {
            zip_nested(nested, cfg, p, &AttributePath::root(), |c, p, _| {
                mark_computed_nulls_unknown(&nested.block, c, p);
            });
        }
    }
}

/// Use-state-for-unknown and requires-replace, at every depth. `prior` is `Null` for a nested
/// element the prior state did not have (the resource itself exists).
fn apply_modifiers(
    block: &Block,
    prior: &Value,
    planned: &mut Value,
    path: &AttributePath,
    replace: &mut Vec<AttributePath>,
) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    for attr in &block.attributes {
        let prior_value = prior.attr(&attr.name);
        // A nested element new in this plan has no prior values to keep.
        if attr.has_modifier(|m| matches!(m, PlanModifier::UseStateForUnknown))
            && !prior.is_null()
            && planned.attr(&attr.name).is_unknown()
            && prior_value.is_wholly_known()
        {
            planned.set_attr(&attr.name, prior_value.clone());
        }
        let planned_value = planned.attr(&attr.name);
        if attr
            .modifiers
            .iter()
            .any(|m| m.replaces(prior_value, planned_value))
        {
            replace.push(path.clone().attribute(&attr.name));
        }
    }
    for nested in &block.blocks {
        let here = path.clone().attribute(&nested.type_name);
        let prior_value = prior.attr(&nested.type_name);
        if let Some(p) = planned.attr_mut(&nested.type_name) {
            zip_nested(nested, prior_value, p, &here, |pr, p, elem_path| {
                apply_modifiers(&nested.block, pr, p, &elem_path, replace);
            });
        }
        // Computed values inside the block are unknown whenever anything changed, so only
        // what configuration decides counts as a change of the block.
        if nested.requires_replace
            && nested_configurable_view(nested, planned.attr(&nested.type_name))
                != nested_configurable_view(nested, prior_value)
        {
            replace.push(here);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock};

    #[test]
    fn a_removed_single_block_is_planned_null_though_terraform_proposes_the_prior() {
        let block = Block::new(vec![Attribute::optional(
            "name",
            crate::value::Type::String,
        )])
        .with_blocks(vec![NestedBlock::new(
            "retention",
            Nesting::Single,
            Block::new(vec![Attribute::optional(
                "keep",
                crate::value::Type::Number,
            )]),
        )]);
        let prior = Value::object([
            ("name", Value::string("a")),
            ("retention", Value::object([("keep", Value::number(3u64))])),
        ]);
        let config = Value::object([("name", Value::string("a")), ("retention", Value::Null)]);
        let (planned, _) = plan_from_schema(&block, &prior, &prior, &config);
        assert_eq!(planned.attr("retention"), &Value::Null);
    }
    use crate::value::Type;

    fn schema() -> Block {
        Block::new(vec![
            Attribute::required("name", Type::String).requires_replace(),
            Attribute::optional("size", Type::Number),
            Attribute::optional("enabled", Type::Bool).default(true),
            Attribute::computed("id", Type::String).use_state_for_unknown(),
            Attribute::computed("revision", Type::Number),
        ])
        .with_blocks(vec![NestedBlock::new(
            "endpoint",
            Nesting::List,
            Block::new(vec![
                Attribute::required("host", Type::String),
                Attribute::optional("port", Type::Number).default(443i64),
            ]),
        )])
    }

    fn state(name: &str, size: i64, port: i64) -> Value {
        Value::object([
            ("name", Value::string(name)),
            ("size", size.into()),
            ("enabled", true.into()),
            ("id", "id-1".into()),
            ("revision", 1i64.into()),
            (
                "endpoint",
                Value::List(vec![Value::object([
                    ("host", "h".into()),
                    ("port", port.into()),
                ])]),
            ),
        ])
    }

    fn config(name: &str, size: i64) -> Value {
        Value::object([
            ("name", Value::string(name)),
            ("size", size.into()),
            ("enabled", Value::Null),
            ("id", Value::Null),
            ("revision", Value::Null),
            (
                "endpoint",
                Value::List(vec![Value::object([
                    ("host", "h".into()),
                    ("port", Value::Null),
                ])]),
            ),
        ])
    }

    #[test]
    fn unchanged_resource_plans_as_no_op() {
        let prior = state("a", 1, 443);
        let (planned, replace) = plan_from_schema(&schema(), &prior, &prior, &config("a", 1));
        assert_eq!(planned, prior);
        assert!(replace.is_empty());
    }

    #[test]
    fn create_fills_defaults_and_marks_computed_unknown() {
        // Terraform proposes config values with computed nulls when there is no prior state.
        let proposed = config("a", 1);
        let (planned, _) = plan_from_schema(&schema(), &Value::Null, &proposed, &proposed);
        assert_eq!(planned.attr("enabled"), &Value::Bool(true));
        assert!(planned.attr("id").is_unknown());
        assert!(planned.attr("revision").is_unknown());
        assert_eq!(
            planned.attr("endpoint").elements()[0].attr("port"),
            &Value::from(443i64)
        );
    }

    #[test]
    fn update_keeps_stable_values_and_unknowns_the_rest() {
        let prior = state("a", 1, 443);
        let mut proposed = prior.clone();
        proposed.set_attr("size", 2i64.into());
        let (planned, replace) = plan_from_schema(&schema(), &prior, &proposed, &config("a", 2));
        assert_eq!(
            planned.attr("id"),
            &Value::from("id-1"),
            "use_state_for_unknown"
        );
        assert!(planned.attr("revision").is_unknown());
        assert!(replace.is_empty());
    }

    #[test]
    fn removing_a_defaulted_value_restores_the_default() {
        let mut prior = state("a", 1, 8443);
        prior.set_attr("enabled", false.into());
        let (planned, _) = plan_from_schema(&schema(), &prior, &prior, &config("a", 1));
        assert_eq!(planned.attr("enabled"), &Value::Bool(true));
        assert_eq!(
            planned.attr("endpoint").elements()[0].attr("port"),
            &Value::from(443i64)
        );
    }

    #[test]
    fn changed_requires_replace_attribute_is_reported() {
        let prior = state("a", 1, 443);
        let mut proposed = prior.clone();
        proposed.set_attr("name", "b".into());
        let (_, mut replace) = plan_from_schema(&schema(), &prior, &proposed, &config("b", 1));
        normalize_replace_paths(&mut replace);
        assert_eq!(replace, vec![AttributePath::attr("name")]);
    }

    #[test]
    fn a_replacing_block_ignores_its_computed_values_and_set_defaults_come_back() {
        let block = Block::new(vec![Attribute::optional("size", Type::Number)]).with_blocks(vec![
            NestedBlock::new(
                "endpoint",
                Nesting::List,
                Block::new(vec![
                    Attribute::required("host", Type::String),
                    Attribute::computed("ip", Type::String),
                ]),
            )
            .requires_replace(),
            NestedBlock::new(
                "rule",
                Nesting::Set,
                Block::new(vec![
                    Attribute::required("action", Type::String),
                    Attribute::optional("port", Type::Number).default(443i64),
                ]),
            ),
        ]);
        let endpoint =
            |ip: Value| Value::List(vec![Value::object([("host", "h".into()), ("ip", ip)])]);
        let rule = |port: Value| {
            Value::Set(vec![Value::object([
                ("action", "allow".into()),
                ("port", port),
            ])])
        };
        let prior = Value::object([
            ("size", 1i64.into()),
            ("endpoint", endpoint("10.0.0.1".into())),
            ("rule", rule(8443i64.into())),
        ]);
        // The user changed `size` and removed `port = 8443` from the rule; Terraform proposes
        // the prior port for the optional+computed attribute.
        let mut proposed = prior.clone();
        proposed.set_attr("size", 2i64.into());
        let config = Value::object([
            ("size", 2i64.into()),
            ("endpoint", endpoint(Value::Null)),
            ("rule", rule(Value::Null)),
        ]);
        let (planned, replace) = plan_from_schema(&block, &prior, &proposed, &config);
        assert!(
            replace.is_empty(),
            "a computed ip turning unknown is not a change of the block: {replace:?}"
        );
        assert_eq!(
            planned.attr("rule"),
            &rule(443i64.into()),
            "the default comes back inside the set"
        );
        let mut moved = proposed.clone();
        moved.set_attr(
            "endpoint",
            Value::List(vec![Value::object([
                ("host", "other".into()),
                ("ip", "10.0.0.1".into()),
            ])]),
        );
        let (_, replace) = plan_from_schema(&block, &prior, &moved, &config);
        assert_eq!(replace, vec![AttributePath::attr("endpoint")]);
    }

    #[test]
    fn validators_see_nested_values_with_their_paths() {
        let block = Block::new(vec![]).with_blocks(vec![NestedBlock::new(
            "endpoint",
            Nesting::List,
            Block::new(vec![Attribute::required("host", Type::String).validator(
                crate::schema::validators::matches("[a-z]+", "lower-case letters"),
            )]),
        )]);
        let cfg = Value::object([(
            "endpoint",
            Value::List(vec![
                Value::object([("host", "ok".into())]),
                Value::object([("host", "BAD".into())]),
            ]),
        )]);
        let mut diags = Diagnostics::new();
        validate_config(&block, &cfg, &AttributePath::root(), &mut diags);
        assert_eq!(diags.0.len(), 1);
        assert_eq!(
            diags.0[0].attribute.as_ref().unwrap().to_string(),
            "endpoint[1].host"
        );
        assert!(
            diags.0[0].detail.contains("lower-case letters"),
            "{:?}",
            diags.0[0]
        );
    }
}
