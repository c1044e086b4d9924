//! Protocol encode/decode: the hot messages (a reliable event frame, a datagram, a
//! JoinRandomGame request), postcard as Switchboard sends it, with serde_json encoding the
//! same values in the same run as the reference (a common choice for game protocols).
//! Prints the ratios after the criterion output.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_protocol::{
    ClientToMaster, DatagramDown, EventData, FrameDecoder, GameToClient, JoinRandom, MasterOp,
    RoomEvent, Value, decode_body, encode_body, encode_frame,
};

fn event() -> GameToClient {
    GameToClient::Event(RoomEvent::Custom(EventData {
        sender: 3,
        code: 7,
        data: Bytes::from(vec![0x5a; 100]),
    }))
}

fn datagram() -> DatagramDown {
    DatagramDown::Event(EventData {
        sender: 3,
        code: 7,
        data: Bytes::from(vec![0x5a; 100]),
    })
}

fn join_random() -> ClientToMaster {
    let mut q = JoinRandom::default();
    q.expected_properties.insert("mode".into(), Value::Int(2));
    q.expected_properties
        .insert("region".into(), Value::Str("eu".into()));
    ClientToMaster::Request {
        id: 42,
        op: MasterOp::JoinRandomGame(q),
    }
}

fn per_op(iters: u32, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed() / iters
}

fn case<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    c: &mut Criterion,
    name: &str,
    msg: &T,
    table: &mut Vec<(String, Duration, Duration, usize, usize)>,
) {
    let body = encode_body(msg);
    let json = serde_json::to_vec(msg).unwrap();
    assert_eq!(&decode_body::<T>(&body).unwrap(), msg);
    c.bench_function(&format!("encode/postcard/{name}"), |b| {
        b.iter(|| black_box(encode_body(black_box(msg))))
    });
    c.bench_function(&format!("decode/postcard/{name}"), |b| {
        b.iter(|| black_box(decode_body::<T>(black_box(&body)).unwrap()))
    });
    let pc = per_op(200_000, || {
        let b = encode_body(black_box(msg));
        black_box(decode_body::<T>(&b).unwrap());
    });
    let js = per_op(200_000, || {
        let b = serde_json::to_vec(black_box(msg)).unwrap();
        black_box(serde_json::from_slice::<T>(&b).unwrap());
    });
    table.push((name.to_string(), pc, js, body.len(), json.len()));
}

fn bench(c: &mut Criterion) {
    let mut table = Vec::new();
    case(c, "room event (100 B payload)", &event(), &mut table);
    case(c, "datagram (100 B payload)", &datagram(), &mut table);
    case(c, "JoinRandomGame request", &join_random(), &mut table);
    // Framing: a stream of 1000 event frames through the incremental decoder.
    let frames: Vec<u8> = (0..1000)
        .flat_map(|_| encode_frame(&event()).to_vec())
        .collect();
    c.bench_function("decode/frames/1000 events", |b| {
        b.iter(|| {
            let mut d = FrameDecoder::new(64 * 1024);
            d.extend(black_box(&frames));
            let mut n = 0;
            while let Some(m) = d.next_message::<GameToClient>().unwrap() {
                black_box(m);
                n += 1;
            }
            assert_eq!(n, 1000);
        })
    });
    println!(
        "\nEncode + decode round trip, postcard (Switchboard) vs serde_json, same run, same machine"
    );
    println!(
        "{:<28} {:>10} {:>10} {:>8} {:>14}",
        "message", "postcard", "json", "ratio", "bytes (pc/json)"
    );
    for (name, pc, js, pb, jb) in table {
        println!(
            "{name:<28} {:>10?} {:>10?} {:>7.1}x {:>14}",
            pc,
            js,
            js.as_secs_f64() / pc.as_secs_f64(),
            format!("{pb}/{jb}")
        );
    }
}

/// A join ticket signed and verified with the keyed HMAC state reused (Switchboard), and
/// rekeyed for every ticket (how it was done before: the reference in the same run).
fn tickets(c: &mut Criterion) {
    use hmac::{Hmac, KeyInit, Mac};
    use switchboard_protocol::{TicketAction, TicketClaims, TicketKeys};
    let key = vec![7u8; 32];
    let keys = TicketKeys::single(1, key.clone()).unwrap();
    let claims = TicketClaims {
        user_id: "player-4711".into(),
        game: "arena-42".into(),
        game_server: "gs-1".into(),
        action: TicketAction::Join,
        expires_at_ms: u64::MAX,
        key_id: 1,
        terms: 0x1234_5678,
        authority: false,
        claims: Default::default(),
    };
    c.bench_function("ticket/sign", |b| {
        b.iter(|| black_box(keys.sign(black_box(claims.clone()))))
    });
    let ticket = keys.sign(claims.clone());
    c.bench_function("ticket/verify", |b| {
        b.iter(|| black_box(keys.verify(black_box(&ticket), 0, "gs-1").unwrap()))
    });
    let rekeyed = || {
        let mut out = postcard::to_stdvec(black_box(&claims)).unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        black_box(out)
    };
    c.bench_function("ticket/sign, rekeyed per ticket (reference)", |b| {
        b.iter(|| {
            // The same clone as `sign` takes its claims by value.
            black_box(claims.clone());
            rekeyed()
        })
    });
    let reused = per_op(500_000, || {
        black_box(keys.sign(black_box(claims.clone())));
    });
    let reference = per_op(500_000, || {
        let _ = claims.clone();
        rekeyed();
    });
    println!(
        "\nticket signing, keyed state reused vs rekeyed per ticket (same run): {reused:?} vs {reference:?}, {:.2}x",
        reused.as_secs_f64() / reference.as_secs_f64()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = bench, tickets
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
