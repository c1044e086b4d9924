// The second C# test program: the same authority flow as ffi/tests/c/authority.c (a Host
// room with a snapshot handed over, a Shared room's objects, a lobby, a dedicated server
// approving joins), through the C# binding, run by the ffi crate's tests with Mono.
// args: master, CA file, alice's token, bob's token, room prefix, server secret, carol's token.

using System;
using System.Collections.Generic;
using System.Text;
using System.Threading;
using Switchboard;

static class Authority
{
    static byte[] B(string s) { return Encoding.UTF8.GetBytes(s); }
    static string S(byte[] b) { return b == null ? null : Encoding.UTF8.GetString(b); }

    // What one client saw: the latest of each kind.
    class Seen
    {
        public bool Connected, Authenticated, Left;
        public RoomInfo Room;
        public uint JoinedActor, MasterClient;
        public string JoinedUser;
        public Dictionary<string, object> JoinedProps;
        public uint AnsweredObject, AnsweredHolder;
        public Dictionary<string, object> Props;
        public int PropsSeen;
        public uint Host, PreviousHost;
        public HostChangeReason Reason;
        public byte[] Snapshot;
        public NetworkObject Spawned;
        public uint StateObject, StateSender;
        public ulong StateTick;
        public byte[] State;
        public uint AuthorityObject, StateAuthority, Despawned;
        public uint Request;
        public string RequestUser;
        public GameInfo[] Games;
        public int ErrorCode;
        public Op ErrorOp;

        public Seen(SwitchboardClient c)
        {
            c.Connected += () => Connected = true;
            c.Authenticated += u => Authenticated = true;
            c.Joined += r => Room = r;
            c.ActorJoined += (a, user, props) => { JoinedActor = a; JoinedUser = user; JoinedProps = props; };
            c.StateAuthority += (o, holder) => { AnsweredObject = o; AnsweredHolder = holder; };
            c.PropertiesChanged += (target, sender, props) => { Props = props; PropsSeen++; };
            c.MasterClientChanged += a => MasterClient = a;
            c.Left += () => Left = true;
            c.HostChanged += h => { Host = h.Host; PreviousHost = h.Previous; Reason = h.Reason; Snapshot = h.Snapshot; };
            c.ObjectSpawned += o => Spawned = o;
            c.ObjectState += (o, sender, tick, state) => { StateObject = o; StateSender = sender; StateTick = tick; State = state; };
            c.AuthorityChanged += (o, state, input) => { AuthorityObject = o; StateAuthority = state; };
            c.ObjectDespawned += (o, sender) => Despawned = o;
            c.JoinRequested += (request, user, rejoin, props, claims) => { Request = request; RequestUser = user; };
            c.GameList += (update, games) => Games = games;
            c.Error += (op, code, message) => { ErrorOp = op; ErrorCode = code; };
        }
    }

    static SwitchboardClient Start(string master, string ca, out Seen seen)
    {
        var c = SwitchboardClient.Connect(master, ca);
        seen = new Seen(c);
        var s = seen;
        Harness.WaitFor(() => s.Connected, "connected", c);
        return c;
    }

    static void Login(SwitchboardClient c, Seen s, string user, string token)
    {
        c.Authenticate(user, token);
        Harness.WaitFor(() => s.Authenticated, user + " authenticated", c);
    }

