// What the C# test programs share: failing, and polling clients until a condition
// holds, as a game loop would each frame.

using System;
using System.Threading;
using Switchboard;

static class Harness
{
    public static void Fail(string what) { Console.Error.WriteLine("FAIL: " + what); Environment.Exit(1); }

    // Polls the clients until cond holds (5 s at most).
    public static void WaitFor(Func<bool> cond, string what, params SwitchboardClient[] clients)
    {
        for (int i = 0; i < 5000; i++)
        {
            foreach (var c in clients) c.Poll();
            if (cond()) return;
            Thread.Sleep(1);
        }
        Fail(what);
    }
}
