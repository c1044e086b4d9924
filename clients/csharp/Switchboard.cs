// Switchboard's client for C# (Unity, Godot C#, .NET, Mono): P/Invoke over the C API of
// the native library `switchboard_ffi` (libswitchboard_ffi.so / .dylib,
// switchboard_ffi.dll). Call Poll() once a frame from the game loop: the events are raised
// there, on the caller's thread, never from another one. See clients/README.md.

using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Switchboard
{
    /// <summary>Who receives an event.</summary>
    public enum Receivers : byte { Others = 0, All = 1, MasterClient = 2, Host = 3 }

    /// <summary>Which call an error answers (SB_OP_* in switchboard.h).</summary>
    public enum Op : uint { Connect = 0, Authenticate = 1, CreateGame = 2, JoinGame = 3, Lobby = 4, Leave = 5, Send = 6, Room = 7 }

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
    }

    internal static class Native
    {
        const string Lib = "switchboard_ffi";

        [DllImport(Lib)] public static extern UIntPtr sb_last_error(byte[] buf, UIntPtr cap);
        [DllImport(Lib)] public static extern int sb_client_connect(byte[] master, UIntPtr masterLen, byte[] ca, UIntPtr caLen, out ClientHandle client);
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
    public sealed class SwitchboardClient : IDisposable
    {
        readonly ClientHandle handle;

        public event Action Connected;
        public event Action<string> Authenticated;
        public event Action<bool, int> GameList;
        /// <summary>game, own actor number, master client, actors in the room.</summary>
        public event Action<string, uint, uint, uint> Joined;
        public event Action<uint> ActorJoined;
        /// <summary>actor, inactive (may come back), master client now.</summary>
        public event Action<uint, bool, uint> ActorLeft;
        /// <summary>sender, code, payload (the only allocation per received event).</summary>
        public event Action<uint, byte, byte[]> EventReceived;
        /// <summary>target (0: the room), sender.</summary>
        public event Action<uint, uint> PropertiesChanged;
        public event Action<uint> MasterClientChanged;
        public event Action Left;
        /// <summary>the call, the protocol's result code (docs/PROTOCOL.md 9.1; 0: local), message.</summary>
        public event Action<Op, int, string> Error;
        /// <summary>room (else master), close code (-1: none), reason.</summary>
        public event Action<bool, int, string> Disconnected;
        /// <summary>Another room event: its RoomEvent variant number (docs/PROTOCOL.md 6.2).</summary>
        public event Action<int> OtherRoomEvent;

        static byte[] Utf8(string s) { return s == null ? null : Encoding.UTF8.GetBytes(s); }
        static UIntPtr Len(byte[] b) { return (UIntPtr)(b == null ? 0 : b.Length); }

        SwitchboardClient(ClientHandle h) { handle = h; }

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
            Native.Check(Native.sb_authenticate(handle, u, Len(u), t, Len(t)));
        }

        public void CreateGame(string name, uint maxPlayers)
        {
            var n = Utf8(name);
            Native.Check(Native.sb_create_game(handle, n, Len(n), maxPlayers));
        }

        public void JoinGame(string name, bool rejoin = false)
        {
            var n = Utf8(name);
            Native.Check(Native.sb_join_game(handle, n, Len(n), (byte)(rejoin ? 1 : 0)));
        }

        public void Leave(bool willComeBack = false)
        {
            Native.Check(Native.sb_leave(handle, (byte)(willComeBack ? 1 : 0)));
        }

        public void RaiseEvent(byte code, byte[] data, bool reliable, Receivers receivers = Receivers.Others)
        {
            Native.Check(Native.sb_raise_event(handle, code, data, Len(data), (byte)receivers, (byte)(reliable ? 1 : 0)));
        }

        public void SetProperty(uint target, string key, long value)
        {
            var k = Utf8(key);
            Native.Check(Native.sb_set_property_int(handle, target, k, Len(k), value));
        }

        public void SetProperty(uint target, string key, string value)
        {
            var k = Utf8(key);
            var v = Utf8(value);
            Native.Check(Native.sb_set_property_str(handle, target, k, Len(k), v, Len(v)));
        }

        static string Text(ref SbEvent e)
        {
            var n = (int)e.TextLen;
            if (n == 0) return "";
            var b = new byte[n];
            Marshal.Copy(e.Text, b, 0, n);
            return Encoding.UTF8.GetString(b);
        }

        /// <summary>Raises the events that happened since the last call (at most max); returns how many.</summary>
        public int Poll(int max = 256)
        {
            int n = 0;
            SbEvent e;
            while (n < max)
            {
                int r = Native.sb_poll(handle, out e);
                Native.Check(r);
                if (r == 0) break;
                n++;
                switch (e.Kind)
                {
                    case 1: if (Connected != null) Connected(); break;
                    case 2: if (Authenticated != null) Authenticated(Text(ref e)); break;
                    case 3: if (GameList != null) GameList(e.Flags != 0, (int)e.Count); break;
                    case 4: if (Joined != null) Joined(Text(ref e), e.Actor, e.Sender, e.Count); break;
                    case 5: if (ActorJoined != null) ActorJoined(e.Actor); break;
                    case 6: if (ActorLeft != null) ActorLeft(e.Actor, e.Flags != 0, e.Sender); break;
                    case 7:
                        if (EventReceived != null)
                        {
                            var data = new byte[(int)e.DataLen];
                            if (data.Length > 0) Marshal.Copy(e.Data, data, 0, data.Length);
                            EventReceived(e.Sender, (byte)e.Code, data);
                        }
                        break;
                    case 8: if (PropertiesChanged != null) PropertiesChanged(e.Actor, e.Sender); break;
                    case 9: if (MasterClientChanged != null) MasterClientChanged(e.Actor); break;
                    case 10: if (Left != null) Left(); break;
                    case 11: if (Error != null) Error((Op)e.Flags, e.Code, Text(ref e)); break;
                    case 12: if (Disconnected != null) Disconnected(e.Flags != 0, e.Code, Text(ref e)); break;
                    case 13: if (OtherRoomEvent != null) OtherRoomEvent(e.Code); break;
                }
            }
            return n;
        }

        /// <summary>Makes the native library panic inside; it must come back as an exception.</summary>
        public static void DebugPanic() { Native.Check(Native.sb_debug_panic()); }

        public void Dispose() { handle.Dispose(); }
    }
}
