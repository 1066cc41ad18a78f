//! The gzip stream a pushed layer is uploaded as.
//!
//! A registry blob's bytes are the pusher's choice (its digest is computed
//! here), so this encoder picks them for speed on both ends. The layer is
//! cut into 512 KiB chunks and each chunk is deflated on its own, ending on a
//! byte boundary with a sync flush, as pigz does; a chunk whose samples do
//! not shrink (already compressed or random data) is written as stored
//! blocks instead of being Huffman-coded. Stored blocks cost a copy to write
//! and a copy to read, where Huffman-coding incompressible bytes costs the
//! pusher the whole deflate and every puller a full inflate, for no gain in
//! size. The result is one ordinary gzip member that any gzip reader
//! (Go's `compress/gzip` in dockerd, zlib, flate2) reads.
//!
//! ```text
//! header | chunk 1 blocks | chunk 2 blocks | ... | final empty stored block | CRC32 | ISIZE
//! ```

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input bytes per independently deflated chunk (pigz uses 128 KiB; the
/// deflate window is 32 KiB, so little is lost at the seams).
pub(crate) const CHUNK: usize = 512 * 1024;

/// Bytes of each of the three samples the compressibility test deflates.
const SAMPLE: usize = 4 * 1024;

/// The gzip header dockerd's Go encoder writes: no name, no mtime, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A streaming gzip encoder over whole chunks. Feed it with
/// [`ChunkedGzip::write`], take what it produced with
/// [`ChunkedGzip::take_output`], and end with [`ChunkedGzip::finish`].
///
/// ```ignore
/// let mut gz = ChunkedGzip::new();
/// gz.write(b"hello");
/// gz.finish();
/// let bytes = gz.take_output();
/// ```
pub(crate) struct ChunkedGzip {
    out: Vec<u8>,
    pending: Vec<u8>,
    crc: Crc,
    deflate: Compress,
    finished: bool,
}

impl ChunkedGzip {
    /// An encoder with the gzip header already in its output.
    pub(crate) fn new() -> ChunkedGzip {
        ChunkedGzip {
            out: HEADER.to_vec(),
            pending: Vec::with_capacity(CHUNK),
            crc: Crc::new(),
            deflate: Compress::new(Compression::fast(), false),
            finished: false,
        }
    }

    /// Add `data`; every full chunk is encoded at once.
    pub(crate) fn write(&mut self, mut data: &[u8]) {
        debug_assert!(!self.finished, "write after finish");
        self.crc.update(data);
        while !data.is_empty() {
            if self.pending.is_empty() && data.len() >= CHUNK {
                let (chunk, rest) = data.split_at(CHUNK);
                self.encode(chunk);
                data = rest;
                continue;
            }
            let n = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.pending.len() == CHUNK {
                let chunk = std::mem::take(&mut self.pending);
                self.encode(&chunk);
                self.pending = chunk;
                self.pending.clear();
            }
        }
    }

    /// Encode what is left, then the end of the deflate stream and the
    /// gzip trailer (CRC32 and length mod 2^32 of the input).
    pub(crate) fn finish(&mut self) {
        if self.finished {
            return;
        }
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.encode(&rest);
        }
        // An empty stored block with BFINAL set.
        self.out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
        self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
        self.out.extend_from_slice(&self.crc.amount().to_le_bytes());
        self.finished = true;
    }

    /// The bytes produced so far (and not taken before).
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// One chunk as byte-aligned, non-final deflate blocks.
    fn encode(&mut self, chunk: &[u8]) {
        if self.shrinks(chunk) {
            self.deflate.reset();
            deflate_all(&mut self.deflate, chunk, &mut self.out, FlushCompress::Sync);
        } else {
            stored_blocks(chunk, &mut self.out);
        }
    }

    /// Whether deflate makes the chunk smaller: three samples (start,
    /// middle, end) must shrink to under 97% together.
    fn shrinks(&mut self, chunk: &[u8]) -> bool {
        if chunk.len() <= 3 * SAMPLE {
            return true;
        }
        let starts = [0, chunk.len() / 2 - SAMPLE / 2, chunk.len() - SAMPLE];
        let mut scratch = Vec::with_capacity(2 * SAMPLE);
        let mut compressed = 0;
        for s in starts {
            self.deflate.reset();
            scratch.clear();
            deflate_all(
                &mut self.deflate,
                &chunk[s..s + SAMPLE],
                &mut scratch,
                FlushCompress::Finish,
            );
            compressed += scratch.len();
        }
        compressed * 100 < 3 * SAMPLE * 97
    }
}

