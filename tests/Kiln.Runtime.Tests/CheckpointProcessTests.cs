using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.Json;

namespace Kiln.Runtime.Tests;

/// <summary>
/// Checkpoints across processes, with the probe app (tests/Kiln.Checkpoint.Probe, a generated MLP with dropout): a run
/// resumed in a fresh process equals the uninterrupted run bit for bit, in fp32 and in emulated bf16 with stochastic
/// rounding; and a process killed at random moments while it saves checkpoints always leaves one that loads.
/// </summary>
public sealed class CheckpointProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-checkpoint-process-").FullName;
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public CheckpointProcessTests(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Probe()
    {
        string configuration = typeof(CheckpointProcessTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Kiln.Checkpoint.Probe", "bin", configuration, "net10.0", "Kiln.Checkpoint.Probe.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("Kiln.Checkpoint.Probe.dll was not found above the test assembly; build tests/Kiln.Checkpoint.Probe.");
    }

    private static ProcessStartInfo Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Probe());
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    private static string Run(params string[] args)
    {
        using var p = Process.Start(Start(args))!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("probe " + string.Join(' ', args)); }
        Assert.True(p.ExitCode == 0, $"probe {string.Join(' ', args)} exited {p.ExitCode}:\n{stdout}\n{stderr.Result}");
        return stdout;
    }

    private static string[] Steps(string log) =>
        File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("loss", out _))
            .Select(e => $"{e.GetProperty("step")} {e.GetProperty("loss")} {e.GetProperty("lr")} {e.GetProperty("grad_norm")}").ToArray();

    [Theory]
    [InlineData("Float32")]
    [InlineData("BFloat16")]
    public void A_run_resumed_in_a_fresh_process_equals_the_uninterrupted_run(string precision)
    {
        string full = Directory.CreateDirectory(Path.Combine(_dir, "full")).FullName, resumed = Directory.CreateDirectory(Path.Combine(_dir, "resumed")).FullName;
        string a = Run("train", full, "40", "16", precision);
        string b = Run("train", resumed, "40", "16", precision, Path.Combine(full, "ck-16.safetensors"));
        Assert.StartsWith("params ", a);
        Assert.Equal(a, b);
        Assert.Equal(Steps(Path.Combine(full, "metrics.jsonl")).Skip(16), Steps(Path.Combine(resumed, "metrics.jsonl")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(full, "ck-40.safetensors")), File.ReadAllBytes(Path.Combine(resumed, "ck-40.safetensors")));
        // And the resumed run is not trivially equal: the checkpoint at 16 differs from the one at 40.
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(full, "ck-16.safetensors")), File.ReadAllBytes(Path.Combine(full, "ck-40.safetensors")));
    }

    [Fact]
    public void A_process_killed_while_saving_always_leaves_a_checkpoint_that_loads()
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        string path = Path.Combine(_dir, "ck.safetensors");
        int midSave = 0;
        long lastStep = 0;
        for (int trial = 0; trial < 25; trial++)
        {
            long saved = lastStep;
            int target = rng.Next(1, 40);
            var leftBefore = Directory.GetFiles(_dir, ".ck.safetensors.*.tmp").ToHashSet();
            using (var p = Process.Start(Start("save-loop", path))!)
            {
                int seen = 0;
                while (p.StandardOutput.ReadLine() is { } line)
                {
                    if (line.StartsWith("saved ", StringComparison.Ordinal)) saved = long.Parse(line[6..]);
                    if (!line.StartsWith("saving ", StringComparison.Ordinal)) continue;
                    if (++seen < target) continue;
                    // Kill at a random moment: the loop spends nearly all its time saving (a step takes a fraction of a millisecond).
                    var wait = Stopwatch.StartNew();
                    double delay = rng.NextDouble() * 3;
                    while (wait.Elapsed.TotalMilliseconds < delay) { }
                    p.Kill(entireProcessTree: true);
                    break;
                }
                p.WaitForExit();
            }
            if (Directory.GetFiles(_dir, ".ck.safetensors.*.tmp").Any(f => !leftBefore.Contains(f))) midSave++;
            // The file is whole (the format check covers every byte) and no older than the last save the parent saw complete
            // (the child runs ahead of the parent reading its output, so later saves may have completed too).
            using (var file = SafeTensorsFile.Open(path))
            {
                long step = long.Parse(file.Metadata["step"]);
                Assert.True(step >= saved && step > 0, $"seed {seed}, trial {trial}: the checkpoint is at step {step}, but a save of step {saved} had completed");
                lastStep = step;
            }
            Assert.Equal($"ok step {lastStep}", Run("verify", path).Trim());
        }
        _output.WriteLine($"seed {seed}: 25 kills, {midSave} of them in the middle of a save (a temporary file was left), last step {lastStep}");
        Assert.True(midSave > 0, $"seed {seed}: no kill landed during a save, so the test did not exercise the window it is about");
    }
}
