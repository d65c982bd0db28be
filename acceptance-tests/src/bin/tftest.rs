//! `terraform-provider-tftest`: the SDK's test provider (see `acceptance_tests::tftest`).

use std::process::ExitCode;

fn main() -> ExitCode {
    tfplugin::serve::main(
        acceptance_tests::tftest::TestProvider::default(),
        &tfplugin::serve::ServeConfig {
            address: acceptance_tests::tftest::ADDRESS,
            version: concat!("terraform-provider-tftest ", env!("CARGO_PKG_VERSION")),
        },
    )
}
