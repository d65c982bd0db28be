//! `drctl`: the state-aware helper of terraform-provider-dr (the command line is the library's).

fn main() -> std::process::ExitCode {
    drctl::main()
}
