//! Framed messages on QUIC streams.

use bytes::Bytes;
use quinn::{RecvStream, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_protocol::{FrameDecoder, FrameError, encode_frame};

/// Why reading a framed message failed.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The bytes are not a valid frame or message.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream or connection failed.
    #[error(transparent)]
    Read(#[from] quinn::ReadError),
}

/// A gated read failed: the stream, or the gate.
#[derive(Debug, thiserror::Error)]
pub enum Gated<E> {
    /// The stream or the frame.
    #[error(transparent)]
    Recv(#[from] RecvError),
    /// The gate refused the frame's first bytes.
    #[error("refused")]
    Refused(E),
}

/// Reads length-prefixed postcard frames from a receive stream. It reads the stream's
/// chunks as quinn holds them (no buffer of its own while idle: a connection that sends
/// nothing costs no read buffer).
#[derive(Debug)]
pub struct FramedRecv {
    stream: RecvStream,
    decoder: FrameDecoder,
}

/// The most bytes taken from the stream at once.
const READ_CHUNK: usize = 16 * 1024;

impl FramedRecv {
    /// Wraps a stream, accepting frame bodies up to `max_frame` bytes.
    pub fn new(stream: RecvStream, max_frame: usize) -> Self {
        FramedRecv {
            stream,
            decoder: FrameDecoder::new(max_frame),
        }
    }

    /// Changes the largest accepted frame body from the next frame on.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.decoder.set_max_frame(max_frame);
    }

    /// The next frame body; `None` when the stream ended cleanly between frames.
    pub async fn next_body(&mut self) -> Result<Option<Bytes>, RecvError> {
        loop {
            if let Some(body) = self.decoder.next_body()? {
                return Ok(Some(body));
            }
            // Stop reading as soon as a frame announces a size over the limit; otherwise read
            // a whole chunk, so the buffer never holds more than max_frame + READ_CHUNK.
            self.decoder.wanted()?;
            match self.stream.read_chunk(READ_CHUNK, true).await? {
                Some(chunk) => self.decoder.extend(&chunk.bytes),
                None => {
                    self.decoder.finish()?;
                    return Ok(None);
                }
            }
        }
    }

    /// The next frame body, where a frame longer than `small` must first pass `gate` on
    /// its first `head` bytes (at most `head` plus one read chunk of it is buffered before
    /// that); frames up to the decoder's limit are read once the gate passes. `None` when
    /// the stream ended cleanly between frames.
    pub async fn next_body_gated<E>(
        &mut self,
        small: usize,
        head: usize,
        mut gate: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Option<Bytes>, Gated<E>> {
        let mut passed = false;
        loop {
            if let Some(len) = self.decoder.peek_len().map_err(RecvError::from)?
                && len > small
                && !passed
            {
                let want = head.min(len);
                let have = self.decoder.body_head(want);
                if have.len() == want {
                    gate(have).map_err(Gated::Refused)?;
                    passed = true;
                    continue;
                }
            } else if let Some(body) = self.decoder.next_body().map_err(RecvError::from)? {
                return Ok(Some(body));
            }
            self.decoder.wanted().map_err(RecvError::from)?;
            match self
                .stream
                .read_chunk(READ_CHUNK, true)
                .await
                .map_err(RecvError::from)?
            {
                Some(chunk) => self.decoder.extend(&chunk.bytes),
                None => {
                    self.decoder.finish().map_err(RecvError::from)?;
                    return Ok(None);
                }
            }
        }
    }

    /// The next message; `None` when the stream ended cleanly between frames.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, RecvError> {
        match self.next_body().await? {
            None => Ok(None),
            Some(body) => Ok(Some(switchboard_protocol::decode_body(&body)?)),
        }
    }
}

/// Encodes and writes one message as a frame.
pub async fn send_frame<T: Serialize>(
    stream: &mut SendStream,
    msg: &T,
) -> Result<(), quinn::WriteError> {
    stream.write_chunk(encode_frame(msg)).await
}

/// How a queue's writer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterEnd {
    /// The queue closed and everything was written (and acknowledged, or the connection
    /// went away meanwhile).
    Finished,
    /// The stream or the connection failed.
    Failed,
    /// A write made no progress for the drain timeout: the peer does not read.
    Stalled,
}

/// Drains a queue of encoded frames into a stream, coalescing whatever is queued into one
/// write (quinn then packs small frames into few packets) and releasing their bytes from
/// the queue's budget once written. Ends when the queue closes (finishing the stream, and
/// waiting until the peer has acknowledged it or the connection is gone), when the stream
/// fails, or when one write cannot complete within `drain_timeout`. Callers bound the
/// final wait.
pub async fn write_queued(
    mut stream: SendStream,
    mut rx: crate::queue::OutRx<Bytes>,
    drain_timeout: std::time::Duration,
) -> WriterEnd {
    const BATCH: usize = 64;
    let mut frames = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut frames, BATCH).await > 0 {
        let n: usize = frames.iter().map(Bytes::len).sum();
        let write = tokio::time::timeout(drain_timeout, stream.write_all_chunks(&mut frames));
        let result = write.await;
        rx.budget().release(n);
        match result {
            Ok(Ok(())) => frames.clear(),
            Ok(Err(_)) => return WriterEnd::Failed,
            Err(_) => return WriterEnd::Stalled,
        }
    }
    let _ = stream.finish();
    let _ = stream.stopped().await;
    WriterEnd::Finished
}
