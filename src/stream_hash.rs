//! A sha256 of a byte stream that moves to a thread of its own once the
//! stream is large.
//!
//! Writing a blob costs a copy of every byte into the page cache and a
//! sha256 of every byte; on one thread the two add up. [`StreamHasher`]
//! hashes the first [`OFF_THREAD_AFTER`] bytes in place (small blobs never
//! pay for a thread) and then hands the rest, in batches, to a helper
//! thread, so that the writer's copies and the hashing overlap on two
//! cores. The digest is the same either way; asking for it waits for the
//! helper to catch up.

use crate::digest::Hasher;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes hashed in place before the helper thread takes over.
pub(crate) const OFF_THREAD_AFTER: u64 = 8 << 20;

/// Bytes per batch handed to the helper.
const BATCH: usize = 256 * 1024;

/// Batches in flight at most (bounds the memory to `BATCHES * BATCH`).
/// The helper hands each hashed batch back to be filled again, so a
/// stream allocates at most `BATCHES + 1` batches and never frees one on
/// the other thread (which the allocator would hold on to for a while).
const BATCHES: usize = 8;
/// A batch's capacity: room for one more write of up to half a batch.
const BATCH_CAPACITY: usize = BATCH + BATCH / 2;

/// A sha256 (with length) of everything passed to [`StreamHasher::update`].
///
/// ```ignore
/// let mut h = StreamHasher::new();
/// h.update(b"abc");
/// assert_eq!(h.digest(), crate::digest::sha256_digest(b"abc"));
/// ```
pub(crate) struct StreamHasher {
    state: State,
    len: u64,
}

enum State {
    Here(Hasher),
    Away {
        batch: Vec<u8>,
        tx: SyncSender<Vec<u8>>,
        /// Hashed batches, emptied, to fill again.
        spare: Receiver<Vec<u8>>,
        worker: JoinHandle<Hasher>,
    },
    /// Only while switching between the two.
    Switching,
}

impl StreamHasher {
    /// Nothing hashed yet.
    pub(crate) fn new() -> StreamHasher {
        StreamHasher {
            state: State::Here(Hasher::new()),
            len: 0,
        }
    }

    /// Feed bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        match &mut self.state {
            State::Here(h) => {
                h.update(bytes);
                if self.len >= OFF_THREAD_AFTER {
                    self.go_away();
                }
            }
            State::Away {
                batch, tx, spare, ..
            } => {
                batch.extend_from_slice(bytes);
                if batch.len() >= BATCH {
                    let next = spare
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH_CAPACITY));
                    let full = std::mem::replace(batch, next);
                    // A helper that is gone panicked; joining it says so.
                    let _ = tx.send(full);
                }
            }
            State::Switching => unreachable!("StreamHasher used while switching"),
        }
    }

    /// Bytes fed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `sha256:<hex>` digest of everything fed so far (feeding may go on).
    pub(crate) fn digest(&mut self) -> String {
        self.bring_back().clone().finish()
    }

    /// Hand the hashing to a helper thread (or stay here if none can start).
    fn go_away(&mut self) {
        let State::Here(h) = std::mem::replace(&mut self.state, State::Switching) else {
            unreachable!("go_away from a state other than Here");
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(BATCHES);
        let (back, spare) = sync_channel::<Vec<u8>>(BATCHES);
        // The helper continues from a copy of the state, so that `h` stays
        // here if no thread can start.
        let mut away = h.clone();
        let spawned = std::thread::Builder::new()
            .name("strata-hash".into())
            .spawn(move || {
                for mut b in rx {
                    away.update(&b);
                    b.clear();
                    // Dropped here only if the writer is gone.
                    let _ = back.try_send(b);
                }
                away
            });
        self.state = match spawned {
            Ok(worker) => State::Away {
                batch: Vec::with_capacity(BATCH_CAPACITY),
                tx,
                spare,
                worker,
            },
            Err(_) => State::Here(h),
        };
    }

    /// The hasher, back on this thread with everything fed so far.
    fn bring_back(&mut self) -> &mut Hasher {
        if let State::Away { .. } = self.state {
            let State::Away {
                batch, tx, worker, ..
            } = std::mem::replace(&mut self.state, State::Switching)
            else {
                unreachable!()
            };
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            drop(tx);
            let h = worker
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            self.state = State::Here(h);
        }
        match &mut self.state {
            State::Here(h) => h,
            _ => unreachable!("bring_back leaves the hasher here"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_digest;

    #[test]
    fn same_digest_in_place_and_on_the_helper() {
        let data: Vec<u8> = (0..(OFF_THREAD_AFTER as usize * 2 + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for piece in [1usize, 7, 8192, 1 << 20, data.len()] {
            let mut h = StreamHasher::new();
            let mut fed = 0;
            for chunk in data.chunks(piece.min(data.len()).max(1)).take(4096) {
                h.update(chunk);
                fed += chunk.len();
            }
            for chunk in data[fed..].chunks(1 << 20) {
                h.update(chunk);
            }
            assert_eq!(h.len(), data.len() as u64);
            assert_eq!(h.digest(), sha256_digest(&data), "pieces of {piece}");
            // Asking mid-stream and going on still gives the whole digest.
            h.update(b"more");
            let mut all = data.clone();
            all.extend_from_slice(b"more");
            assert_eq!(h.digest(), sha256_digest(&all));
        }
        let mut small = StreamHasher::new();
        assert!(small.is_empty());
        small.update(b"abc");
        assert_eq!(small.digest(), sha256_digest(b"abc"));
    }
}
