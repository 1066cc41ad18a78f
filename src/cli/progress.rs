//! How the CLI shows progress: the library's typed [`Progress`] values as
//! the docker CLI's `jsonmessage` display does.
//!
//! - Not on a terminal: plain `<id>: <status>` lines and the status lines
//!   (byte progress and aux messages are not printed).
//! - On a terminal: one indicatif bar per id (layer, or the tag being
//!   pulled), in order of first appearance, updated in place: its status
//!   (`Waiting`, `Verifying Checksum`, `Pull complete`, `Pushed`, …) or, for
//!   byte progress (`Downloading`, `Extracting`, `Pushing`), a
//!   `[=====>    ] 1.2 MB/3.4 MB` bar as wide as the terminal allows. Status lines without id are printed
//!   below the bars shown so far, which then stay as they are.
//!
//! Bars are drawn on stdout from the thread that owns the output handle
//! (the CLI's main future), so that the locked stdout handle is reentered,
//! never waited for.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use strata::distribution::Progress;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
pub enum Display {
    /// `-q`: nothing.
    Quiet,
    /// Plain lines (stdout is not a terminal).
    Plain,
    /// Progress bars.
    Bars(Bars),
}

impl Display {
    /// Bars when stdout is a terminal, plain lines otherwise.
    pub fn for_stdout(quiet: bool) -> Display {
        if quiet {
            Display::Quiet
        } else if std::io::stdout().is_terminal() {
            Display::Bars(Bars::default())
        } else {
            Display::Plain
        }
    }

    /// Show one message.
    pub fn show(&mut self, out: &mut dyn Write, p: Progress) {
        match self {
            Display::Quiet => {}
            Display::Plain => {
                if let Some(line) = p.plain_line() {
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
            Display::Bars(b) => b.show(out, p),
        }
    }

    /// Leave the bars as they are last drawn.
    pub fn finish(&mut self) {
        if let Display::Bars(b) = self {
            b.freeze();
        }
    }
}

/// The bars of the ids seen since the last status line.
#[derive(Default)]
pub struct Bars {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").expect("valid template")
}

fn bytes_style(total: u64) -> ProgressStyle {
    let template = if total > 0 {
        "{prefix}: {msg} [{wide_bar}] {decimal_bytes}/{decimal_total_bytes}"
    } else {
        "{prefix}: {msg} {decimal_bytes}"
    };
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}

impl Bars {
    fn bar(&mut self, id: &str) -> &ProgressBar {
        let multi = self
            .multi
            .get_or_insert_with(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        self.bars.entry(id.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(status_style());
            bar.set_prefix(id.to_string());
            bar
        })
    }

    fn show(&mut self, out: &mut dyn Write, p: Progress) {
        match p {
            Progress::Status(line) => {
                self.freeze();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Progress::Item { id, status } => {
                let bar = self.bar(&id);
                bar.set_message(status);
                bar.set_style(status_style());
            }
            Progress::Bytes {
                id,
                action,
                current,
                total,
            } => {
                let bar = self.bar(&id);
                bar.set_message(action);
                bar.set_length(total);
                bar.set_position(current);
                bar.set_style(bytes_style(total));
            }
            Progress::PushResult { .. } => {}
        }
    }

    /// Draw every bar a last time and let go of them: they stay on the
    /// terminal, and later output goes below them.
    fn freeze(&mut self) {
        let Some(multi) = self.multi.take() else {
            return;
        };
        for bar in self.bars.values() {
            bar.abandon();
        }
        self.bars.clear();
        drop(multi);
    }
}

/// A byte bar for reading `total` bytes (`strata load` on a terminal);
/// hidden when stdout is not a terminal or `quiet`.
pub fn load_bar(total: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stdout());
    let template = if total.is_some() {
        "Loading [{wide_bar}] {decimal_bytes}/{decimal_total_bytes}"
    } else {
        "Loading {decimal_bytes}"
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Run `fut` while a reader on another thread counts bytes into `count`,
/// moving `bar` to it from this thread (which may hold stdout locked).
pub async fn with_byte_bar<T>(
    bar: &ProgressBar,
    count: &std::sync::atomic::AtomicU64,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let res = loop {
        tokio::select! {
            res = &mut fut => break res,
            _ = tick.tick() => bar.set_position(count.load(std::sync::atomic::Ordering::Relaxed)),
        }
    };
    bar.set_position(count.load(std::sync::atomic::Ordering::Relaxed));
    if !bar.is_hidden() {
        bar.abandon();
    }
    res
}

/// A reader that adds what it reads to a shared counter.
pub struct CountingReader<R> {
    /// The reader counted.
    pub inner: R,
    /// Bytes read so far.
    pub count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}
