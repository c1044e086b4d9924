//! Every message enum of the protocol decoded from arbitrary bytes (the first byte picks
//! the enum): decoding never panics, and whatever decodes encodes back to bytes that
//! decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_protocol::messages::game::peek_ticket;
use switchboard_protocol::{
    ClientToGame, ClientToMaster, DatagramDown, DatagramUp, GameToClient, GsToMaster,
    MasterToClient, MasterToGs, decode_body, encode_body,
};

/// Compared by their encodings, not with `==`: a property may be a NaN float, which is
/// not equal to itself (the first finding of this target).
fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(msg) = decode_body::<T>(data) {
        let again = encode_body(&msg);
        let back: T = decode_body(&again).expect("what we encode decodes");
        assert_eq!(encode_body(&back), again, "encoding is stable");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => round_trip::<ClientToMaster>(body),
        1 => round_trip::<MasterToClient>(body),
        2 => {
            round_trip::<ClientToGame>(body);
            // The ticket a game server reads before the rest of a large join.
            if let Some(t) = peek_ticket(body) {
                assert!(t.len() < body.len());
            }
        }
        3 => round_trip::<GameToClient>(body),
        4 => round_trip::<GsToMaster>(body),
        5 => round_trip::<MasterToGs>(body),
        6 => round_trip::<DatagramUp>(body),
        _ => round_trip::<DatagramDown>(body),
    }
});
