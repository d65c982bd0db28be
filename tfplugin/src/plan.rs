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
use crate::schema::{Block, Nesting};
use crate::value::Value;

/// Steps 1–3 of the pipeline. Returns the planned state and the paths that force replacement.
pub fn plan_from_schema(
    block: &Block,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> (Value, Vec<AttributePath>) {
    let mut planned = proposed.clone();
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
/// prior state): by position for lists, by key for maps. Set elements have no stable identity
/// across values, so they pair with nothing (`Null`).
fn zip_nested(
    nesting: Nesting,
    other: &Value,
    planned: &mut Value,
    mut f: impl FnMut(&Value, &mut Value, Option<String>),
) {
    match (nesting, planned) {
        (Nesting::Single | Nesting::Group, p) => f(other, p, None),
        (Nesting::List, Value::List(elems)) => {
            for (i, e) in elems.iter_mut().enumerate() {
                f(
                    other.elements().get(i).unwrap_or(&Value::Null),
                    e,
                    Some(i.to_string()),
                );
            }
        }
        (Nesting::Set, Value::Set(elems)) => {
            for e in elems.iter_mut() {
                f(&Value::Null, e, None);
            }
        }
        (Nesting::Map, Value::Map(entries)) => {
            for (k, e) in entries.iter_mut() {
                let o = other
                    .entries()
                    .and_then(|m| m.get(k))
                    .unwrap_or(&Value::Null);
                f(o, e, Some(k.clone()));
            }
        }
        _ => {}
    }
}

fn apply_defaults(block: &Block, config: &Value, planned: &mut Value) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    // Without a configuration to look at (set elements), a null planned value stands for a
    // null configuration: attributes with defaults are computed, so Terraform proposes the
    // prior value only when the configuration is null too.
    let config_known = matches!(config, Value::Object(_));
    for attr in &block.attributes {
        let Some(default) = &attr.default else {
            continue;
        };
        let unset = if config_known {
            config.attr(&attr.name).is_null()
        } else {
            planned.attr(&attr.name).is_null()
        };
        if unset {
            planned.set_attr(&attr.name, default.clone());
        }
    }
    for nested in &block.blocks {
        let cfg = config.attr(&nested.type_name);
        if let Some(p) = planned.attr_mut(&nested.type_name) {
            zip_nested(nested.nesting, cfg, p, |c, p, _| {
                apply_defaults(&nested.block, c, p)
            });
        }
    }
}

fn mark_computed_nulls_unknown(block: &Block, config: &Value, planned: &mut Value) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    let config_known = matches!(config, Value::Object(_));
    for attr in &block.attributes {
        if !attr.computed || attr.default.is_some() {
            continue;
        }
        // For set elements there is no config to compare: only purely computed attributes
        // (never in configuration) are safe to mark.
        let config_null = if config_known {
            config.attr(&attr.name).is_null()
        } else {
            !attr.optional
        };
        if config_null {
            planned.set_attr(&attr.name, Value::Unknown);
        }
    }
    for nested in &block.blocks {
        let cfg = config.attr(&nested.type_name);
        if let Some(p) = planned.attr_mut(&nested.type_name) {
            zip_nested(nested.nesting, cfg, p, |c, p, _| {
                mark_computed_nulls_unknown(&nested.block, c, p)
            });
        }
    }
}

fn apply_modifiers(
    block: &Block,
    prior: &Value,
    planned: &mut Value,
    path: &AttributePath,
    replace: &mut Vec<AttributePath>,
) {
    if !matches!(planned, Value::Object(_)) || !matches!(prior, Value::Object(_)) {
        return;
    }
    for attr in &block.attributes {
        let prior_value = prior.attr(&attr.name);
        if attr.use_state_for_unknown
            && planned.attr(&attr.name).is_unknown()
            && !prior_value.is_null()
            && prior_value.is_wholly_known()
        {
            planned.set_attr(&attr.name, prior_value.clone());
        }
        if attr.requires_replace && planned.attr(&attr.name) != prior_value {
            replace.push(path.clone().attribute(&attr.name));
        }
    }
    for nested in &block.blocks {
        let here = path.clone().attribute(&nested.type_name);
        let prior_value = prior.attr(&nested.type_name);
        if nested.requires_replace && planned.attr(&nested.type_name) != prior_value {
            replace.push(here.clone());
        }
        if let Some(p) = planned.attr_mut(&nested.type_name) {
            zip_nested(nested.nesting, prior_value, p, |pr, p, step| {
                let elem_path = match (&step, nested.nesting) {
                    (Some(k), Nesting::Map) => here.clone().key(k),
                    (Some(i), _) => here.clone().index(i.parse().unwrap_or(0)),
                    (None, _) => here.clone(),
                };
                apply_modifiers(&nested.block, pr, p, &elem_path, replace);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock};
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
