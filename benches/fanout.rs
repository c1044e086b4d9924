//! Room fan-out for 8, 16 and 64 actors: one 100-byte event from one actor to all the
//! others, through the room state machine (recipients), encoded once and shared by every
//! recipient's outgoing queue, as the room actor does. The baseline, measured in the same
//! run, encodes the event once per recipient. Prints the ratio after the criterion output.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use switchboard_hive::{Input, Origin, Out, Room, RoomLimits, Via};
use switchboard_protocol::{
    EventCaching, GameOp, GameToClient, JoinMode, Properties, RaiseEvent, ReceiverGroup, RoomEvent,
    RoomMode, RoomOptions, SpawnObject, StateUpdate, encode_frame,
};

fn room(actors: u32) -> Room {
    room_of(actors, RoomOptions::default())
}

fn room_of(actors: u32, options: RoomOptions) -> Room {
    let now = Instant::now();
    let mut r = Room::new("bench".into(), options, RoomLimits::default());
    let join = |user: String| Input::Join {
        id: 1,
        user_id: user,
        mode: JoinMode::JoinOnly,
        expected_users: vec![],
        properties: Properties::new(),
        claims: Properties::new(),
    };
    let create = Input::Create {
        id: 1,
        user_id: "u1".into(),
        authority: false,
        expected_users: vec![],
        properties: Properties::new(),
    };
    r.handle(Origin::Joiner(1), create, now);
    for i in 2..=actors {
        r.handle(Origin::Joiner(u64::from(i)), join(format!("u{i}")), now);
    }
    r
}

fn event() -> RaiseEvent {
    RaiseEvent {
        code: 1,
        receivers: ReceiverGroup::Others,
        targets: vec![],
        group: 0,
        cache: EventCaching::DoNotCache,
        channel: 0,
        data: Bytes::from(vec![7u8; 100]),
    }
}

/// Actor 1 raises `ev` on the control stream.
fn raise(room: &mut Room, ev: &RaiseEvent) -> Vec<Out> {
    let input = Input::Raise {
        event: ev.clone(),
        via: Via::Control,
    };
    room.handle(Origin::Actor(1), input, Instant::now())
}

/// What the room actor does: encode once, clone the `Bytes` (a reference count) per recipient.
fn shared(room: &mut Room, queues: &mut [Vec<Bytes>], ev: &RaiseEvent) {
    for out in raise(room, ev) {
        if let Out::Relay { to, data, .. } = out {
            let frame = encode_frame(&GameToClient::Event(RoomEvent::Custom(data)));
            for a in to {
                queues[a as usize].push(frame.clone());
            }
        }
    }
}

/// The baseline: the same recipients, encoded for each of them.
fn per_recipient(room: &mut Room, queues: &mut [Vec<Bytes>], ev: &RaiseEvent) {
    for out in raise(room, ev) {
        if let Out::Relay { to, data, .. } = out {
            for a in to {
                let frame = encode_frame(&GameToClient::Event(RoomEvent::Custom(data.clone())));
                queues[a as usize].push(frame);
            }
        }
    }
}

/// A Shared room whose actor 1 holds object 1.
fn objects_room(actors: u32) -> Room {
    let mut r = room_of(
        actors,
        RoomOptions {
            mode: RoomMode::Shared,
            ..RoomOptions::default()
        },
    );
    let spawn = Input::Request {
        id: 9,
        op: GameOp::Spawn(SpawnObject::default()),
    };
    r.handle(Origin::Actor(1), spawn, Instant::now());
    r
}

/// An object state update of the same payload, as the room actor relays it: encoded once,
/// shared by every recipient.
fn object_update(room: &mut Room, queues: &mut [Vec<Bytes>], ev: &RaiseEvent) {
    let input = Input::Update {
        update: StateUpdate {
            object: 1,
            tick: 1,
            state: ev.data.clone(),
        },
        via: Via::Control,
    };
    for out in room.handle(Origin::Actor(1), input, Instant::now()) {
        if let Out::State { to, state, .. } = out {
            let frame = encode_frame(&GameToClient::Event(RoomEvent::ObjectState(state)));
            for a in to {
                queues[a as usize].push(frame.clone());
            }
        }
    }
}

type Fanout = fn(&mut Room, &mut [Vec<Bytes>], &RaiseEvent);

fn run(f: Fanout, r: &mut Room, queues: &mut [Vec<Bytes>], ev: &RaiseEvent) {
    f(r, queues, ev);
    for q in queues.iter_mut() {
        q.clear();
    }
}

fn time(
    iters: u32,
    f: Fanout,
    r: &mut Room,
    queues: &mut [Vec<Bytes>],
    ev: &RaiseEvent,
) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        run(f, r, queues, black_box(ev));
    }
    t.elapsed() / iters
}

fn bench(c: &mut Criterion) {
    let ev = event();
    let mut table = Vec::new();
    for n in [8u32, 16, 64] {
        let mut r = room(n);
        let mut queues = vec![Vec::with_capacity(4); n as usize + 1];
        c.bench_function(&format!("fanout/shared/{n}"), |b| {
            b.iter(|| run(shared, &mut r, &mut queues, black_box(&ev)))
        });
        c.bench_function(&format!("fanout/per_recipient/{n}"), |b| {
            b.iter(|| run(per_recipient, &mut r, &mut queues, black_box(&ev)))
        });
        let s = time(20_000, shared, &mut r, &mut queues, &ev);
        let p = time(20_000, per_recipient, &mut r, &mut queues, &ev);
        table.push((n, s, p));
    }
    let mut objects = Vec::new();
    for n in [8u32, 16, 64] {
        let mut events = room(n);
        let mut shared_room = objects_room(n);
        let mut queues = vec![Vec::with_capacity(4); n as usize + 1];
        c.bench_function(&format!("fanout/object_update/{n}"), |b| {
            b.iter(|| run(object_update, &mut shared_room, &mut queues, black_box(&ev)))
        });
        let e = time(20_000, shared, &mut events, &mut queues, &ev);
        let o = time(20_000, object_update, &mut shared_room, &mut queues, &ev);
        objects.push((n, e, o));
    }
    println!("\nRoom fan-out of one 100-byte event to the others, same run, same machine");
    println!(
        "{:<8} {:>14} {:>16} {:>8} {:>16}",
        "actors", "encode once", "per recipient", "ratio", "per delivery"
    );
    for (n, s, p) in table {
        println!(
            "{n:<8} {:>14?} {:>16?} {:>7.1}x {:>16?}",
            s,
            p,
            p.as_secs_f64() / s.as_secs_f64(),
            s / (n - 1)
        );
    }
    println!("\nAn object state update of 100 bytes against an event of 100 bytes, same run");
    println!(
        "{:<8} {:>14} {:>16} {:>8}",
        "actors", "event", "object update", "ratio"
    );
    for (n, e, o) in objects {
        println!(
            "{n:<8} {:>14?} {:>16?} {:>7.2}x",
            e,
            o,
            o.as_secs_f64() / e.as_secs_f64()
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
