//! Markdown for the Terraform registry's docs layout, rendered from a schema so the docs can
//! never disagree with what the provider serves.

use crate::schema::{AttrKind, Attribute, Block, Nesting, PlanModifier};
use std::fmt::Write as _;

/// The "Schema" section of a registry page: required, optional and read-only attributes,
/// then each nested block with its own attributes.
pub fn schema_markdown(block: &Block) -> String {
    let mut out = String::from("## Schema\n");
    render_block(block, "", &mut out);
    out
}

/// Picks the attributes of one section.
type AttributeFilter = fn(&Attribute) -> bool;

fn render_block(block: &Block, anchor: &str, out: &mut String) {
    let groups: [(&str, AttributeFilter); 3] = [
        ("Required", |a| a.kind.is_required()),
        ("Optional", |a| a.kind.is_optional()),
        ("Read-Only", |a| a.kind == AttrKind::Computed),
    ];
    for (title, belongs) in groups {
        let attrs: Vec<&Attribute> = block.attributes.iter().filter(|a| belongs(a)).collect();
        let blocks: Vec<_> = block
            .blocks
            .iter()
            .filter(|b| match title {
                "Required" => b.min_items > 0,
                "Optional" => b.min_items == 0,
                _ => false,
            })
            .collect();
        if attrs.is_empty() && blocks.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\n### {title}{}\n\n",
            if anchor.is_empty() {
                String::new()
            } else {
                format!(" (`{anchor}`)")
            }
        );
        for a in attrs {
            let mut traits = vec![a.ty.to_string()];
            if a.sensitive {
                traits.push("sensitive".into());
            }
            if a.write_only {
                traits.push("write-only: never stored, needs Terraform 1.11+".into());
            }
            if let Some(d) = &a.default {
                traits.push(format!("default `{}`", default_text(d)));
            }
            for m in &a.modifiers {
                match m {
                    PlanModifier::RequiresReplace => traits.push("forces replacement".into()),
                    PlanModifier::RequiresReplaceIf { why, .. } => {
                        traits.push(format!("forces replacement {why}"))
                    }
                    PlanModifier::UseStateForUnknown => {}
                }
            }
            let _ = writeln!(
                out,
                "- `{}` ({}) {}",
                a.name,
                traits.join(", "),
                a.description
            );
        }
        for b in blocks {
            let nesting = match b.nesting {
                Nesting::Single => "block, at most one".to_string(),
                Nesting::Group => "block, always present".to_string(),
                Nesting::List | Nesting::Set if b.max_items > 0 => {
                    format!("blocks, at most {}", b.max_items)
                }
                Nesting::List | Nesting::Set => "blocks".to_string(),
                Nesting::Map => "labelled blocks".to_string(),
            };
            let _ = writeln!(
                out,
                "- `{}` ({nesting}) {} See [below](#nested-schema-for-{}).",
                b.type_name, b.block.description, b.type_name
            );
        }
    }
    for b in &block.blocks {
        let _ = write!(
            out,
            "\n<a id=\"nested-schema-for-{0}\"></a>\n### Nested schema for `{0}`\n",
            b.type_name
        );
        render_block(&b.block, &b.type_name, out);
    }
}

fn default_text(v: &crate::value::Value) -> String {
    match v {
        crate::value::Value::String(s) => format!("{s:?}"),
        crate::value::Value::Bool(b) => b.to_string(),
        crate::value::Value::Number(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// The "Signature" and "Arguments" sections of a provider function's registry page.
pub fn function_markdown(name: &str, signature: &crate::function::Signature) -> String {
    let params: Vec<String> = signature
        .params
        .iter()
        .map(|p| format!("{} {}", p.name, type_name_of(&p.ty)))
        .collect();
    let mut out = format!(
        "## Signature\n\n```text\n{name}({}) {}\n```\n\n## Arguments\n\n",
        params.join(", "),
        type_name_of(&signature.returns)
    );
    for (i, p) in signature.params.iter().enumerate() {
        let null = if p.allow_null { ", may be null" } else { "" };
        let _ = writeln!(
            out,
            "{}. `{}` ({}{null}) {}",
            i + 1,
            p.name,
            type_name_of(&p.ty),
            p.description
        );
    }
    out
}

/// The "Import by identity" part of a resource's registry page (Terraform 1.12+): an import
/// block with the identity's attributes, and what each holds.
pub fn identity_markdown(type_name: &str, identity: &crate::identity::IdentitySchema) -> String {
    let mut out = format!(
        "\nWith Terraform 1.12 or newer, by identity:\n\n```terraform\nimport {{\n  to = {type_name}.example\n  identity = {{\n"
    );
    for a in &identity.attributes {
        let _ = writeln!(out, "    {} = \"…\"", a.name);
    }
    out.push_str("  }\n}\n```\n\n");
    for a in &identity.attributes {
        let need = if a.required_for_import {
            "required"
        } else {
            "optional"
        };
        let _ = writeln!(
            out,
            "- `{}` ({}, {need}) {}",
            a.name,
            type_name_of(&a.ty),
            a.description
        );
    }
    out
}

/// A type as Terraform writes it in a constraint (`string`, `list(number)`, `object({…})`).
fn type_name_of(ty: &crate::value::Type) -> String {
    use crate::value::Type;
    match ty {
        Type::String => "string".into(),
        Type::Number => "number".into(),
        Type::Bool => "bool".into(),
        Type::Dynamic => "any".into(),
        Type::List(e) => format!("list({})", type_name_of(e)),
        Type::Set(e) => format!("set({})", type_name_of(e)),
        Type::Map(e) => format!("map({})", type_name_of(e)),
        Type::Tuple(es) => format!(
            "tuple([{}])",
            es.iter().map(type_name_of).collect::<Vec<_>>().join(", ")
        ),
        Type::Object(attrs) => format!(
            "object({{{}}})",
            attrs
                .iter()
                .map(|(k, t)| format!("{k} = {}", type_name_of(t)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::NestedBlock;
    use crate::value::Type;

    #[test]
    fn groups_attributes_and_documents_nested_blocks() {
        let block = Block::new(vec![
            Attribute::required("name", Type::String)
                .requires_replace()
                .description("The name."),
            Attribute::optional("token", Type::String)
                .sensitive()
                .description("A token."),
            Attribute::computed("id", Type::String).description("The id."),
        ])
        .with_blocks(vec![NestedBlock::new(
            "rule",
            Nesting::List,
            Block::new(vec![Attribute::required("action", Type::String)]),
        )
        .max_items(2)]);
        let md = schema_markdown(&block);
        assert!(
            md.contains("### Required\n\n- `name` (string, forces replacement) The name."),
            "{md}"
        );
        assert!(
            md.contains("- `token` (string, sensitive) A token."),
            "{md}"
        );
        assert!(
            md.contains("### Read-Only\n\n- `id` (string) The id."),
            "{md}"
        );
        assert!(md.contains("- `rule` (blocks, at most 2)"), "{md}");
        assert!(
            md.contains("### Required (`rule`)\n\n- `action` (string)"),
            "{md}"
        );
    }
}
