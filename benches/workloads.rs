//! Not a benchmark: writes the workloads of `benches/vs-dockerd.sh`
//! deterministically. `cargo bench --bench workloads -- OUTDIR BIG_MIB FILES MANY`
//! writes OUTDIR/{wbig.tar, wbig-gz.tar (+ wbig-gz.tar.layers/*.tar.gz),
//! wmany.tar, wdangling.tar, wfiles.tar}; a file already present (with its
//! `.complete` marker for the same sizes) is kept.

mod common;

use common::*;
use std::path::Path;

/// Write `out` with `make` unless it is there with the marker of the same
/// sizes (`key`). The markers of other sizes are removed first: `out` is
/// about to be replaced, and a marker left behind would vouch for it.
fn once(out: &Path, key: &str, make: impl FnOnce(&Path)) {
    let marker = out.with_extension(format!("{key}.complete"));
    if marker.exists() && out.exists() {
        eprintln!("kept {}", out.display());
        return;
    }
    let stem = out.with_extension("");
    let prefix = format!("{}.", stem.file_name().unwrap().to_string_lossy());
    for entry in std::fs::read_dir(out.parent().unwrap()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".complete") {
            std::fs::remove_file(out.with_file_name(&name)).unwrap();
        }
    }
    let t = std::time::Instant::now();
    make(out);
    std::fs::write(&marker, b"").unwrap();
    eprintln!("wrote {} in {:.1?}", out.display(), t.elapsed());
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [dir, big_mib, files, many] = &args[..] else {
        panic!("usage: workloads OUTDIR BIG_MIB FILES MANY (got {args:?})");
    };
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir).unwrap();
    let big: u64 = big_mib.parse::<u64>().unwrap() << 20;
    let files: usize = files.parse().unwrap();
    let many: usize = many.parse().unwrap();
    once(&dir.join("wbig.tar"), &format!("b{big}"), |p| {
        big_archive(p, big, 8, false, "wbig/img:latest");
    });
    once(&dir.join("wbig-gz.tar"), &format!("b{big}"), |p| {
        big_archive(p, big, 8, true, "wbiggz/img:latest");
    });
    once(&dir.join("wmany.tar"), &format!("m{many}"), |p| {
        let imgs = many_images(many, true, "w");
        let refs: Vec<&Img> = imgs.iter().collect();
        write_archive(
            &refs,
            std::io::BufWriter::new(std::fs::File::create(p).unwrap()),
        );
    });
    once(&dir.join("wdangling.tar"), &format!("m{many}"), |p| {
        let imgs = many_images(many, false, "d");
        let refs: Vec<&Img> = imgs.iter().collect();
        write_archive(
            &refs,
            std::io::BufWriter::new(std::fs::File::create(p).unwrap()),
        );
    });
    once(&dir.join("wfiles.tar"), &format!("f{files}"), |p| {
        files_archive(p, files)
    });
}
