//! The `strata` command: Docker's image commands on a strata store.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
