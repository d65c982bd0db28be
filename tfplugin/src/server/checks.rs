//! What Terraform would reject in a plan or an apply result, caught before it does, with the
//! attribute named and the provider blamed (not the user).

use crate::diag::{AttributePath, Diagnostic, Diagnostics};
use crate::schema::Block;
use crate::value::Value;

/// Terraform rejects an apply whose result still holds unknowns or differs from a known
/// planned value; checking here names the attribute and blames the provider, not the user.
pub(super) fn check_apply_result(planned: &Value, new: &Value, diags: &mut Diagnostics) {
    if let Some(path) = first_unknown(new, &AttributePath::root()) {
        diags.push(
            Diagnostic::error(
                "Provider Returned An Unknown Value",
                format!(
                    "After apply, {} is still unknown. This is a bug in the provider.",
                    path_name(&path)
                ),
            )
            .at(path),
        );
        return;
    }
    check_matches_plan(planned, new, &AttributePath::root(), diags);
}

/// Terraform requires every attribute the provider may not set to be planned exactly as
/// configured; a `modify_plan` that breaks this is caught here with the attribute named.
pub(super) fn check_plan_keeps_config(
    block: &Block,
    config: &Value,
    planned: &Value,
    diags: &mut Diagnostics,
) {
    for attr in block.attributes.iter().filter(|a| !a.is_computed_on_wire()) {
        if attr.write_only {
            if !planned.attr(&attr.name).is_null() {
                diags.push(
                    Diagnostic::error(
                        "Provider Produced Invalid Plan",
                        format!("The plan holds a value for {}, which is write-only and must never be planned. This is a bug in the provider.", attr.name),
                    )
                    .at(AttributePath::attr(&attr.name)),
                );
            }
            continue;
        }
        if planned.attr(&attr.name) != config.attr(&attr.name) {
            diags.push(
                Diagnostic::error(
                    "Provider Produced Invalid Plan",
                    format!("The plan changed {}, which only configuration may set. This is a bug in the provider.", attr.name),
                )
                .at(AttributePath::attr(&attr.name)),
            );
        }
    }
}

/// The path of the first unknown inside `value` (a set with unknowns counts as a whole).
fn first_unknown(value: &Value, path: &AttributePath) -> Option<AttributePath> {
    match value {
        Value::Unknown => Some(path.clone()),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, v)| first_unknown(v, &path.clone().attribute(k))),
        Value::Map(m) => m
            .iter()
            .find_map(|(k, v)| first_unknown(v, &path.clone().key(k))),
        Value::List(e) | Value::Tuple(e) => e
            .iter()
            .enumerate()
            .find_map(|(i, v)| first_unknown(v, &path.clone().index(i))),
        Value::Set(_) => (!value.is_wholly_known()).then(|| path.clone()),
        Value::Dynamic(_, v) => first_unknown(v, path),
        _ => None,
    }
}

fn check_matches_plan(planned: &Value, new: &Value, path: &AttributePath, diags: &mut Diagnostics) {
    if planned.is_unknown() {
        return;
    }
    match (planned, new) {
        (Value::Object(p), Value::Object(n)) => {
            for (k, pv) in p {
                check_matches_plan(
                    pv,
                    n.get(k).unwrap_or(&Value::Null),
                    &path.clone().attribute(k),
                    diags,
                );
            }
            return;
        }
        (Value::List(p), Value::List(n)) | (Value::Tuple(p), Value::Tuple(n))
            if p.len() == n.len() =>
        {
            for (i, (pv, nv)) in p.iter().zip(n).enumerate() {
                check_matches_plan(pv, nv, &path.clone().index(i), diags);
            }
            return;
        }
        (Value::Map(p), Value::Map(n)) if p.keys().eq(n.keys()) => {
            for ((k, pv), nv) in p.iter().zip(n.values()) {
                check_matches_plan(pv, nv, &path.clone().key(k), diags);
            }
            return;
        }
        (Value::Dynamic(pt, pv), Value::Dynamic(nt, nv)) if pt == nt => {
            check_matches_plan(pv, nv, path, diags);
            return;
        }
        // Set elements with unknowns have no identity to match on; the known ones must
        // still be there after apply.
        (Value::Set(p), Value::Set(n))
            if !planned.is_wholly_known()
                && p.len() == n.len()
                && p.iter()
                    .filter(|e| e.is_wholly_known())
                    .all(|e| n.contains(e)) =>
        {
            return;
        }
        (p, n) if p == n => return,
        _ => {}
    }
    diags.push(
        Diagnostic::error(
            "Provider Produced Inconsistent Result",
            format!(
                "After apply, {} differs from the planned value. This is a bug in the provider.",
                path_name(path)
            ),
        )
        .at(path.clone()),
    );
}

fn path_name(path: &AttributePath) -> String {
    if path.is_root() {
        "the object".to_string()
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Type;

    #[test]
    fn apply_results_must_be_known_and_match_known_planned_values() {
        let planned = Value::object([("a", Value::from("x")), ("b", Value::Unknown)]);
        let mut diags = Diagnostics::new();
        check_apply_result(
            &planned,
            &Value::object([("a", "x".into()), ("b", "y".into())]),
            &mut diags,
        );
        assert!(diags.is_empty());
        check_apply_result(
            &planned,
            &Value::object([("a", "x".into()), ("b", Value::Unknown)]),
            &mut diags,
        );
        check_apply_result(
            &planned,
            &Value::object([("a", "z".into()), ("b", "y".into())]),
            &mut diags,
        );
        let unknown_in_set =
            Value::object([("a", "x".into()), ("b", Value::Set(vec![Value::Unknown]))]);
        check_apply_result(&planned, &unknown_in_set, &mut diags);
        let got: Vec<(String, &str)> = diags
            .iter()
            .map(|d| {
                (
                    d.attribute.as_ref().unwrap().to_string(),
                    d.summary.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("b".to_string(), "Provider Returned An Unknown Value"),
                ("a".to_string(), "Provider Produced Inconsistent Result"),
                ("b".to_string(), "Provider Returned An Unknown Value"),
            ]
        );
    }

    #[test]
    fn typed_nulls_and_unknowns_in_dynamic_slots_are_seen_through() {
        let planned =
            Value::object([("d", Value::Dynamic(Type::String, Box::new(Value::Unknown)))]);
        let new = Value::object([("d", Value::Dynamic(Type::String, Box::new("filled".into())))]);
        let mut diags = Diagnostics::new();
        check_apply_result(&planned, &new, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        assert!(Value::Dynamic(Type::String, Box::new(Value::Null)).is_null());
    }
}
