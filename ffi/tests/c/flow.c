/* The C test program: two clients, against a real `switchboard dev`, through the C API
 * alone. argv: master address, CA file, alice's token, bob's token, room name.
 * Exits 0 when every step held; prints the first failure otherwise. */
#include "harness.h"

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: flow MASTER CA TOKEN_A TOKEN_B ROOM\n"); return 2; }
    const char *master = argv[1], *ca = argv[2], *room = argv[5];
    SbClient *a = NULL, *b = NULL;
    if (sb_client_connect(S(master), S(ca), &a) != SB_OK) fail("connect a");
    /* No CA file: the system's roots (the test points SSL_CERT_FILE at the certificate). */
    if (sb_client_connect(S(master), NULL, 0, &b) != SB_OK) fail("connect b");
    wait_for(a, SB_EVENT_CONNECTED, "a connected");
    wait_for(b, SB_EVENT_CONNECTED, "b connected");

    /* A wrong token: InvalidAuthentication (32767). */
    sb_authenticate(a, S("alice"), S("not-a-token"));
    SbEvent e = wait_for(a, SB_EVENT_ERROR, "wrong token refused");
    if (e.code != 32767 || e.flags != SB_OP_AUTHENTICATE) fail("wrong token: code 32767");

    sb_authenticate(a, S("alice"), S(argv[3]));
    e = wait_for(a, SB_EVENT_AUTHENTICATED, "a authenticated");
    if (e.text_len != 5 || memcmp(e.text, "alice", 5) != 0) fail("a's user id");
    sb_authenticate(b, S("bob"), S(argv[4]));
    wait_for(b, SB_EVENT_AUTHENTICATED, "b authenticated");

    /* A wrong game name: GameDoesNotExist (32758). */
    sb_join_game(a, S("no-such-game"), 0);
    e = wait_for(a, SB_EVENT_ERROR, "unknown game refused");
    if (e.code != 32758 || e.flags != SB_OP_JOIN_GAME) fail("unknown game: code 32758");

    sb_create_game(a, S(room), 4);
    e = wait_for(a, SB_EVENT_JOINED, "a created the room");
    if (e.actor != 1) fail("a is actor 1");
    sb_join_game(b, S(room), 0);
    e = wait_for(b, SB_EVENT_JOINED, "b joined");
    if (e.actor != 2 || e.sender != 1 || e.count != 2) fail("b is actor 2, master client 1");
    e = wait_for(a, SB_EVENT_ACTOR_JOINED, "a saw b join");
    if (e.actor != 2) fail("the joiner is 2");

    /* Reliable, a -> b. */
    sb_raise_event(a, 7, S("hello"), 0, 1);
    e = wait_for(b, SB_EVENT_EVENT, "b got the reliable event");
    if (e.sender != 1 || e.code != 7 || e.data_len != 5 || memcmp(e.data, "hello", 5) != 0)
        fail("the reliable event");

    /* Unreliable, b -> a: datagrams may be lost, so send until one arrives. */
    int got = 0;
    for (int tries = 0; tries < 50 && !got; tries++) {
        sb_raise_event(b, 8, S("fast"), 0, 0);
        for (int i = 0; i < 100 && !got; i++) {
            if (sb_poll(a, &e) == 1 && e.kind == SB_EVENT_EVENT && e.code == 8 && e.sender == 2)
                got = 1;
            else
                nap();
        }
    }
    if (!got) fail("a got an unreliable event");

    /* Properties. */
    sb_set_property_int(a, 1, S("score"), 42);
    e = wait_for(b, SB_EVENT_PROPERTIES_CHANGED, "b saw a's property");
    if (e.actor != 1 || e.sender != 1) fail("the property change");

    /* Explicit targets, an interest group, a reliable channel. */
    /* (What reaches nobody goes first: b's next event shows it was not delivered.) */
    uint32_t to_nobody[1] = {99}, to_b[1] = {2};
    SbRaiseOptions how = {0};
    how.reliable = 1;
    how.targets = to_nobody;
    how.target_count = 1;
    sb_raise_event_with(a, 16, S("to actor 99"), &how);
    how.targets = to_b;
    sb_raise_event_with(a, 11, S("targeted"), &how);
    e = wait_for(b, SB_EVENT_EVENT, "b got the targeted event");
    if (e.code != 11 || e.sender != 1) fail("only the event targeted at b reaches b");
    uint8_t group = 5;
    sb_change_groups(b, 0, NULL, 0, &group, 1);
    sb_raise_event(b, 12, S("in group 5 now"), 0, 1); /* after ChangeGroups, on the same stream */
    e = wait_for(a, SB_EVENT_EVENT, "a heard b joined group 5");
    if (e.code != 12) fail("b's barrier event");
    SbRaiseOptions to_group = {0};
    to_group.reliable = 1;
    to_group.channel = 3;
    to_group.group = 6;
    sb_raise_event_with(a, 15, S("nobody's group"), &to_group);
    to_group.group = 5;
    sb_raise_event_with(a, 13, S("group"), &to_group);
    e = wait_for(b, SB_EVENT_EVENT, "b got the group event on channel 3");
    if (e.code != 13 || !(e.data_len == 5 && memcmp(e.data, "group", 5) == 0)) fail("the group event");
    /* Cached for whoever joins later (checked when b comes back below). */
    SbRaiseOptions cached = {0};
    cached.reliable = 1;
    cached.cache = 1;
    sb_raise_event_with(a, 14, S("cached"), &cached);
    SbRaiseOptions bad = {0};
    bad.channel = 16;
    if (sb_raise_event_with(a, 1, NULL, 0, &bad) != SB_ERR_INVALID) fail("channel 16 is invalid");
    bad.channel = 0;
    bad.cache = 9;
    if (sb_raise_event_with(a, 1, NULL, 0, &bad) != SB_ERR_INVALID) fail("cache 9 is invalid");
    bad.cache = 0;
    bad.target_count = 1;
    if (sb_raise_event_with(a, 1, NULL, 0, &bad) != SB_ERR_NULL) fail("null targets");

    /* A payload over the limit: OperationLimitReached (32743). */
    size_t big = 600 * 1024;
    uint8_t *payload = calloc(big, 1);
    sb_raise_event(a, 9, payload, big, 0, 1);
    free(payload);
    e = wait_for(a, SB_EVENT_ERROR, "oversized event refused");
    if (e.code != 32743 || e.flags != SB_OP_SEND) fail("oversized: code 32743");

    /* Bad arguments come back at once. */
    if (sb_raise_event(a, 1, NULL, 0, 9, 1) != SB_ERR_INVALID) fail("receivers 9 is invalid");
    if (sb_join_game(NULL, S(room), 0) != SB_ERR_NULL) fail("a null client");
    if (sb_debug_panic() != SB_ERR_PANIC) fail("a panic comes back as SB_ERR_PANIC");

    /* b leaves: a sees it. */
    sb_leave(b, 0);
    wait_for(b, SB_EVENT_LEFT, "b left");
    e = wait_for(a, SB_EVENT_ACTOR_LEFT, "a saw b leave");
    if (e.actor != 2 || e.flags != 0) fail("b left for good");

    /* b comes back: the cached event is delivered to it on joining. */
    sb_join_game(b, S(room), 0);
    uint32_t b_again = wait_for(b, SB_EVENT_JOINED, "b joined again").actor;
    e = wait_for(b, SB_EVENT_EVENT, "b got the cached event");
    if (e.code != 14 || e.sender != 1) fail("the cached event");

    /* A second room while in one is refused (leave first): OperationNotAllowedInCurrentState. */
    sb_create_game(b, S("another-room"), 0);
    e = wait_for(b, SB_EVENT_ERROR, "a second room refused");
    if (e.code != -3 || e.flags != SB_OP_CREATE_GAME) fail("a second room: code -3");

    /* Reliable events sent right before freeing the client still arrive (on the control
     * stream and on a channel); then the room sees b go at once. */
    SbRaiseOptions on5 = {0};
    on5.reliable = 1;
    on5.channel = 5;
    sb_raise_event(b, 30, S("last words"), 0, 1);
    sb_raise_event_with(b, 31, S("on channel 5"), &on5);
    sb_client_free(b);
    /* Channel 5's event and the leave come on different streams: in either order. */
    int got30 = 0, got31 = 0, gone = 0;
    for (int i = 0; i < 5000 && !(got30 && got31 && gone); i++) {
        SbEvent x;
        int r = sb_poll(a, &x);
        if (r < 0) fail("sb_poll");
        if (r == 0) { nap(); continue; }
        if (x.kind == SB_EVENT_EVENT && x.code == 30) got30 = 1;
        if (x.kind == SB_EVENT_EVENT && x.code == 31) got31 = 1;
        if (x.kind == SB_EVENT_ACTOR_LEFT) {
            if (x.actor != b_again) fail("b went");
            gone = 1;
        }
    }
    if (!got30 || !got31 || !gone) fail("b's last reliable events arrived, and b went");

    sb_client_free(a);
    printf("ok\n");
    return 0;
}
