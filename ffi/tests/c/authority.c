/* The second C test program: room authority, shared objects, lobbies and property
 * values, through the C API alone, against a real `switchboard dev`. argv: master
 * address, CA file, alice's token, bob's token, a prefix for room names, the cluster's
 * dedicated-server secret, carol's token. Exits 0 when every step held; prints the first failure
 * otherwise. */
#include "harness.h"

static SbClient *start(const char *master, const char *ca) {
    SbClient *c = NULL;
    if (sb_client_connect(S(master), S(ca), &c) != SB_OK) fail("connect");
    wait_for(c, SB_EVENT_CONNECTED, "connected");
    return c;
}

static void login(SbClient *c, const char *user, const char *token) {
    sb_authenticate(c, S(user), S(token));
    wait_for(c, SB_EVENT_AUTHENTICATED, "authenticated");
}

static void name(char *out, const char *prefix, const char *what) {
    snprintf(out, 128, "%s-%s", prefix, what);
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: authority MASTER CA TOKEN_A TOKEN_B PREFIX SERVER_SECRET TOKEN_C\n");
        return 2;
    }
    const char *master = argv[1], *ca = argv[2], *prefix = argv[5], *secret = argv[6];
    char room[128];
    SbEvent e;
    SbProperty p;
    SbActor actor;
    SbRoomOptions o;

    SbClient *a = start(master, ca), *b = start(master, ca);
    login(a, "alice", argv[3]);
    login(b, "bob", argv[4]);

    /* --- Host mode: options, actors, property values, a snapshot handed to the next host. */
    name(room, prefix, "host");
    if (sb_room_options_default(&o) != SB_OK) fail("default options");
    if (o.mode != SB_MODE_RELAY || o.is_open != 1 || o.flush_window_ms != -1) fail("the defaults");
    o.mode = SB_MODE_HOST;
    o.max_players = 4;
    o.publish_user_id = 1;
    sb_create_game_with(a, S(room), &o);
    e = wait_for(a, SB_EVENT_JOINED, "a created the host room");
    if (e.actor != 1 || e.flags != SB_MODE_HOST || e.extra != 1) fail("a hosts the room as actor 1");
    sb_set_property_str(a, 0, S("map"), S("dust"));
    sb_set_property_bytes(a, 1, S("loadout"), (const uint8_t *)"\x01\x00\x02", 3);
    wait_for(a, SB_EVENT_PROPERTIES_CHANGED, "a's room property is set");
    wait_for(a, SB_EVENT_PROPERTIES_CHANGED, "a's own property is set");

    SbProperty team = {0};
    team.key = (const uint8_t *)"team";
    team.key_len = 4;
    team.kind = SB_VALUE_STR;
    team.data = (const uint8_t *)"red";
    team.data_len = 3;
    sb_set_actor_properties(b, &team, 1); /* given with b's joins from now on */
    sb_join_game(b, S(room), 0);
    e = wait_for(b, SB_EVENT_JOINED, "b joined the host room");
    if (e.actor != 2 || e.extra != 1 || e.count != 2) fail("b is actor 2, the host is 1");
    if (sb_event_property(b, 0, &p) != 1 || !bytes_are(p.key, p.key_len, "map") ||
        p.kind != SB_VALUE_STR || !bytes_are(p.data, p.data_len, "dust"))
        fail("the room's property map=dust");
    if (sb_event_property(b, 1, &p) != 0) fail("one room property only");
    if (sb_event_actor(b, 0, &actor) != 1 || actor.actor != 1 ||
        !bytes_are(actor.user_id, actor.user_id_len, "alice") || actor.property_count != 1)
        fail("actor 1 is alice, with one property");
    if (sb_event_actor_property(b, 0, 0, &p) != 1 || p.kind != SB_VALUE_BYTES || p.data_len != 3 ||
        memcmp(p.data, "\x01\x00\x02", 3) != 0)
        fail("alice's loadout bytes");
    if (sb_event_actor(b, 2, &actor) != 0) fail("two actors only");
    e = wait_for(a, SB_EVENT_ACTOR_JOINED, "a saw b join");
    if (e.actor != 2 || !bytes_are(e.text, e.text_len, "bob")) fail("the joiner is bob");
    if (e.count != 1 || sb_event_property(a, 0, &p) != 1 || !bytes_are(p.key, p.key_len, "team") ||
        !bytes_are(p.data, p.data_len, "red"))
        fail("bob joined with team=red");

    sb_set_property_int(b, 2, S("score"), -7);
    e = wait_for(a, SB_EVENT_PROPERTIES_CHANGED, "a saw b's score");
    if (e.actor != 2 || e.count != 1 || sb_event_property(a, 0, &p) != 1 ||
        !bytes_are(p.key, p.key_len, "score") || p.kind != SB_VALUE_INT || p.int_value != -7)
        fail("score=-7");

    sb_upload_snapshot(a, S("world-at-tick-30"));
    sb_leave(a, 0);
    wait_for(a, SB_EVENT_LEFT, "a left the host room");
    e = wait_for(b, SB_EVENT_HOST_CHANGED, "b became the host");
    if (e.actor != 2 || e.sender != 1 || e.flags != SB_HOST_LEFT || (e.extra & 1) == 0 ||
        !bytes_are(e.data, e.data_len, "world-at-tick-30"))
        fail("b hosts now, with a's snapshot");
    sb_leave(b, 0);
    wait_for(b, SB_EVENT_LEFT, "b left the host room");

    /* --- Shared mode: objects, their state and authority; the master client moved. */
    name(room, prefix, "shared");
    sb_room_options_default(&o);
    o.mode = SB_MODE_SHARED;
    sb_create_game_with(b, S(room), &o);
    e = wait_for(b, SB_EVENT_JOINED, "b created the shared room");
    if (e.flags != SB_MODE_SHARED) fail("a shared room");
    uint32_t bn = e.actor;
    sb_join_game(a, S(room), 0);
    e = wait_for(a, SB_EVENT_JOINED, "a joined the shared room");
    uint32_t an = e.actor;

    if (sb_spawn(b, 5, 0, 1, S("s0"), 99) != SB_ERR_INVALID) fail("unknown spawn flags refused");
    sb_spawn(b, 5, 0, 1, S("s0"), SB_SPAWN_ALLOW_OVERRIDE);
    e = wait_for(a, SB_EVENT_OBJECT_SPAWNED, "a saw the spawn");
    uint32_t obj = e.actor;
    SbObject so;
    if (sb_event_object(a, &so) != 1 || so.object != obj || so.type_id != 5 || so.state_authority != bn ||
        so.input_authority != bn || so.flags != SB_SPAWN_ALLOW_OVERRIDE || so.tick != 1 ||
        !bytes_are(so.state, so.state_len, "s0"))
        fail("the spawned object");
    wait_for(b, SB_EVENT_OBJECT_SPAWNED, "b saw its own spawn");

    sb_update_state(b, obj, 2, S("s1"), 1);
    e = wait_for(a, SB_EVENT_OBJECT_STATE, "a got the new state");
    if (e.actor != obj || e.sender != bn || e.tick != 2 || !bytes_are(e.data, e.data_len, "s1"))
        fail("state s1 at tick 2");

    sb_request_state_authority(a, obj);
    e = wait_for(b, SB_EVENT_AUTHORITY_CHANGED, "b saw a take the object");
    if (e.actor != obj || e.sender != an) fail("a holds the state authority");
    e = wait_for(a, SB_EVENT_STATE_AUTHORITY, "a's request was answered");
    if (e.actor != obj || e.sender != an) fail("granted to a");

    sb_set_master_client(b, an, bn);
    e = wait_for(a, SB_EVENT_MASTER_CLIENT_CHANGED, "a is the master client");
    if (e.actor != an) fail("the master client is a");

    /* A nested object goes with its parent: one event per object. */
    sb_spawn(a, 6, obj, 3, S("child"), 0);
    e = wait_for(b, SB_EVENT_OBJECT_SPAWNED, "b saw the nested spawn");
    uint32_t child = e.actor;
    if (sb_event_object(b, &so) != 1 || so.parent != obj || so.state_authority != an) fail("the nested object");
    sb_request_state_authority(b, child); /* no override: refused, the answer names a */
    e = wait_for(b, SB_EVENT_STATE_AUTHORITY, "b's request was answered");
    if (e.actor != child || e.sender != an) fail("refused: a still holds the nested object");
    sb_despawn(a, obj);
    int gone_parent = 0, gone_child = 0;
    for (int i = 0; i < 2; i++) {
        e = wait_for(b, SB_EVENT_OBJECT_DESPAWNED, "b saw the despawns");
        if (e.sender != an) fail("a despawned the objects");
        gone_parent |= e.actor == obj;
        gone_child |= e.actor == child;
    }
    if (!gone_parent || !gone_child) fail("the parent and the nested object despawned");

    /* --- Lobbies: the shared room is listed with its player count; a random join in an
     * empty SQL lobby finds nothing. */
    /* Carol's client trusts the certificate given as PEM text (as on Android, where it
     * is inside the package), not as a file. */
    SbClient *c = NULL;
    if (sb_client_connect_pem(S(master), S("not a certificate"), &c) != SB_ERR_START) fail("a bad PEM");
    FILE *f = fopen(ca, "rb");
    if (!f) fail("the CA file");
    static char pem[16384];
    size_t pem_len = fread(pem, 1, sizeof pem, f);
    fclose(f);
    if (sb_client_connect_pem(S(master), (const uint8_t *)pem, pem_len, &c) != SB_OK) fail("connect with PEM");
    wait_for(c, SB_EVENT_CONNECTED, "carol connected");
    login(c, "carol", argv[7]);
    sb_join_lobby(c, NULL, 0, 0);
    /* The whole list, then updates: the master learns player counts from the game
     * server's reports, so the room may first show fewer. */
    int listed = 0;
    for (int lists = 0; lists < 20 && !listed; lists++) {
        e = wait_for(c, SB_EVENT_GAME_LIST, "c got the game list");
        SbGame g;
        for (uint32_t i = 0; sb_event_game(c, i, &g) == 1; i++)
            if (bytes_are(g.name, g.name_len, room) && g.player_count == 2 && g.is_open == 1 && !g.removed)
                listed = 1;
    }
    if (!listed) fail("the shared room is listed with 2 players");
    sb_leave_lobby(c);
    sb_join_random(c, S("ranked"), 1, S("C0 > 5"), 0, NULL, 0, NULL);
    e = wait_for(c, SB_EVENT_ERROR, "no random match");
    if (e.code != 32760 || e.flags != SB_OP_JOIN_GAME) fail("NoRandomMatchFound (32760)");
    sb_client_free(c);
    sb_leave(a, 0);
    sb_leave(b, 0);
    wait_for(a, SB_EVENT_LEFT, "a left the shared room");
    wait_for(b, SB_EVENT_LEFT, "b left the shared room");

    /* --- An SQL lobby matches on a room's listed properties; every kind of value. */
    name(room, prefix, "ranked");
    sb_room_options_default(&o);
    SbProperty level = {0};
    level.key = (const uint8_t *)"C0";
    level.key_len = 2;
    level.kind = SB_VALUE_INT;
    level.int_value = 5;
    SbText listed_key = {(const uint8_t *)"C0", 2};
    o.lobby = (const uint8_t *)"ranked";
    o.lobby_len = 6;
    o.lobby_sql = 1;
    o.properties = &level;
    o.property_count = 1;
    o.lobby_properties = &listed_key;
    o.lobby_property_count = 1;
    o.delete_null_properties = 1;
    sb_create_game_with(a, S(room), &o);
    wait_for(a, SB_EVENT_JOINED, "a created the ranked room");
    sb_join_random(b, S("ranked"), 1, S("C0 > 3"), 0, NULL, 0, NULL);
    e = wait_for(b, SB_EVENT_JOINED, "b matched the ranked room");
    if (!bytes_are(e.text, e.text_len, room)) fail("b is in the ranked room");
    if (sb_event_property(b, 0, &p) != 1 || !bytes_are(p.key, p.key_len, "C0") || p.kind != SB_VALUE_INT ||
        p.int_value != 5)
        fail("C0=5");
    SbProperty kinds[3] = {{0}, {0}, {0}};
    kinds[0].key = (const uint8_t *)"C0"; kinds[0].key_len = 2; kinds[0].kind = SB_VALUE_NULL;
    kinds[1].key = (const uint8_t *)"ready"; kinds[1].key_len = 5; kinds[1].kind = SB_VALUE_BOOL;
    kinds[1].int_value = 1;
    kinds[2].key = (const uint8_t *)"speed"; kinds[2].key_len = 5; kinds[2].kind = SB_VALUE_FLOAT;
    kinds[2].float_value = 1.5;
    SbProperty bad_kind = kinds[1];
    bad_kind.kind = 9;
    if (sb_set_properties(a, 0, &bad_kind, 1) != SB_ERR_INVALID) fail("kind 9 is invalid");
    sb_set_properties(a, 0, kinds, 3);
    e = wait_for(b, SB_EVENT_PROPERTIES_CHANGED, "b saw null, bool and float");
    if (e.count != 3) fail("three properties changed");
    int null_ok = 0, bool_ok = 0, float_ok = 0;
    for (uint32_t i = 0; sb_event_property(b, i, &p) == 1; i++) {
        if (bytes_are(p.key, p.key_len, "C0")) null_ok = p.kind == SB_VALUE_NULL;
        if (bytes_are(p.key, p.key_len, "ready")) bool_ok = p.kind == SB_VALUE_BOOL && p.int_value == 1;
        if (bytes_are(p.key, p.key_len, "speed")) float_ok = p.kind == SB_VALUE_FLOAT && p.float_value == 1.5;
    }
    if (!null_ok || !bool_ok || !float_ok) fail("C0 deleted, ready=true, speed=1.5");
    /* Deleted, not kept as null: a joiner sees ready and speed only. */
    sb_leave(b, 0);
    wait_for(b, SB_EVENT_LEFT, "b left the ranked room");
    sb_join_game(b, S(room), 0);
    e = wait_for(b, SB_EVENT_JOINED, "b came back to the ranked room");
    if (sb_event_property(b, 0, &p) != 1 || !bytes_are(p.key, p.key_len, "ready") ||
        sb_event_property(b, 1, &p) != 1 || !bytes_are(p.key, p.key_len, "speed") || sb_event_property(b, 2, &p) != 0)
        fail("C0 is gone from the room");
    sb_leave(a, 0);
    sb_leave(b, 0);
    wait_for(a, SB_EVENT_LEFT, "a left the ranked room");
    wait_for(b, SB_EVENT_LEFT, "b left the ranked room");

    /* --- A dedicated server's room with join approval. */
    SbClient *s = start(master, ca);
    sb_authenticate_server(s, S("ds-c"), S(secret));
    wait_for(s, SB_EVENT_AUTHENTICATED, "the server authenticated");
    name(room, prefix, "server");
    sb_room_options_default(&o);
    o.mode = SB_MODE_SERVER;
    o.join_approval = 1;
    sb_create_game_with(s, S(room), &o);
    e = wait_for(s, SB_EVENT_JOINED, "the server created its room");
    if (e.flags != SB_MODE_SERVER || e.extra != e.actor) fail("the server is the room's authority");

    sb_join_game(a, S(room), 0);
    e = wait_for(s, SB_EVENT_JOIN_REQUEST, "the server was asked about alice");
    if (!bytes_are(e.text, e.text_len, "alice") || e.flags != 0) fail("alice asks to join");
    sb_approve_join(s, e.actor, 1, NULL, 0);
    wait_for(a, SB_EVENT_JOINED, "alice was let in");

    sb_join_game(b, S(room), 0);
    e = wait_for(s, SB_EVENT_JOIN_REQUEST, "the server was asked about bob");
    sb_approve_join(s, e.actor, 0, S("banned"));
    e = wait_for(b, SB_EVENT_ERROR, "bob was refused");
    if (e.code != 32692 || e.flags != SB_OP_JOIN_GAME) fail("JoinNotApproved (32692)");

    /* Room operations refused by the room come back as errors with SB_OP_ROOM. */
    sb_upload_snapshot(a, S("not a host room"));
    e = wait_for(a, SB_EVENT_ERROR, "a snapshot in a server room is refused");
    if (e.flags != SB_OP_ROOM) fail("a room operation's refusal");

    /* Freeing a client in a room closes its connection: the room sees it go at once, not
     * after the server's idle timeout. */
    sb_leave(a, 0);
    sb_client_free(a); /* right after the leave: it still reaches the room */
    e = wait_for(s, SB_EVENT_ACTOR_LEFT, "the server saw alice leave");
    if (e.flags != 0) fail("alice left for good");

    sb_client_free(s);
    sb_client_free(b);
    printf("ok\n");
    return 0;
}
