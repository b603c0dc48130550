//! The `slocheck` binary: everything is in the library; `cli::main` maps the
//! outcome to a documented exit code.

fn main() -> std::process::ExitCode {
    slocheck::cli::main()
}
