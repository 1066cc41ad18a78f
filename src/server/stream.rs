//! Bridges between hyper's async bodies and the library's blocking
//! `Read`/`Write` interfaces, and streamed response bodies.

use super::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use std::convert::Infallible;
use std::io::{self, Read, Write};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// Chunks a writer collects before handing them to the response.
const CHUNK: usize = 64 << 10;

/// A streamed response body fed by `rx`.
pub fn channel_body(rx: mpsc::Receiver<Bytes>) -> Body {
    let s = ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    BodyExt::boxed(StreamBody::new(s))
}

/// A blocking writer whose bytes go, in chunks, to a response body.
/// Fails with `BrokenPipe` once the client is gone.
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    /// A writer sending into `tx`.
    pub fn new(tx: mpsc::Sender<Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// A blocking reader over a request body: a task pulls the body's frames
/// into a small bounded channel, so at most a few chunks are in memory.
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    /// A body error met while filling a read; returned by the next one.
    pending: Option<io::Error>,
    done: bool,
}

impl BodyReader {
    /// Start pumping `body`.
    pub fn spawn(mut body: Incoming) -> BodyReader {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
        tokio::spawn(async move {
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Ok(data) = f.into_data()
                            && !data.is_empty()
                            && tx.send(Ok(data)).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("reading request body: {e}"),
                            )))
                            .await;
                        return;
                    }
                }
            }
        });
        BodyReader::new(rx)
    }

    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> BodyReader {
        BodyReader {
            rx,
            cur: Bytes::new(),
            pending: None,
            done: false,
        }
    }
}

impl Read for BodyReader {
    /// Blocks for the first frame only, then also takes the frames already
    /// queued, up to `out.len()`: the loader writes what one read returns,
    /// and a client's 32 KiB chunks cut by tar entries would otherwise
    /// become twice as many small writes.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => self.done = true,
            }
        }
        let mut n = 0;
        loop {
            let k = (out.len() - n).min(self.cur.len());
            out[n..n + k].copy_from_slice(&self.cur[..k]);
            let _ = self.cur.split_to(k);
            n += k;
            if n == out.len() {
                return Ok(n);
            }
            match self.rx.try_recv() {
                Ok(Ok(b)) => self.cur = b,
                // An error is reported by the next read, after these bytes.
                Ok(Err(e)) => {
                    self.pending = Some(e);
                    return Ok(n);
                }
                Err(mpsc::error::TryRecvError::Empty) => return Ok(n),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.done = true;
                    return Ok(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(frames: Vec<io::Result<&'static [u8]>>) -> BodyReader {
        let (tx, rx) = mpsc::channel(frames.len().max(1));
        for f in frames {
            tx.try_send(f.map(Bytes::from_static)).unwrap();
        }
        BodyReader::new(rx)
    }

    #[test]
    fn a_read_takes_every_queued_frame_it_has_room_for() {
        let mut r = reader(vec![Ok(b"abc"), Ok(b"defg"), Ok(b"hi")]);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 8);
        assert_eq!(&buf, b"abcdefgh");
        assert_eq!(r.read(&mut buf).unwrap(), 1);
        assert_eq!(&buf[..1], b"i");
        assert_eq!(r.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn a_body_error_comes_after_the_bytes_before_it() {
        let mut r = reader(vec![
            Ok(b"abc"),
            Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut")),
            Ok(b"never"),
        ]);
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        assert_eq!(r.read(&mut buf).unwrap_err().to_string(), "cut");
    }

    #[test]
    fn small_reads_walk_through_frames() {
        let mut r = reader(vec![Ok(b"abc"), Ok(b"de")]);
        let mut out = Vec::new();
        let mut buf = [0u8; 2];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, b"abcde");
    }
}
