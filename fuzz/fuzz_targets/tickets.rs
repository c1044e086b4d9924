//! Join tickets: verifying arbitrary bytes never panics and never accepts a forgery;
//! a ticket signed here verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{TicketAction, TicketClaims, TicketKeys};

fuzz_target!(|data: &[u8]| {
    let keys = TicketKeys::single(7, vec![0x42; 32]).expect("a valid key");
    // Arbitrary bytes are (almost surely) not a genuine ticket.
    if let Ok(claims) = keys.verify(data, 0, "gs-1") {
        // Only possible if the bytes are a real signature of their claims: check it.
        let again = keys.sign(claims.clone());
        assert_eq!(&again[..], data, "a forged ticket verified");
    }
    // A genuine ticket built from fuzzed claims verifies (or is refused for its fields).
    let text = String::from_utf8_lossy(data);
    let claims = TicketClaims {
        user_id: text.chars().take(64).collect(),
        game: text.chars().rev().take(64).collect(),
        game_server: "gs-1".into(),
        action: if data.len() % 2 == 0 {
            TicketAction::Create
        } else {
            TicketAction::Join
        },
        expires_at_ms: u64::MAX,
        key_id: 0,
        terms: data.len() as u64,
        authority: data.first().is_some_and(|b| b % 2 == 1),
        claims: [(
            "t".to_string(),
            switchboard_protocol::Value::Str(text.chars().take(32).collect()),
        )]
        .into(),
    };
    let ticket = keys.sign(claims);
    let _ = keys.verify(&ticket, 0, "gs-1");
});
