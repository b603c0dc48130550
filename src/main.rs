//! The `slocheck` binary: everything is in the library; `cli::main` maps the
//! outcome to a documented exit code.

/// mimalloc instead of glibc's malloc: every open-loop request spawns a
/// task, and glibc trimmed and re-grew its heap under that churn (page
/// faults and zeroing were a tenth of the generator's CPU at 5 000 rps).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    slocheck::cli::main()
}
