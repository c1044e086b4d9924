//! The conversions behind `sb_poll` and the `sb_event_*` readers, checked directly with a
//! client whose master never answers (no network needed for what is checked here).

use bytes::Bytes;
use switchboard_client::{ClientConfig, PollClient, PollEvent};
use switchboard_protocol::{
    Handover, HostChange, HostSnapshot, ObjectInfo, Properties, RoomEvent, Value,
};
use switchboard_transport::{ServerIdentity, Trust};

use super::*;

fn client() -> (SbClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (_, ca) = ServerIdentity::dev(dir.path()).unwrap();
    let mut config = ClientConfig::new(Trust::from_ca_file(&ca).unwrap());
    // Nothing comes out of `poll` during a test (the connection attempt outlasts it).
    config.connect_timeout = std::time::Duration::from_secs(5);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let inner = PollClient::connect(&socket.local_addr().unwrap().to_string(), config).unwrap();
    let c = SbClient {
        inner,
        data: Bytes::new(),
        text: String::new(),
        details: Details::default(),
        pending: VecDeque::new(),
    };
    (c, dir)
}

fn property(c: &mut SbClient, index: u32) -> Option<SbProperty> {
    let mut p = std::mem::MaybeUninit::<SbProperty>::uninit();
    // SAFETY: `c` is live and ours; `p` is writable.
    let r = unsafe { sb_event_property(c, index, p.as_mut_ptr()) };
    // SAFETY: filled when 1 is returned.
    (r == 1).then(|| unsafe { p.assume_init() })
}

fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the pointers under test point into the client, alive for the test.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

#[test]
fn property_values_of_every_kind_read_back_in_key_order() {
    let (mut c, _dir) = client();
    let properties: Properties = [
        ("a".to_string(), Value::Null),
        ("b".to_string(), Value::Bool(true)),
        ("c".to_string(), Value::Int(i64::MIN)),
        ("d".to_string(), Value::Float(-0.5)),
        ("e".to_string(), Value::Str("héllo".into())),
        ("f".to_string(), Value::Bytes(Bytes::from_static(&[0, 255]))),
    ]
    .into();
    let e = c.convert(PollEvent::PropertiesChanged {
        target: 3,
        sender: 1,
        properties,
    });
    assert_eq!(
        (e.kind, e.actor, e.sender, e.count),
        (SB_EVENT_PROPERTIES_CHANGED, 3, 1, 6)
    );
    let kinds: Vec<(u8, u32)> = (0..6)
        .map(|i| {
            let p = property(&mut c, i).unwrap();
            (slice(p.key, p.key_len)[0], p.kind)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (b'a', SB_VALUE_NULL),
            (b'b', SB_VALUE_BOOL),
            (b'c', SB_VALUE_INT),
            (b'd', SB_VALUE_FLOAT),
            (b'e', SB_VALUE_STR),
            (b'f', SB_VALUE_BYTES)
        ]
    );
    assert_eq!(property(&mut c, 1).unwrap().int_value, 1);
    assert_eq!(property(&mut c, 2).unwrap().int_value, i64::MIN);
    assert_eq!(property(&mut c, 3).unwrap().float_value, -0.5);
    let s = property(&mut c, 4).unwrap();
    assert_eq!(slice(s.data, s.data_len), "héllo".as_bytes());
    let b = property(&mut c, 5).unwrap();
    assert_eq!(slice(b.data, b.data_len), [0, 255]);
    assert!(property(&mut c, 6).is_none(), "past the end");
}

#[test]
fn a_handover_carries_its_snapshot_age_replay_and_truncation() {
    let (mut c, _dir) = client();
    let e = c.convert(PollEvent::Room(RoomEvent::HostChanged {
        host: 2,
        previous: 1,
        reason: HostChange::Inactive,
        handover: Some(Handover {
            snapshot: Some(HostSnapshot {
                data: Bytes::from_static(b"world"),
                age_ms: 1234,
            }),
            replay: 7,
            replay_truncated: true,
        }),
    }));
    assert_eq!(
        (e.kind, e.actor, e.sender, e.flags, e.count, e.extra, e.tick),
        (SB_EVENT_HOST_CHANGED, 2, 1, SB_HOST_INACTIVE, 7, 3, 1234)
    );
    assert_eq!(slice(e.data, e.data_len), b"world");
    // The others' copy: no handover.
    let e = c.convert(PollEvent::Room(RoomEvent::HostChanged {
        host: 2,
        previous: 1,
        reason: HostChange::Left,
        handover: None,
    }));
    assert_eq!((e.count, e.extra, e.data_len, e.tick), (0, 0, 0, 0));
    assert!(e.data.is_null());
}

