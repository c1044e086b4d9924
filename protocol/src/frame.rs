//! Stream framing: every message on a QUIC stream is a frame
//! `length: u32 little-endian` followed by `length` bytes of postcard-encoded body.
//!
//! The decoder is sans-IO: feed it whatever bytes arrived and ask for the next message.
//! "Not enough bytes yet" is `Ok(None)`, never an error. The length is checked against the
//! maximum as soon as the four header bytes are there, *before* any of the body is
//! buffered, so a peer cannot make us hold more than `max_frame` bytes per stream.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;
/// Default largest frame body accepted (512 KiB, Photon's message limit).
pub const DEFAULT_MAX_FRAME: usize = 512 * 1024;
/// Largest frame body from a client that has not authenticated yet (master: `Hello` and
/// `Authenticate`, whose token may be a few KiB) or not joined a room yet (game server:
/// larger `CreateGame`/`JoinGame` frames must show a valid ticket in their first bytes,
/// see `messages::game::peek_ticket`).
pub const PRE_AUTH_MAX_FRAME: usize = 8 * 1024;

/// Why a frame was rejected. Any of these closes the connection that sent it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix announces more than the maximum frame size.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced body length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The body does not decode as the expected message.
    #[error("malformed frame body: {0}")]
    Malformed(String),
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes that were buffered when the stream ended.
        buffered: usize,
    },
}

/// Encodes one message as a complete frame (header and body).
pub fn encode_frame<T: Serialize>(msg: &T) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_u32_le(0);
    let mut writer = buf.writer();
    postcard::to_io(msg, &mut writer).expect("encoding into memory cannot fail");
    let mut buf = writer.into_inner();
    let len = u32::try_from(buf.len() - HEADER_LEN).expect("frame body over 4 GiB");
    buf[..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    buf.freeze()
}

/// Decodes a complete body (no length prefix), requiring that every byte is used.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes after the message",
            rest.len()
        )));
    }
    Ok(msg)
}

/// Encodes a message without a length prefix (used for QUIC datagrams, which carry their
/// own boundaries).
pub fn encode_body<T: Serialize>(msg: &T) -> Bytes {
    Bytes::from(postcard::to_stdvec(msg).expect("encoding into memory cannot fail"))
}

/// Incremental frame decoder for one stream.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder that accepts bodies up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max_frame,
        }
    }

    /// Changes the largest accepted frame body from the next frame on (a link accepts
    /// larger frames once its peer is authenticated).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// Appends bytes received from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// How many more bytes the decoder may usefully buffer right now: the rest of the
    /// current frame, or the header. Readers use this to never buffer past a frame that is
    /// about to be rejected.
    pub fn wanted(&self) -> Result<usize, FrameError> {
        match self.peek_len()? {
            None => Ok(HEADER_LEN - self.buf.len()),
            Some(len) => Ok((HEADER_LEN + len).saturating_sub(self.buf.len()).max(1)),
        }
    }

    /// The first bytes of the current frame's body buffered so far (at most `n`).
    pub fn body_head(&self, n: usize) -> &[u8] {
        let end = self.buf.len().min(HEADER_LEN + n);
        self.buf.get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// The length of the current frame's body, once its header is buffered; an error if
    /// it is over the limit.
    pub fn peek_len(&self) -> Result<Option<usize>, FrameError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[..HEADER_LEN].try_into().expect("4 bytes")) as usize;
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        Ok(Some(len))
    }

    /// The next complete frame body, `Ok(None)` if more bytes are needed.
    pub fn next_body(&mut self) -> Result<Option<Bytes>, FrameError> {
        let Some(len) = self.peek_len()? else {
            return Ok(None);
        };
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let body = self.buf.split_to(len).freeze();
        if self.buf.is_empty() {
            // Nothing pending: let go of the allocation (it goes with the last body), so an
            // idle stream holds no buffer.
            self.buf = BytesMut::new();
        }
        Ok(Some(body))
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match self.next_body()? {
            None => Ok(None),
            Some(body) => decode_body(&body).map(Some),
        }
    }

    /// Call when the stream has ended: an error if a partial frame is left over.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: self.buf.len(),
            })
        }
    }
}

/// The encoded size of a value, in bytes (for size limits).
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_decoder_holds_no_buffer() {
        let frame = encode_frame(&7u32);
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut two = frame.to_vec();
        two.extend_from_slice(&frame[..2]);
        d.extend(&two);
        let body = d.next_body().unwrap().unwrap();
        // Part of the next frame is pending: the buffer stays.
        assert!(d.buf.capacity() > 0);
        d.extend(&frame[2..]);
        d.next_body().unwrap().unwrap();
        // Nothing pending: no allocation is held (the bodies keep theirs alive).
        assert_eq!(d.buf.capacity(), 0);
        assert_eq!(decode_body::<u32>(&body).unwrap(), 7);
    }

    #[test]
    fn partial_input_is_not_an_error() {
        let frame = encode_frame(&(7u8, "hi".to_string()));
        let mut d = FrameDecoder::new(64);
        for b in &frame[..frame.len() - 1] {
            d.extend(&[*b]);
            assert_eq!(d.next_message::<(u8, String)>().unwrap(), None);
        }
        assert!(
            d.finish().is_err(),
            "a cut frame is reported at end of stream"
        );
        d.extend(&frame[frame.len() - 1..]);
        assert_eq!(
            d.next_message::<(u8, String)>().unwrap(),
            Some((7, "hi".into()))
        );
        assert_eq!(d.next_message::<(u8, String)>().unwrap(), None);
        d.finish().unwrap();
    }

    #[test]
    fn oversized_frame_is_rejected_from_the_header_alone() {
        let mut d = FrameDecoder::new(16);
        d.extend(&17u32.to_le_bytes());
        assert_eq!(
            d.next_body(),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        );
        assert!(d.wanted().is_err(), "the reader is told to stop reading");
    }

    #[test]
    fn wanted_never_reaches_past_the_current_frame() {
        let mut d = FrameDecoder::new(100);
        assert_eq!(d.wanted().unwrap(), 4);
        d.extend(&10u32.to_le_bytes());
        assert_eq!(d.wanted().unwrap(), 10);
        d.extend(&[0; 4]);
        assert_eq!(d.wanted().unwrap(), 6);
    }

    #[test]
    fn trailing_bytes_in_a_body_are_malformed() {
        let mut body = postcard::to_stdvec(&5u8).unwrap();
        body.push(0);
        assert!(matches!(
            decode_body::<u8>(&body),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn two_frames_in_one_read() {
        let mut d = FrameDecoder::new(64);
        d.extend(&encode_frame(&1u32));
        d.extend(&encode_frame(&300u32));
        assert_eq!(d.next_message::<u32>().unwrap(), Some(1));
        assert_eq!(d.next_message::<u32>().unwrap(), Some(300));
        assert_eq!(d.buffered(), 0);
    }
}