/// Deflate all of `input` into `out` with `flush` at the end.
fn deflate_all(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) {
    loop {
        out.reserve(input.len() / 2 + 1024);
        let before = c.total_in();
        let status = c
            .compress_vec(input, out, flush)
            .expect("deflate of in-memory bytes cannot fail");
        input = &input[(c.total_in() - before) as usize..];
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // A sync flush is complete once the input is used up and the
            // output had room to spare (nothing left inside the encoder).
            _ => input.is_empty() && out.len() < out.capacity(),
        };
        if done {
            return;
        }
    }
}

/// `data` as non-final stored blocks (at most 65,535 bytes each), starting
/// and ending byte-aligned.
fn stored_blocks(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + data.len() / 65_535 * 5 + 5);
    for block in data.chunks(65_535) {
        let len = block.len() as u16;
        out.push(0x00); // BFINAL 0, BTYPE 00, padding to the byte
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut d = flate2::read::GzDecoder::new(bytes);
        d.read_to_end(&mut out).expect("valid gzip");
        // One member, nothing after it.
        assert!(d.into_inner().is_empty(), "trailing bytes after the member");
        out
    }

    fn encode(data: &[u8], pieces: usize) -> Vec<u8> {
        let mut gz = ChunkedGzip::new();
        let mut out = Vec::new();
        let step = data.len() / pieces.max(1) + 1;
        for piece in data.chunks(step) {
            gz.write(piece);
            out.extend(gz.take_output());
        }
        gz.finish();
        out.extend(gz.take_output());
        out
    }

    /// Deterministic incompressible bytes.
    fn noise(n: usize, mut seed: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_and_stores_only_what_cannot_shrink() {
        let text: Vec<u8> = b"usr/lib/libexample.so.1 -> libexample.so.1.2.3\n"
            .repeat(3 * CHUNK / 40)
            .into_iter()
            .take(3 * CHUNK + 17)
            .collect();
        let random = noise(2 * CHUNK + 5, 7);
        let mut mixed = text[..CHUNK].to_vec();
        mixed.extend_from_slice(&random[..CHUNK]);
        mixed.extend_from_slice(&text[..1000]);
        for (name, data) in [
            ("empty", Vec::new()),
            ("tiny", b"x".to_vec()),
            ("text", text.clone()),
            ("random", random.clone()),
            ("mixed", mixed.clone()),
        ] {
            for pieces in [1, 3, 1000] {
                let gz = encode(&data, pieces);
                assert_eq!(gunzip(&gz), data, "{name} in {pieces} pieces");
            }
        }
        // Text shrinks a lot; random data grows by its block headers only.
        assert!(encode(&text, 1).len() < text.len() / 10);
        let r = encode(&random, 1).len();
        assert!(
            r > random.len() && r < random.len() + random.len() / 1000,
            "{r}"
        );
        // The mixed stream: the random chunk stored, the text compressed.
        let m = encode(&mixed, 1).len();
        assert!(m < CHUNK + CHUNK / 5, "{m}");
    }

    #[test]
    fn the_system_gzip_reads_it() {
        let data = [noise(CHUNK + 3, 9), b"abc".repeat(100_000)].concat();
        let gz = encode(&data, 7);
        let mut child = std::process::Command::new("gzip")
            .args(["-dc"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&gz).unwrap();
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }
}