#[test]
fn a_despawn_of_several_objects_comes_out_one_poll_per_object_in_order() {
    let (mut c, _dir) = client();
    c.pending.push_back(PollEvent::Left);
    let e = c.convert(PollEvent::Room(RoomEvent::ObjectsDespawned {
        objects: vec![4, 5, 6],
        sender: 2,
    }));
    assert_eq!(
        (e.kind, e.actor, e.sender),
        (SB_EVENT_OBJECT_DESPAWNED, 4, 2)
    );
    let mut out = SbEvent::empty();
    let mut next = |c: &mut SbClient| {
        // SAFETY: `c` is live and ours; `out` is writable.
        assert_eq!(unsafe { sb_poll(c, &mut out) }, 1);
        (out.kind, out.actor)
    };
    assert_eq!(next(&mut c), (SB_EVENT_OBJECT_DESPAWNED, 5));
    assert_eq!(next(&mut c), (SB_EVENT_OBJECT_DESPAWNED, 6));
    assert_eq!(
        next(&mut c),
        (SB_EVENT_LEFT, 0),
        "what was queued before comes after"
    );
}

#[test]
fn a_spawned_object_reads_back_whole_and_details_do_not_outlive_their_event() {
    let (mut c, _dir) = client();
    let e = c.convert(PollEvent::Room(RoomEvent::ObjectSpawned(ObjectInfo {
        object: 9,
        type_id: 77,
        parent: 3,
        state_authority: 2,
        input_authority: 4,
        allow_override: true,
        despawn_on_leave: false,
        master_client_object: true,
        tick: 1 << 40,
        state: Bytes::from_static(b"st"),
    })));
    assert_eq!(
        (e.kind, e.actor, e.sender, e.extra, e.count, e.tick),
        (SB_EVENT_OBJECT_SPAWNED, 9, 2, 4, 77, 1 << 40)
    );
    let mut o = std::mem::MaybeUninit::<SbObject>::uninit();
    // SAFETY: `c` is live and ours; `o` is writable.
    assert_eq!(unsafe { sb_event_object(&mut c, o.as_mut_ptr()) }, 1);
    // SAFETY: filled (1 returned).
    let o = unsafe { o.assume_init() };
    assert_eq!(
        (
            o.object,
            o.type_id,
            o.parent,
            o.state_authority,
            o.input_authority,
            o.flags
        ),
        (
            9,
            77,
            3,
            2,
            4,
            SB_SPAWN_ALLOW_OVERRIDE | SB_SPAWN_MASTER_CLIENT_OBJECT
        )
    );
    assert_eq!(slice(o.state, o.state_len), b"st");
    // An empty poll leaves nothing of the last event readable.
    let mut out = SbEvent::empty();
    // SAFETY: as above.
    assert_eq!(unsafe { sb_poll(&mut c, &mut out) }, 0);
    let mut o = std::mem::MaybeUninit::<SbObject>::uninit();
    // SAFETY: as above.
    assert_eq!(unsafe { sb_event_object(&mut c, o.as_mut_ptr()) }, 0);
}

#[test]
fn lengths_no_object_can_have_are_refused_not_aborted_on() {
    let (mut c, _dir) = client();
    let name = b"x";
    // SAFETY: the length is refused before anything is read.
    let r = unsafe { sb_join_game(&mut c, name.as_ptr(), usize::MAX, 0) };
    assert_eq!(r, SB_ERR_INVALID);
    // SAFETY: as above.
    let r = unsafe { sb_raise_event(&mut c, 1, name.as_ptr(), isize::MAX as usize + 1, 0, 1) };
    assert_eq!(r, SB_ERR_INVALID);
    let targets = [1u32];
    let how = SbRaiseOptions {
        targets: targets.as_ptr(),
        target_count: usize::MAX / 2,
        ..SbRaiseOptions::default()
    };
    // SAFETY: as above.
    let r = unsafe { sb_raise_event_with(&mut c, 1, std::ptr::null(), 0, &how) };
    assert_eq!(r, SB_ERR_INVALID);
}
