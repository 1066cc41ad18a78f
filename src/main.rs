//! The `strata` command: Docker's image commands on a strata store.

mod cli;

/// mimalloc instead of glibc's malloc: its per-thread heaps free a block
/// another thread allocated without taking a lock. Replaying the log hands
/// every decoded event from the reading thread to the folding one, and with
/// glibc's arenas a third of that time went to futex waits on arena locks
/// (verify replay of 1M events: 264,000 -> 720,000 events/s). Built with
/// `no_thp`: with transparent huge pages, `strata serve` held 53-62 MiB at
/// its peak while loading W-big, against 27-32 MiB without.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
