//! `docs/index.md` is rendered from the provider's schema, `examples/provider/provider.tf` and
//! `examples/provider/storage.md`.
//! This test fails when the committed page is stale; `UPDATE_DOCS=1 cargo test -p
//! terraform-provider-dr --test docs` rewrites it.

use std::path::Path;
use terraform_provider_dr::DrProvider;
use tfplugin::Provider;

#[test]
fn provider_docs_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = std::fs::read_to_string(root.join("examples/provider/provider.tf")).unwrap();
    let storage = std::fs::read_to_string(root.join("examples/provider/storage.md")).unwrap();
    let ephemeral =
        std::fs::read_to_string(root.join("examples/provider/ephemeral-passphrase.tf")).unwrap();
    let schema = DrProvider::default().schema();
    let page = format!(
        "---\npage_title: \"dr Provider\"\ndescription: |-\n  {desc}\n---\n\n# dr Provider\n\n{desc}\n\n\
         Every secret (the passphrase, cloud credentials) stays out of the Terraform state: the passphrase is marked \
         sensitive and falls back to `DR_PASSPHRASE`; credentials come only from the environment.\n\n\
         ## Example Usage\n\n```terraform\n{example}```\n\n\
         With Terraform 1.10 or newer the passphrase can come from an ephemeral variable, which \
         stays out of saved plans and the state:\n\n```terraform\n{ephemeral}```\n\n{storage}{schema}\n\
         <!-- Generated from the provider schema by provider/tests/docs.rs; do not edit by hand. -->\n",
        desc = schema.block.description,
        schema = tfplugin::docs::schema_markdown(&schema.block),
    );
    let path = root.join("docs/index.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == page, "docs/index.md is stale: run `UPDATE_DOCS=1 cargo test -p terraform-provider-dr --test docs`");
}

/// `docs/resources/<name>.md` and `docs/data-sources/<name>.md`: the schema's descriptions,
/// with the example (and import command) from `examples/`.
#[test]
fn resource_and_data_source_docs_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let provider = DrProvider::default();
    let mut pages = Vec::new();
    for r in provider.resources() {
        let name = r.type_name();
        let dir = root.join("examples/resources").join(name);
        pages.push((
            root.join(format!("docs/resources/{}.md", &name[3..])),
            page(
                name,
                "Resource",
                &r.schema(),
                &dir.join("resource.tf"),
                Some(&dir.join("import.sh")),
            )
            // Import by identity belongs to the Import section, before the generated-by line.
            .replacen(
                "\n<!-- Generated",
                &format!(
                    "{}\n<!-- Generated",
                    r.identity_schema()
                        .map(|identity| tfplugin::docs::identity_markdown(name, &identity))
                        .unwrap_or_default()
                ),
                1,
            ),
        ));
    }
    for d in provider.data_sources() {
        let name = d.type_name();
        let dir = root.join("examples/data-sources").join(name);
        pages.push((
            root.join(format!("docs/data-sources/{}.md", &name[3..])),
            page(
                name,
                "Data Source",
                &d.schema(),
                &dir.join("data-source.tf"),
                None,
            ),
        ));
    }
    for e in provider.ephemeral_resources() {
        let name = e.type_name();
        let dir = root.join("examples/ephemeral-resources").join(name);
        pages.push((
            root.join(format!("docs/ephemeral-resources/{}.md", &name[3..])),
            page(
                name,
                "Ephemeral Resource",
                &e.schema(),
                &dir.join("ephemeral-resource.tf"),
                None,
            ),
        ));
    }
    for l in provider.list_resources() {
        let name = l.type_name();
        let dir = root.join("examples/list-resources").join(name);
        pages.push((
            root.join(format!("docs/list-resources/{}.md", &name[3..])),
            page(
                name,
                "List Resource",
                &l.schema(),
                &dir.join("list.tfquery.hcl"),
                None,
            ),
        ));
    }
    for a in provider.actions() {
        let name = a.type_name();
        let dir = root.join("examples/actions").join(name);
        pages.push((
            root.join(format!("docs/actions/{}.md", &name[3..])),
            page(name, "Action", &a.schema(), &dir.join("action.tf"), None),
        ));
    }
    let mut stale = Vec::new();
    for (path, text) in pages {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        if std::fs::read_to_string(&path).unwrap_or_default() != text {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale docs {stale:?}: run `UPDATE_DOCS=1 cargo test -p terraform-provider-dr --test docs`"
    );
}

fn page(
    name: &str,
    kind: &str,
    schema: &tfplugin::Schema,
    example: &Path,
    import: Option<&Path>,
) -> String {
    let example = std::fs::read_to_string(example).unwrap_or_else(|_| {
        panic!(
            "{} is missing: every {kind} needs an example",
            example.display()
        )
    });
    let mut text = format!(
        "---\npage_title: \"{name} {kind} - dr\"\ndescription: |-\n  {desc}\n---\n\n# {name} ({kind})\n\n{desc}\n\n\
         ## Example Usage\n\n```terraform\n{example}```\n\n{schema}",
        desc = schema.block.description,
        schema = tfplugin::docs::schema_markdown(&schema.block),
    );
    if let Some(import) = import {
        let script = std::fs::read_to_string(import).unwrap_or_default();
        text.push_str(&format!("\n## Import\n\n```shell\n{script}```\n"));
        // Import blocks for every resource type live beside the vault's example.
        let blocks = import.with_file_name("import-block.tf");
        if let Ok(blocks) = std::fs::read_to_string(blocks) {
            text.push_str(&format!("\n```terraform\n{blocks}```\n"));
        }
    }
    text.push_str("\n<!-- Generated from the provider schema by provider/tests/docs.rs; do not edit by hand. -->\n");
    text
}

/// `docs/functions/<name>.md`: each function's summary, description, signature and arguments,
/// from its declaration, and its example (`examples/functions/<name>/function.tf`).
#[test]
fn function_docs_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stale = Vec::new();
    for f in DrProvider::default().functions() {
        let name = f.name();
        let signature = f.signature();
        let example = root.join(format!("examples/functions/{name}/function.tf"));
        let example = std::fs::read_to_string(&example).unwrap_or_else(|_| {
            panic!(
                "{} is missing: every function needs an example",
                example.display()
            )
        });
        let text = format!(
            "---\npage_title: \"{name} function - dr\"\nsubcategory: \"\"\ndescription: |-\n  {summary}\n---\n\n\
             # function: {name}\n\n{summary}. Needs Terraform 1.8 or newer; call it as \
             `provider::dr::{name}(…)`.\n\n{description}\n\n## Example Usage\n\n```terraform\n{example}```\n\n{body}\n\
             <!-- Generated from the function's declaration by provider/tests/docs.rs; do not edit by hand. -->\n",
            summary = signature.summary,
            description = signature.description,
            body = tfplugin::docs::function_markdown(name, &signature),
        );
        let path = root.join(format!("docs/functions/{name}.md"));
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        if std::fs::read_to_string(&path).unwrap_or_default() != text {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale docs {stale:?}: run `UPDATE_DOCS=1 cargo test -p terraform-provider-dr --test docs`"
    );
}