    static int Main(string[] args)
    {
        if (args.Length != 7) { Console.Error.WriteLine("usage: Authority MASTER CA TOKEN_A TOKEN_B PREFIX SECRET TOKEN_C"); return 2; }
        string master = args[0], ca = args[1], prefix = args[4], secret = args[5];
        Seen sa, sb, sc, ss;
        var a = Start(master, ca, out sa);
        var b = Start(master, ca, out sb);
        Login(a, sa, "alice", args[2]);
        Login(b, sb, "bob", args[3]);

        // --- Host mode: options, actors, property values, a snapshot handed to the next host.
        var room = prefix + "-host";
        a.CreateGame(room, new RoomOptions { Mode = RoomMode.Host, MaxPlayers = 4, PublishUserId = true });
        Harness.WaitFor(() => sa.Room != null, "a created the host room", a);
        if (sa.Room.Actor != 1 || sa.Room.Mode != RoomMode.Host || sa.Room.Host != 1) Harness.Fail("a hosts the room as actor 1");
        a.SetProperty(0, "map", "dust");
        a.SetProperty(1, "loadout", new byte[] { 1, 0, 2 });
        Harness.WaitFor(() => sa.PropsSeen == 2, "a's properties are set", a);

        b.SetActorProperties(new Dictionary<string, object> { { "team", "red" } });
        b.JoinGame(room);
        Harness.WaitFor(() => sb.Room != null && sa.JoinedActor == 2, "b joined the host room", a, b);
        if (sa.JoinedProps == null || (sa.JoinedProps["team"] as string) != "red") Harness.Fail("bob joined with team=red");
        if (sb.Room.Actor != 2 || sb.Room.Host != 1 || sb.Room.Actors.Length != 2) Harness.Fail("b is actor 2, the host is 1");
        object map;
        if (!sb.Room.Properties.TryGetValue("map", out map) || (map as string) != "dust") Harness.Fail("the room's property map=dust");
        var alice = sb.Room.Actors[0];
        object loadout;
        if (alice.Actor != 1 || alice.UserId != "alice" || !alice.Properties.TryGetValue("loadout", out loadout)
            || !(loadout is byte[]) || ((byte[])loadout).Length != 3 || ((byte[])loadout)[2] != 2)
            Harness.Fail("actor 1 is alice, with her loadout bytes");
        if (sa.JoinedUser != "bob") Harness.Fail("the joiner is bob");

        b.SetProperty(2, "score", -7);
        Harness.WaitFor(() => sa.Props != null && sa.Props.ContainsKey("score"), "a saw b's score", a, b);
        if (!(sa.Props["score"] is long) || (long)sa.Props["score"] != -7) Harness.Fail("score=-7");

        a.UploadSnapshot(B("world-at-tick-30"));
        a.Leave();
        Harness.WaitFor(() => sa.Left && sb.Host == 2, "b became the host", a, b);
        if (sb.PreviousHost != 1 || sb.Reason != HostChangeReason.Left || S(sb.Snapshot) != "world-at-tick-30")
            Harness.Fail("b hosts now, with a's snapshot");
        b.Leave();
        Harness.WaitFor(() => sb.Left, "b left the host room", b);

        // --- Shared mode: objects, their state and authority; the master client moved.
        room = prefix + "-shared";
        sa.Room = null; sb.Room = null;
        b.CreateGame(room, new RoomOptions { Mode = RoomMode.Shared });
        Harness.WaitFor(() => sb.Room != null, "b created the shared room", b);
        if (sb.Room.Mode != RoomMode.Shared) Harness.Fail("a shared room");
        a.JoinGame(room);
        Harness.WaitFor(() => sa.Room != null, "a joined the shared room", a, b);
        uint an = sa.Room.Actor, bn = sb.Room.Actor;

        try { b.Spawn(5, B("s0"), 1, 0, (SpawnFlags)99); Harness.Fail("unknown spawn flags accepted"); }
        catch (SwitchboardException e) { if (e.Code != -2) Harness.Fail("unknown flags: -2, got " + e.Code); }
        b.Spawn(5, B("s0"), 1, 0, SpawnFlags.AllowOverride);
        Harness.WaitFor(() => sa.Spawned != null && sb.Spawned != null, "both saw the spawn", a, b);
        var o = sa.Spawned;
        if (o.TypeId != 5 || o.StateAuthority != bn || o.InputAuthority != bn || o.Flags != SpawnFlags.AllowOverride
            || o.Tick != 1 || S(o.State) != "s0")
            Harness.Fail("the spawned object");

        b.UpdateState(o.Object, 2, B("s1"), true);
        Harness.WaitFor(() => sa.State != null, "a got the new state", a, b);
        if (sa.StateObject != o.Object || sa.StateSender != bn || sa.StateTick != 2 || S(sa.State) != "s1") Harness.Fail("state s1 at tick 2");

        a.RequestStateAuthority(o.Object);
        Harness.WaitFor(() => sb.AuthorityObject == o.Object, "b saw a take the object", a, b);
        if (sb.StateAuthority != an) Harness.Fail("a holds the state authority");
        Harness.WaitFor(() => sa.AnsweredObject == o.Object, "a's request was answered", a, b);
        if (sa.AnsweredHolder != an) Harness.Fail("granted to a");

        b.SetMasterClient(an, bn);
        Harness.WaitFor(() => sa.MasterClient == an, "a is the master client", a, b);

        a.Despawn(o.Object);
        Harness.WaitFor(() => sb.Despawned == o.Object, "b saw the despawn", a, b);

        // --- Lobbies: the shared room is listed with two players; a random join in an empty
        // SQL lobby finds nothing.
        // Carol's client trusts the certificate given as PEM bytes (as on Android).
        var c = SwitchboardClient.ConnectWithCertificate(master, System.IO.File.ReadAllBytes(ca));
        sc = new Seen(c);
        Harness.WaitFor(() => sc.Connected, "carol connected", c);
        Login(c, sc, "carol", args[6]);
        c.JoinLobby();
        Harness.WaitFor(() => sc.Games != null && Array.Exists(sc.Games, g => g.Name == room && g.PlayerCount == 2 && g.IsOpen && !g.Removed),
            "the shared room is listed with 2 players", a, b, c);
        c.LeaveLobby();
        c.JoinRandom("ranked", true, "C0 > 5");
        Harness.WaitFor(() => sc.ErrorCode != 0, "no random match", c);
        if (sc.ErrorCode != 32760 || sc.ErrorOp != Op.JoinGame) Harness.Fail("NoRandomMatchFound (32760), got " + sc.ErrorCode);
        c.Dispose();
        sa.Left = sb.Left = false;
        a.Leave();
        b.Leave();
        Harness.WaitFor(() => sa.Left && sb.Left, "a and b left the shared room", a, b);

        // --- An SQL lobby matches on a room's listed properties; every kind of value.
        room = prefix + "-ranked";
        sa.Room = null; sb.Room = null; sa.Left = sb.Left = false;
        a.CreateGame(room, new RoomOptions
        {
            Lobby = "ranked", LobbySql = true, LobbyProperties = new[] { "C0" },
            Properties = new Dictionary<string, object> { { "C0", 5 } },
            DeleteNullProperties = true,
        });
        Harness.WaitFor(() => sa.Room != null, "a created the ranked room", a);
        b.JoinRandom("ranked", true, "C0 > 3");
        Harness.WaitFor(() => sb.Room != null, "b matched the ranked room", a, b);
        if (sb.Room.Game != room || !(sb.Room.Properties["C0"] is long) || (long)sb.Room.Properties["C0"] != 5) Harness.Fail("b is in the ranked room, C0=5");
        sb.Props = null;
        a.SetProperties(0, new Dictionary<string, object> { { "C0", null }, { "ready", true }, { "speed", 1.5 } });
        Harness.WaitFor(() => sb.Props != null, "b saw null, bool and float", a, b);
        if (sb.Props.Count != 3 || sb.Props["C0"] != null || !(sb.Props["ready"] is bool) || !(bool)sb.Props["ready"]
            || !(sb.Props["speed"] is double) || (double)sb.Props["speed"] != 1.5)
            Harness.Fail("C0 deleted, ready=true, speed=1.5");
        try { a.SetProperties(0, new Dictionary<string, object> { { "when", DateTime.Now } }); Harness.Fail("a DateTime accepted"); }
        catch (ArgumentException) { }
        // Deleted, not kept as null: a joiner sees no C0. An empty key is a key like any other.
        a.SetProperties(0, new Dictionary<string, object> { { "", "empty key" } });
        sb.Left = false;
        b.Leave();
        Harness.WaitFor(() => sb.Left, "b left the ranked room", b);
        sb.Room = null;
        b.JoinGame(room);
        Harness.WaitFor(() => sb.Room != null, "b came back to the ranked room", a, b);
        if (sb.Room.Properties.ContainsKey("C0") || !sb.Room.Properties.ContainsKey("ready")
            || (sb.Room.Properties[""] as string) != "empty key")
            Harness.Fail("C0 is gone, the empty key is there");
        a.Leave();
        b.Leave();
        Harness.WaitFor(() => sa.Left && sb.Left, "a and b left the ranked room", a, b);

        // --- A dedicated server's room with join approval.
        var s = Start(master, ca, out ss);
        s.AuthenticateServer("ds-cs", secret);
        Harness.WaitFor(() => ss.Authenticated, "the server authenticated", s);
        room = prefix + "-server";
        s.CreateGame(room, new RoomOptions { Mode = RoomMode.Server, JoinApproval = true });
        Harness.WaitFor(() => ss.Room != null, "the server created its room", s);
        if (ss.Room.Mode != RoomMode.Server || ss.Room.Host != ss.Room.Actor) Harness.Fail("the server is the room's authority");

        sa.Room = null;
        a.JoinGame(room);
        Harness.WaitFor(() => ss.RequestUser == "alice", "the server was asked about alice", a, s);
        s.ApproveJoin(ss.Request, true);
        Harness.WaitFor(() => sa.Room != null, "alice was let in", a, s);

        sb.ErrorCode = 0;
        b.JoinGame(room);
        Harness.WaitFor(() => ss.RequestUser == "bob", "the server was asked about bob", b, s);
        s.ApproveJoin(ss.Request, false, "banned");
        Harness.WaitFor(() => sb.ErrorCode != 0, "bob was refused", b, s);
        if (sb.ErrorCode != 32692 || sb.ErrorOp != Op.JoinGame) Harness.Fail("JoinNotApproved (32692), got " + sb.ErrorCode);

        // Room operations refused by the room come back as errors with Op.Room.
        sa.ErrorCode = 0;
        a.UploadSnapshot(B("not a host room"));
        Harness.WaitFor(() => sa.ErrorCode != 0, "a snapshot in a server room is refused", a);
        if (sa.ErrorOp != Op.Room) Harness.Fail("a room operation's refusal");

        s.Dispose();
        a.Dispose();
        b.Dispose();
        Console.WriteLine("ok");
        return 0;
    }
}
