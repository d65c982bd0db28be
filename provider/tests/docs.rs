//! `docs/index.md` is rendered from the provider's schema and `examples/provider/provider.tf`.
//! This test fails when the committed page is stale; `UPDATE_DOCS=1 cargo test -p
//! terraform-provider-dr --test docs` rewrites it.

use std::path::Path;
use terraform_provider_dr::DrProvider;
use tfplugin::Provider;

#[test]
fn provider_docs_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = std::fs::read_to_string(root.join("examples/provider/provider.tf")).unwrap();
    let schema = DrProvider::default().schema();
    let page = format!(
        "---\npage_title: \"dr Provider\"\ndescription: |-\n  {desc}\n---\n\n# dr Provider\n\n{desc}\n\n\
         Every secret (the passphrase, cloud credentials) stays out of the Terraform state: the passphrase is marked \
         sensitive and falls back to `DR_PASSPHRASE`; credentials come only from the environment.\n\n\
         ## Example Usage\n\n```terraform\n{example}```\n\n{schema}\n\
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
