// Switchboard's client for C# (Unity, Godot C#, .NET, Mono): P/Invoke over the C API of
// the native library `switchboard_ffi` (libswitchboard_ffi.so / .dylib,
// switchboard_ffi.dll). Call Poll() once a frame from the game loop: the events are raised
// there, on the caller's thread, never from another one. See clients/README.md.

using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace Switchboard
{
    /// <summary>Who receives an event.</summary>
    public enum Receivers : byte { Others = 0, All = 1, MasterClient = 2, Host = 3 }

    /// <summary>Which call an error answers (SB_OP_* in switchboard.h).</summary>
    public enum Op : uint { Connect = 0, Authenticate = 1, CreateGame = 2, JoinGame = 3, Lobby = 4, Leave = 5, Send = 6, Room = 7 }

    /// <summary>Who has authority in a room (SB_MODE_* in switchboard.h; docs/PROTOCOL.md 15).</summary>
    public enum RoomMode : uint { Relay = 0, Host = 1, Server = 2, Shared = 3 }

    /// <summary>Why the host changed (SB_HOST_*).</summary>
    public enum HostChangeReason : uint { Left = 0, Inactive = 1, HandedOver = 2, Returned = 3 }

    /// <summary>Flags of a network object (SB_SPAWN_*).</summary>
    [Flags]
    public enum SpawnFlags : uint { None = 0, AllowOverride = 1, DespawnOnLeave = 2, MasterClientObject = 4 }

    /// <summary>The room's event cache (docs/PROTOCOL.md 6.1, EventCaching).</summary>
    public enum EventCache : byte { None = 0, Add = 1, AddGlobal = 2, Remove = 3, RemoveOfActorsLeft = 4 }

    /// <summary>How RaiseEvent sends an event: the defaults are "to the others, unreliable".</summary>
    public sealed class RaiseOptions
    {
        public Receivers Receivers = Receivers.Others;
        public bool Reliable;
        /// <summary>Reliable channel 0 to 15.</summary>
        public byte Channel;
        /// <summary>Interest group 1 to 255 (0: none).</summary>
        public byte Group;
        public EventCache Cache = EventCache.None;
        /// <summary>Explicit recipients (null: by Receivers or Group).</summary>
        public uint[] Targets;
    }

    /// <summary>A room's options for CreateGame and JoinRandom (docs/PROTOCOL.md, RoomOptions).</summary>
    public sealed class RoomOptions
    {
        public uint MaxPlayers;
        public RoomMode Mode = RoomMode.Relay;
        public bool IsOpen = true;
        public bool IsVisible = true;
        /// <summary>(Server rooms) the authority approves each join (JoinRequested).</summary>
        public bool JoinApproval;
        public bool PublishUserId;
        /// <summary>Any actor may set any property (else only the owner and the master client).</summary>
        public bool OpenProperties;
        /// <summary>How long a player who left may come back, ms (-1: as long as the room lives).</summary>
        public int PlayerTtlMs;
        public uint EmptyRoomTtlMs;
        /// <summary>The unreliable flush window, ms (-1: the server's default; 0: at once).</summary>
        public int FlushWindowMs = -1;
        /// <summary>The lobby the room is listed in (null: the default lobby).</summary>
        public string Lobby;
        public bool LobbySql;
        /// <summary>The room's first properties: null, bool, integers, float/double, string or byte[].</summary>
        public Dictionary<string, object> Properties;
        /// <summary>The keys of the properties its lobby lists (an SQL lobby matches on them, e.g. "C0").</summary>
        public string[] LobbyProperties;
        /// <summary>Setting a property to null deletes it (else it keeps a null value, as in Photon by default).</summary>
        public bool DeleteNullProperties;
    }

    /// <summary>How the host changed (HostChanged).</summary>
    public sealed class HostChange
    {
        public uint Host, Previous;
        public HostChangeReason Reason;
        /// <summary>The snapshot handed to this client as the new host (null: none, or not the new host).</summary>
        public byte[] Snapshot;
        public ulong SnapshotAgeMs;
        /// <summary>How many replayed events follow (to the new host).</summary>
        public uint Replay;
        /// <summary>Whether the replay lost its oldest events.</summary>
        public bool ReplayTruncated;
    }

    /// <summary>An actor of a room, as a joiner sees it.</summary>
    public sealed class ActorInfo
    {
        public uint Actor;
        public bool Inactive;
        public string UserId;
        public Dictionary<string, object> Properties;
    }

    /// <summary>The room this client joined.</summary>
    public sealed class RoomInfo
    {
        public string Game;
        public uint Actor, MasterClient, Host;
        public RoomMode Mode;
        public ActorInfo[] Actors;
        public Dictionary<string, object> Properties;
    }

    /// <summary>A game of a lobby's list.</summary>
    public sealed class GameInfo
    {
        public string Name;
        public bool Removed, IsOpen;
        public uint PlayerCount, MaxPlayers;
        public Dictionary<string, object> Properties;
    }

    /// <summary>A network object of a Shared room, as spawned.</summary>
    public sealed class NetworkObject
    {
        public uint Object, TypeId, Parent, StateAuthority, InputAuthority;
        public SpawnFlags Flags;
        public ulong Tick;
        public byte[] State;
    }

    /// <summary>A call the native library refused at once (bad argument, caught panic).</summary>
    public sealed class SwitchboardException : Exception
    {
        public readonly int Code;
        public SwitchboardException(int code, string message) : base(message) { Code = code; }
    }

    /// <summary>The native handle, freed exactly once.</summary>
    public sealed class ClientHandle : SafeHandle
    {
        public ClientHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle() { Native.sb_client_free(handle); return true; }
    }

    /// <summary>SbEvent of switchboard.h, blittable: one lives on the stack per Poll.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SbEvent
    {
        public uint Kind;
        public int Code;
        public uint Actor;
        public uint Sender;
        public uint Flags;
        public uint Count;
        public IntPtr Data;
        public UIntPtr DataLen;
        public IntPtr Text;
        public UIntPtr TextLen;
        public uint Extra;
        public ulong Tick;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SbProperty
    {
        public IntPtr Key;
        public UIntPtr KeyLen;
        public uint Kind;
        public long IntValue;
        public double FloatValue;
        public IntPtr Data;
        public UIntPtr DataLen;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SbActor
    {
        public uint Actor;
        public uint Inactive;
        public IntPtr UserId;
        public UIntPtr UserIdLen;
        public uint PropertyCount;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SbGame
    {
        public IntPtr Name;
        public UIntPtr NameLen;
        public uint Removed, IsOpen, PlayerCount, MaxPlayers, PropertyCount;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SbObject
    {
        public uint Object, TypeId, Parent, StateAuthority, InputAuthority, Flags;
        public ulong Tick;
        public IntPtr State;
        public UIntPtr StateLen;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SbRaiseOptions
    {
        public byte Receivers, Reliable, Channel, Group, Cache;
        public IntPtr Targets;
        public UIntPtr TargetCount;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SbRoomOptions
    {
        public uint MaxPlayers;
        public uint Mode;
        public byte IsOpen, IsVisible, JoinApproval, PublishUserId, OpenProperties;
        public int PlayerTtlMs;
        public uint EmptyRoomTtlMs;
        public int FlushWindowMs;
        public IntPtr Lobby;
        public UIntPtr LobbyLen;
        public byte LobbySql;
        public IntPtr Properties;
        public UIntPtr PropertyCount;
        public IntPtr LobbyProperties;
        public UIntPtr LobbyPropertyCount;
        public byte DeleteNullProperties;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SbText
    {
        public IntPtr Text;
        public UIntPtr Len;
    }

    /// <summary>Unmanaged copies of what a call reads through pointers (properties, keys), freed after it.</summary>
    internal sealed class Unmanaged : IDisposable
    {
        readonly List<IntPtr> blocks = new List<IntPtr>();

        IntPtr Alloc(int n) { var p = Marshal.AllocHGlobal(Math.Max(n, 1)); blocks.Add(p); return p; }

        // Never null, even for no bytes: the library reads null as "absent".
        IntPtr Copy(byte[] b)
        {
            var p = Alloc(b.Length);
            Marshal.Copy(b, 0, p, b.Length);
            return p;
        }

        public IntPtr Properties(IDictionary<string, object> props, out UIntPtr count)
        {
            count = UIntPtr.Zero;
            if (props == null || props.Count == 0) return IntPtr.Zero;
            int size = Marshal.SizeOf(typeof(SbProperty));
            var array = Alloc(size * props.Count);
            int i = 0;
            foreach (var kv in props)
            {
                var key = Encoding.UTF8.GetBytes(kv.Key ?? "");
                var p = new SbProperty { Key = Copy(key), KeyLen = (UIntPtr)key.Length };
                object v = kv.Value;
                if (v == null) p.Kind = 0;
                else if (v is bool) { p.Kind = 1; p.IntValue = (bool)v ? 1 : 0; }
                else if (v is long || v is int || v is short || v is sbyte || v is byte || v is ushort || v is uint) { p.Kind = 2; p.IntValue = Convert.ToInt64(v); }
                else if (v is double || v is float) { p.Kind = 3; p.FloatValue = Convert.ToDouble(v); }
                else if (v is string) { var b = Encoding.UTF8.GetBytes((string)v); p.Kind = 4; p.Data = Copy(b); p.DataLen = (UIntPtr)b.Length; }
                else if (v is byte[]) { var b = (byte[])v; p.Kind = 5; p.Data = Copy(b); p.DataLen = (UIntPtr)b.Length; }
                else throw new ArgumentException("property " + kv.Key + ": a " + v.GetType().Name + " is not a property value");
                Marshal.StructureToPtr(p, new IntPtr(array.ToInt64() + (long)i * size), false);
                i++;
            }
            count = (UIntPtr)props.Count;
            return array;
        }

        public IntPtr Texts(string[] texts, out UIntPtr count)
        {
            count = UIntPtr.Zero;
            if (texts == null || texts.Length == 0) return IntPtr.Zero;
            int size = Marshal.SizeOf(typeof(SbText));
            var array = Alloc(size * texts.Length);
            for (int i = 0; i < texts.Length; i++)
            {
                var b = Encoding.UTF8.GetBytes(texts[i] ?? "");
                Marshal.StructureToPtr(new SbText { Text = Copy(b), Len = (UIntPtr)b.Length }, new IntPtr(array.ToInt64() + (long)i * size), false);
            }
            count = (UIntPtr)texts.Length;
            return array;
        }

        public void Dispose()
        {
            foreach (var b in blocks) Marshal.FreeHGlobal(b);
            blocks.Clear();
        }
    }

    internal static class Native
    {
#if UNITY_IOS && !UNITY_EDITOR
        // iOS links the static library into the app.
        const string Lib = "__Internal";
#else
        const string Lib = "switchboard_ffi";
#endif

        [DllImport(Lib)] public static extern UIntPtr sb_last_error(byte[] buf, UIntPtr cap);
        [DllImport(Lib)] public static extern int sb_client_connect(byte[] master, UIntPtr masterLen, byte[] ca, UIntPtr caLen, out ClientHandle client);
        [DllImport(Lib)] public static extern int sb_client_connect_pem(byte[] master, UIntPtr masterLen, byte[] pem, UIntPtr pemLen, out ClientHandle client);
        [DllImport(Lib)] public static extern UIntPtr sb_result_code_name(int code, byte[] buf, UIntPtr cap);
        [DllImport(Lib)] public static extern void sb_client_free(IntPtr client);
        [DllImport(Lib)] public static extern int sb_authenticate(ClientHandle c, byte[] user, UIntPtr userLen, byte[] token, UIntPtr tokenLen);
        [DllImport(Lib)] public static extern int sb_create_game(ClientHandle c, byte[] name, UIntPtr nameLen, uint maxPlayers);
        [DllImport(Lib)] public static extern int sb_join_game(ClientHandle c, byte[] name, UIntPtr nameLen, byte rejoin);
        [DllImport(Lib)] public static extern int sb_leave(ClientHandle c, byte willComeBack);
        [DllImport(Lib)] public static extern int sb_raise_event(ClientHandle c, byte code, byte[] data, UIntPtr len, byte receivers, byte reliable);
        [DllImport(Lib)] public static extern int sb_set_property_int(ClientHandle c, uint target, byte[] key, UIntPtr keyLen, long value);
        [DllImport(Lib)] public static extern int sb_set_property_str(ClientHandle c, uint target, byte[] key, UIntPtr keyLen, byte[] value, UIntPtr valueLen);
        [DllImport(Lib)] public static extern int sb_poll(ClientHandle c, out SbEvent ev);
        [DllImport(Lib)] public static extern int sb_debug_panic();
        [DllImport(Lib)] public static extern int sb_raise_event_with(ClientHandle c, byte code, byte[] data, UIntPtr len, ref SbRaiseOptions how);
        [DllImport(Lib)] public static extern int sb_change_groups(ClientHandle c, byte removeAll, byte[] remove, UIntPtr removeLen, byte[] add, UIntPtr addLen);
        [DllImport(Lib)] public static extern int sb_authenticate_server(ClientHandle c, byte[] name, UIntPtr nameLen, byte[] secret, UIntPtr secretLen);
        [DllImport(Lib)] public static extern int sb_create_game_with(ClientHandle c, byte[] name, UIntPtr nameLen, ref SbRoomOptions options);
        [DllImport(Lib)] public static extern int sb_join_random(ClientHandle c, byte[] lobby, UIntPtr lobbyLen, byte lobbySql, byte[] filter, UIntPtr filterLen, uint maxPlayers, IntPtr expected, UIntPtr expectedCount, ref SbRoomOptions createIfNone);
        [DllImport(Lib, EntryPoint = "sb_join_random")] public static extern int sb_join_random_only(ClientHandle c, byte[] lobby, UIntPtr lobbyLen, byte lobbySql, byte[] filter, UIntPtr filterLen, uint maxPlayers, IntPtr expected, UIntPtr expectedCount, IntPtr createIfNone);
        [DllImport(Lib)] public static extern int sb_set_properties(ClientHandle c, uint target, IntPtr props, UIntPtr count);
        [DllImport(Lib)] public static extern int sb_set_actor_properties(ClientHandle c, IntPtr props, UIntPtr count);
        [DllImport(Lib)] public static extern int sb_join_lobby(ClientHandle c, byte[] name, UIntPtr nameLen, byte sql);
        [DllImport(Lib)] public static extern int sb_leave_lobby(ClientHandle c);
        [DllImport(Lib)] public static extern int sb_set_property_bytes(ClientHandle c, uint target, byte[] key, UIntPtr keyLen, byte[] value, UIntPtr valueLen);
        [DllImport(Lib)] public static extern int sb_set_master_client(ClientHandle c, uint actor, uint expected);
        [DllImport(Lib)] public static extern int sb_approve_join(ClientHandle c, uint request, byte approve, byte[] reason, UIntPtr reasonLen);
        [DllImport(Lib)] public static extern int sb_upload_snapshot(ClientHandle c, byte[] data, UIntPtr len);
        [DllImport(Lib)] public static extern int sb_spawn(ClientHandle c, uint typeId, uint parent, ulong tick, byte[] state, UIntPtr stateLen, uint flags);
        [DllImport(Lib)] public static extern int sb_despawn(ClientHandle c, uint obj);
        [DllImport(Lib)] public static extern int sb_update_state(ClientHandle c, uint obj, ulong tick, byte[] state, UIntPtr stateLen, byte reliable);
        [DllImport(Lib)] public static extern int sb_request_state_authority(ClientHandle c, uint obj);
        [DllImport(Lib)] public static extern int sb_release_state_authority(ClientHandle c, uint obj);
        [DllImport(Lib)] public static extern int sb_assign_input_authority(ClientHandle c, uint obj, uint actor);
        [DllImport(Lib)] public static extern int sb_event_property(ClientHandle c, uint index, out SbProperty p);
        [DllImport(Lib)] public static extern int sb_event_claim(ClientHandle c, uint index, out SbProperty p);
        [DllImport(Lib)] public static extern int sb_event_actor(ClientHandle c, uint index, out SbActor a);
        [DllImport(Lib)] public static extern int sb_event_actor_property(ClientHandle c, uint actorIndex, uint index, out SbProperty p);
        [DllImport(Lib)] public static extern int sb_event_game(ClientHandle c, uint index, out SbGame g);
        [DllImport(Lib)] public static extern int sb_event_game_property(ClientHandle c, uint gameIndex, uint index, out SbProperty p);
        [DllImport(Lib)] public static extern int sb_event_object(ClientHandle c, out SbObject o);

        public static string LastError()
        {
            var n = (int)sb_last_error(null, UIntPtr.Zero);
            var buf = new byte[n];
            sb_last_error(buf, (UIntPtr)n);
            return Encoding.UTF8.GetString(buf);
        }

        public static void Check(int r)
        {
            if (r < 0) throw new SwitchboardException(r, LastError());
        }
    }

    /// <summary>A client of a Switchboard master and its game servers.</summary>
    /// <remarks>Every call is serialized on this client (a lock), so one client may be used from
    /// several threads; events are raised on the thread that calls Poll.</remarks>
    public sealed class SwitchboardClient : IDisposable
    {
        readonly ClientHandle handle;
        readonly object gate = new object();

        public event Action Connected;
        public event Action<string> Authenticated;
        /// <summary>update (else the whole list), the games.</summary>
        public event Action<bool, GameInfo[]> GameList;
        public event Action<RoomInfo> Joined;
        /// <summary>actor, user id (when the room publishes them), its properties.</summary>
        public event Action<uint, string, Dictionary<string, object>> ActorJoined;
        /// <summary>actor, inactive (may come back), master client now.</summary>
        public event Action<uint, bool, uint> ActorLeft;
        /// <summary>sender, code, payload (the only allocation per received event).</summary>
        public event Action<uint, byte, byte[]> EventReceived;
        /// <summary>target (0: the room), sender, what changed (a deleted key's value is null).</summary>
        public event Action<uint, uint, Dictionary<string, object>> PropertiesChanged;
        public event Action<uint> MasterClientChanged;
        public event Action Left;
        /// <summary>the call, the protocol's result code (docs/PROTOCOL.md 9.1; 0: local), message.</summary>
        public event Action<Op, int, string> Error;
        /// <summary>room (else master), close code (-1: none), reason.</summary>
        public event Action<bool, int, string> Disconnected;
        public event Action<HostChange> HostChanged;
        /// <summary>request, user id, rejoin, the joiner's properties, its authentication claims.</summary>
        public event Action<uint, string, bool, Dictionary<string, object>, Dictionary<string, object>> JoinRequested;
        /// <summary>request.</summary>
        public event Action<uint> JoinWithdrawn;
        /// <summary>ms until the room closes unless its dedicated server comes back.</summary>
        public event Action<uint> AuthorityLeft;
        public event Action<NetworkObject> ObjectSpawned;
        /// <summary>object, who despawned it (0: the room).</summary>
        public event Action<uint, uint> ObjectDespawned;
        /// <summary>object, state authority, input authority (0: nobody).</summary>
        public event Action<uint, uint, uint> AuthorityChanged;
        /// <summary>object, sender, tick, state.</summary>
        public event Action<uint, uint, ulong, byte[]> ObjectState;
        /// <summary>a result code and message about something outside a call (e.g. a webhook's refusal).</summary>
        public event Action<int, string> ErrorInfo;
        /// <summary>seconds until the game server closes the room.</summary>
        public event Action<uint> GameServerOffline;
        /// <summary>The answer to RequestStateAuthority / ReleaseStateAuthority: object, its holder now
        /// (0: nobody; another actor: refused).</summary>
        public event Action<uint, uint> StateAuthority;
        /// <summary>Another event: its RoomEvent variant number (docs/PROTOCOL.md 6.2), or -1.</summary>
        public event Action<int> OtherEvent;

        static byte[] Utf8(string s) { return s == null ? null : Encoding.UTF8.GetBytes(s); }
        static UIntPtr Len(byte[] b) { return (UIntPtr)(b == null ? 0 : b.Length); }

        SwitchboardClient(ClientHandle h) { handle = h; }

        /// <summary>Starts connecting to a master ("host:port"), trusting the certificates in PEM text
        /// (where the certificate is not a file: inside an Android package, read it with UnityWebRequest).</summary>
        public static SwitchboardClient ConnectWithCertificate(string master, byte[] caPem)
        {
            var m = Utf8(master);
            ClientHandle h;
            Native.Check(Native.sb_client_connect_pem(m, Len(m), caPem, Len(caPem), out h));
            return new SwitchboardClient(h);
        }

        /// <summary>Starts connecting to a master ("host:port"), trusting the PEM certificate file caPath,
        /// or with caPath null the system's root certificates.</summary>
        public static SwitchboardClient Connect(string master, string caPath)
        {
            var m = Utf8(master);
            var ca = Utf8(caPath);
            ClientHandle h;
            Native.Check(Native.sb_client_connect(m, Len(m), ca, Len(ca), out h));
            return new SwitchboardClient(h);
        }

        public void Authenticate(string userId, string token)
        {
            var u = Utf8(userId);
            var t = Utf8(token ?? "");
            lock (gate) Native.Check(Native.sb_authenticate(handle, u, Len(u), t, Len(t)));
        }

        /// <summary>Authenticates as a dedicated server (the secret the master was configured with).</summary>
        public void AuthenticateServer(string name, string secret)
        {
            var n = Utf8(name);
            var s = Utf8(secret ?? "");
            lock (gate) Native.Check(Native.sb_authenticate_server(handle, n, Len(n), s, Len(s)));
        }

        public void CreateGame(string name, uint maxPlayers)
        {
            CreateGame(name, new RoomOptions { MaxPlayers = maxPlayers });
        }

        /// <summary>Creates a game (name null: the master names it) and joins it.</summary>
        public void CreateGame(string name, RoomOptions options)
        {
            var n = Utf8(name);
            WithOptions(options, (ref SbRoomOptions o) => Native.sb_create_game_with(handle, n, Len(n), ref o));
        }

        public void JoinGame(string name, bool rejoin = false)
        {
            var n = Utf8(name);
            lock (gate) Native.Check(Native.sb_join_game(handle, n, Len(n), (byte)(rejoin ? 1 : 0)));
        }

        /// <summary>Joins a random open game of a lobby (null: the default lobby; sql: an SQL lobby matched
        /// with filter) whose limit is maxPlayers (0: any); with createIfNone, creates one when none matches.</summary>
        public void JoinRandom(string lobby = null, bool sql = false, string filter = null, uint maxPlayers = 0,
            RoomOptions createIfNone = null, Dictionary<string, object> expected = null)
        {
            var l = Utf8(lobby);
            var f = Utf8(filter);
            byte s = (byte)(sql ? 1 : 0);
            using (var u = new Unmanaged())
            {
                UIntPtr n;
                var e = u.Properties(expected, out n);
                if (createIfNone == null)
                    lock (gate) Native.Check(Native.sb_join_random_only(handle, l, Len(l), s, f, Len(f), maxPlayers, e, n, IntPtr.Zero));
                else
                    WithOptions(createIfNone, (ref SbRoomOptions o) => Native.sb_join_random(handle, l, Len(l), s, f, Len(f), maxPlayers, e, n, ref o));
            }
        }

        /// <summary>Joins a lobby: GameList follows (the whole list, then changes).</summary>
        public void JoinLobby(string name = null, bool sql = false)
        {
            var n = Utf8(name);
            lock (gate) Native.Check(Native.sb_join_lobby(handle, n, Len(n), (byte)(sql ? 1 : 0)));
        }

        public void LeaveLobby() { lock (gate) Native.Check(Native.sb_leave_lobby(handle)); }

        public void Leave(bool willComeBack = false)
        {
            lock (gate) Native.Check(Native.sb_leave(handle, (byte)(willComeBack ? 1 : 0)));
        }

        public void RaiseEvent(byte code, byte[] data, bool reliable, Receivers receivers = Receivers.Others)
        {
            lock (gate) Native.Check(Native.sb_raise_event(handle, code, data, Len(data), (byte)receivers, (byte)(reliable ? 1 : 0)));
        }

        /// <summary>Raises an event with every option: targets, an interest group, the cache, a channel.</summary>
        public void RaiseEvent(byte code, byte[] data, RaiseOptions how)
        {
            how = how ?? new RaiseOptions();
            var targets = how.Targets ?? new uint[0];
            var pin = GCHandle.Alloc(targets, GCHandleType.Pinned);
            try
            {
                var o = new SbRaiseOptions
                {
                    Receivers = (byte)how.Receivers,
                    Reliable = (byte)(how.Reliable ? 1 : 0),
                    Channel = how.Channel,
                    Group = how.Group,
                    Cache = (byte)how.Cache,
                    Targets = pin.AddrOfPinnedObject(),
                    TargetCount = (UIntPtr)targets.Length,
                };
                lock (gate) Native.Check(Native.sb_raise_event_with(handle, code, data, Len(data), ref o));
            }
            finally { pin.Free(); }
        }

        /// <summary>Leaves interest groups (removeAll: every one; else those in remove), then joins those in add.</summary>
        public void ChangeGroups(bool removeAll, byte[] remove, byte[] add)
        {
            lock (gate) Native.Check(Native.sb_change_groups(handle, (byte)(removeAll ? 1 : 0), remove, Len(remove), add, Len(add)));
        }

        public void SetProperty(uint target, string key, long value)
        {
            var k = Utf8(key);
            lock (gate) Native.Check(Native.sb_set_property_int(handle, target, k, Len(k), value));
        }

        public void SetProperty(uint target, string key, string value)
        {
            if (value == null)
            {
                SetProperties(target, new Dictionary<string, object> { { key, null } });
                return;
            }
            var k = Utf8(key);
            var v = Utf8(value);
            lock (gate) Native.Check(Native.sb_set_property_str(handle, target, k, Len(k), v, Len(v)));
        }

        public void SetProperty(uint target, string key, byte[] value)
        {
            var k = Utf8(key);
            lock (gate) Native.Check(Native.sb_set_property_bytes(handle, target, k, Len(k), value, Len(value)));
        }

        /// <summary>Sets several properties at once (null: deleted in a room created with DeleteNullProperties,
        /// else set to null); values: bool, sbyte to long and uint, float/double (read back as long and double),
        /// string, byte[].</summary>
        public void SetProperties(uint target, Dictionary<string, object> properties)
        {
            using (var u = new Unmanaged())
            {
                UIntPtr n;
                var p = u.Properties(properties, out n);
                lock (gate) Native.Check(Native.sb_set_properties(handle, target, p, n));
            }
        }

        /// <summary>This client's actor properties for every later create and join (the others see
        /// them in ActorJoined); nothing is sent now.</summary>
        public void SetActorProperties(Dictionary<string, object> properties)
        {
            using (var u = new Unmanaged())
            {
                UIntPtr n;
                var p = u.Properties(properties, out n);
                lock (gate) Native.Check(Native.sb_set_actor_properties(handle, p, n));
            }
        }

        /// <summary>Makes actor the master client if the master client is still expected.</summary>
        public void SetMasterClient(uint actor, uint expected)
        {
            lock (gate) Native.Check(Native.sb_set_master_client(handle, actor, expected));
        }

        /// <summary>(A Server room's authority) answers a JoinRequested.</summary>
        public void ApproveJoin(uint request, bool approve, string reason = null)
        {
            var r = Utf8(reason);
            lock (gate) Native.Check(Native.sb_approve_join(handle, request, (byte)(approve ? 1 : 0), r, Len(r)));
        }

        /// <summary>(A Host room's host) stores the game's state for the next host (at most 256 KiB).</summary>
        public void UploadSnapshot(byte[] data)
        {
            lock (gate) Native.Check(Native.sb_upload_snapshot(handle, data, Len(data)));
        }

        /// <summary>(Shared rooms) spawns a network object; ObjectSpawned follows for everyone.</summary>
        public void Spawn(uint typeId, byte[] state, ulong tick = 0, uint parent = 0, SpawnFlags flags = SpawnFlags.None)
        {
            lock (gate) Native.Check(Native.sb_spawn(handle, typeId, parent, tick, state, Len(state), (uint)flags));
        }

        public void Despawn(uint obj) { lock (gate) Native.Check(Native.sb_despawn(handle, obj)); }

        /// <summary>(Shared rooms; the state authority) sends an object's new state.</summary>
        public void UpdateState(uint obj, ulong tick, byte[] state, bool reliable)
        {
            lock (gate) Native.Check(Native.sb_update_state(handle, obj, tick, state, Len(state), (byte)(reliable ? 1 : 0)));
        }

        public void RequestStateAuthority(uint obj) { lock (gate) Native.Check(Native.sb_request_state_authority(handle, obj)); }
        public void ReleaseStateAuthority(uint obj) { lock (gate) Native.Check(Native.sb_release_state_authority(handle, obj)); }
        public void AssignInputAuthority(uint obj, uint actor) { lock (gate) Native.Check(Native.sb_assign_input_authority(handle, obj, actor)); }

        delegate int OptionsCall(ref SbRoomOptions o);

        // The lobby's name is pinned for the call: the struct points at it.
        void WithOptions(RoomOptions options, OptionsCall call)
        {
            options = options ?? new RoomOptions();
            var lobby = Utf8(options.Lobby);
            var pin = lobby == null ? default(GCHandle) : GCHandle.Alloc(lobby, GCHandleType.Pinned);
            var u = new Unmanaged();
            try
            {
                UIntPtr propertyCount, lobbyPropertyCount;
                var properties = u.Properties(options.Properties, out propertyCount);
                var lobbyProperties = u.Texts(options.LobbyProperties, out lobbyPropertyCount);
                var o = new SbRoomOptions
                {
                    MaxPlayers = options.MaxPlayers,
                    Mode = (uint)options.Mode,
                    IsOpen = (byte)(options.IsOpen ? 1 : 0),
                    IsVisible = (byte)(options.IsVisible ? 1 : 0),
                    JoinApproval = (byte)(options.JoinApproval ? 1 : 0),
                    PublishUserId = (byte)(options.PublishUserId ? 1 : 0),
                    OpenProperties = (byte)(options.OpenProperties ? 1 : 0),
                    PlayerTtlMs = options.PlayerTtlMs,
                    EmptyRoomTtlMs = options.EmptyRoomTtlMs,
                    FlushWindowMs = options.FlushWindowMs,
                    Lobby = lobby == null ? IntPtr.Zero : pin.AddrOfPinnedObject(),
                    LobbyLen = Len(lobby),
                    LobbySql = (byte)(options.LobbySql ? 1 : 0),
                    Properties = properties,
                    PropertyCount = propertyCount,
                    LobbyProperties = lobbyProperties,
                    LobbyPropertyCount = lobbyPropertyCount,
                    DeleteNullProperties = (byte)(options.DeleteNullProperties ? 1 : 0),
                };
                lock (gate) Native.Check(call(ref o));
            }
            finally
            {
                if (pin.IsAllocated) pin.Free();
                u.Dispose();
            }
        }

        static string Utf8At(IntPtr p, UIntPtr len)
        {
            var n = (int)len;
            if (n == 0) return "";
            var b = new byte[n];
            Marshal.Copy(p, b, 0, n);
            return Encoding.UTF8.GetString(b);
        }

        static byte[] BytesAt(IntPtr p, UIntPtr len)
        {
            var b = new byte[(int)len];
            if (b.Length > 0) Marshal.Copy(p, b, 0, b.Length);
            return b;
        }

        static object ValueOf(ref SbProperty p)
        {
            switch (p.Kind)
            {
                case 1: return p.IntValue != 0;
                case 2: return p.IntValue;
                case 3: return p.FloatValue;
                case 4: return Utf8At(p.Data, p.DataLen);
                case 5: return BytesAt(p.Data, p.DataLen);
                default: return null;
            }
        }

        delegate int PropertyAt(uint index, out SbProperty p);

        static Dictionary<string, object> Properties(PropertyAt at)
        {
            var d = new Dictionary<string, object>();
            SbProperty p;
            for (uint i = 0; at(i, out p) == 1; i++) d[Utf8At(p.Key, p.KeyLen)] = ValueOf(ref p);
            return d;
        }

        Dictionary<string, object> EventProperties()
        {
            return Properties((uint i, out SbProperty p) => Native.sb_event_property(handle, i, out p));
        }

        RoomInfo Room(ref SbEvent e)
        {
            var actors = new ActorInfo[e.Count];
            for (uint i = 0; i < e.Count; i++)
            {
                SbActor a;
                lock (gate) Native.Check(Native.sb_event_actor(handle, i, out a));
                var index = i;
                actors[i] = new ActorInfo
                {
                    Actor = a.Actor,
                    Inactive = a.Inactive != 0,
                    UserId = Utf8At(a.UserId, a.UserIdLen),
                    Properties = Properties((uint k, out SbProperty p) => Native.sb_event_actor_property(handle, index, k, out p)),
                };
            }
            return new RoomInfo
            {
                Game = Utf8At(e.Text, e.TextLen),
                Actor = e.Actor,
                MasterClient = e.Sender,
                Host = e.Extra,
                Mode = (RoomMode)e.Flags,
                Actors = actors,
                Properties = EventProperties(),
            };
        }

        GameInfo[] Games(ref SbEvent e)
        {
            var games = new GameInfo[e.Count];
            for (uint i = 0; i < e.Count; i++)
            {
                SbGame g;
                lock (gate) Native.Check(Native.sb_event_game(handle, i, out g));
                var index = i;
                games[i] = new GameInfo
                {
                    Name = Utf8At(g.Name, g.NameLen),
                    Removed = g.Removed != 0,
                    IsOpen = g.IsOpen != 0,
                    PlayerCount = g.PlayerCount,
                    MaxPlayers = g.MaxPlayers,
                    Properties = Properties((uint k, out SbProperty p) => Native.sb_event_game_property(handle, index, k, out p)),
                };
            }
            return games;
        }

        NetworkObject Spawned()
        {
            SbObject o;
            lock (gate) Native.Check(Native.sb_event_object(handle, out o));
            return new NetworkObject
            {
                Object = o.Object,
                TypeId = o.TypeId,
                Parent = o.Parent,
                StateAuthority = o.StateAuthority,
                InputAuthority = o.InputAuthority,
                Flags = (SpawnFlags)o.Flags,
                Tick = o.Tick,
                State = BytesAt(o.State, o.StateLen),
            };
        }

        /// <summary>Raises the events that happened since the last call (at most max); returns how many.</summary>
        public int Poll(int max = 256)
        {
            int n = 0;
            SbEvent e;
            lock (gate)
            {
                while (n < max && !handle.IsClosed)   // a handler may Dispose the client
                {
                    int r = Native.sb_poll(handle, out e);
                    Native.Check(r);
                    if (r == 0) break;
                    n++;
                    Dispatch(ref e);
                }
            }
            return n;
        }

        void Dispatch(ref SbEvent e)
        {
            switch (e.Kind)
            {
                case 1: if (Connected != null) Connected(); break;
                case 2: if (Authenticated != null) Authenticated(Utf8At(e.Text, e.TextLen)); break;
                case 3: if (GameList != null) GameList(e.Flags != 0, Games(ref e)); break;
                case 4: if (Joined != null) Joined(Room(ref e)); break;
                case 5: if (ActorJoined != null) ActorJoined(e.Actor, Utf8At(e.Text, e.TextLen), EventProperties()); break;
                case 6: if (ActorLeft != null) ActorLeft(e.Actor, e.Flags != 0, e.Sender); break;
                case 7: if (EventReceived != null) EventReceived(e.Sender, (byte)e.Code, BytesAt(e.Data, e.DataLen)); break;
                case 8: if (PropertiesChanged != null) PropertiesChanged(e.Actor, e.Sender, EventProperties()); break;
                case 9: if (MasterClientChanged != null) MasterClientChanged(e.Actor); break;
                case 10: if (Left != null) Left(); break;
                case 11: if (Error != null) Error((Op)e.Flags, e.Code, Utf8At(e.Text, e.TextLen)); break;
                case 12: if (Disconnected != null) Disconnected(e.Flags != 0, e.Code, Utf8At(e.Text, e.TextLen)); break;
                case 13: if (OtherEvent != null) OtherEvent(e.Code); break;
                case 14:
                    if (HostChanged != null)
                        HostChanged(new HostChange
                        {
                            Host = e.Actor,
                            Previous = e.Sender,
                            Reason = (HostChangeReason)e.Flags,
                            Snapshot = (e.Extra & 1) != 0 ? BytesAt(e.Data, e.DataLen) : null,
                            SnapshotAgeMs = (e.Extra & 1) != 0 ? e.Tick : 0,
                            Replay = e.Count,
                            ReplayTruncated = (e.Extra & 2) != 0,
                        });
                    break;
                case 15:
                    if (JoinRequested != null)
                    {
                        var claims = Properties((uint i, out SbProperty p) => Native.sb_event_claim(handle, i, out p));
                        JoinRequested(e.Actor, Utf8At(e.Text, e.TextLen), e.Flags != 0, EventProperties(), claims);
                    }
                    break;
                case 16: if (JoinWithdrawn != null) JoinWithdrawn(e.Actor); break;
                case 17: if (AuthorityLeft != null) AuthorityLeft(e.Count); break;
                case 18: if (ObjectSpawned != null) ObjectSpawned(Spawned()); break;
                case 19: if (ObjectDespawned != null) ObjectDespawned(e.Actor, e.Sender); break;
                case 20: if (AuthorityChanged != null) AuthorityChanged(e.Actor, e.Sender, e.Extra); break;
                case 21: if (ObjectState != null) ObjectState(e.Actor, e.Sender, e.Tick, BytesAt(e.Data, e.DataLen)); break;
                case 22: if (ErrorInfo != null) ErrorInfo(e.Code, Utf8At(e.Text, e.TextLen)); break;
                case 23: if (GameServerOffline != null) GameServerOffline(e.Count); break;
                case 24: if (StateAuthority != null) StateAuthority(e.Actor, e.Sender); break;
            }
        }

        /// <summary>Makes the native library panic inside; it must come back as an exception.</summary>
        public static void DebugPanic() { Native.Check(Native.sb_debug_panic()); }

        /// <summary>Finishes the calls already made (a Leave or reliable event just before still reaches the
        /// room), closes the connections and frees the client; blocks for as long as that takes (tens of ms; at
        /// most about a second when a call still waits for a server). Without Leave first this is a disconnect:
        /// the actor stays inactive for the room's PlayerTtl.</summary>
        public void Dispose() { lock (gate) handle.Dispose(); }

        /// <summary>The name of a protocol result code (docs/PROTOCOL.md 9.1), or "" for an unknown one.</summary>
        public static string ResultCodeName(int code)
        {
            var n = (int)Native.sb_result_code_name(code, null, UIntPtr.Zero);
            var buf = new byte[n];
            if (n > 0) Native.sb_result_code_name(code, buf, (UIntPtr)n);
            return Encoding.UTF8.GetString(buf);
        }
    }
}
