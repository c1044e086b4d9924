//! The frame decoder fed arbitrary bytes in arbitrary chunks: it never panics, never
//! buffers past a frame it rejects, and every body it returns is within the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::FrameDecoder;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let max = 1 + usize::from(split) * 64;
    let mut d = FrameDecoder::new(max);
    let chunk = 1 + usize::from(split % 17);
    for piece in rest.chunks(chunk) {
        if d.wanted().is_err() {
            return;
        }
        d.extend(piece);
        loop {
            match d.next_body() {
                Ok(Some(body)) => assert!(body.len() <= max),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(d.buffered() <= max + 4 + chunk, "buffered past the limit");
    }
    let _ = d.finish();
});
