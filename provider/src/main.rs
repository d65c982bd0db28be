//! `terraform-provider-dr`: started by Terraform, never by hand (run with `--help` to see why
//! and `--debug` to attach a Terraform run to a long-lived process).

use std::process::ExitCode;

fn main() -> ExitCode {
    tfplugin::serve::main(
        terraform_provider_dr::DrProvider::default(),
        &tfplugin::serve::ServeConfig {
            address: terraform_provider_dr::PROVIDER_ADDRESS,
            version: concat!("terraform-provider-dr ", env!("CARGO_PKG_VERSION")),
        },
    )
}
