using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.Json;
using Kiln;
using Kiln.Runtime;

namespace Kiln.Examples.Tests;

/// <summary>
/// The TextGpt example as a user runs it: train on Tiny Shakespeare with the GPT-2 tokenizer (or, where the shared data
/// is absent, on the example's generated text with bytes), resume to a longer run, sample. Small sizes: this checks the
/// commands, files and continuity, not the quality.
/// </summary>
public sealed class TextGptExampleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-textgpt-").FullName;
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public TextGptExampleTests(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Compiler.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("the repository root is not above the test assembly");
    }

    private string Run(params string[] args)
    {
        string configuration = typeof(TextGptExampleTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir };
        psi.ArgumentList.Add(Path.Combine(Root(), "examples", "TextGpt", "bin", configuration, "net10.0", "TextGpt.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["KILN_NUM_THREADS"] = "2";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        _output.WriteLine($"$ TextGpt {string.Join(' ', args)}\n{string.Join('\n', stdout.Split('\n').Where(l => !l.StartsWith("step ", StringComparison.Ordinal)))}{stderr.Result}");
        Assert.True(p.ExitCode == 0, $"TextGpt {string.Join(' ', args)} exited {p.ExitCode}:\n{stdout}\n{stderr.Result}");
        return stdout;
    }

    [Fact]
    public void Train_resume_and_sample_from_the_command_line()
    {
        string shakespeare = Path.Combine(Root(), "..", "shared", "data", "tinyshakespeare.txt");
        string run = Path.Combine(_dir, "run");
        var common = new[] { "--out", run, "--layers", "1", "--dim", "32", "--heads", "2", "--context", "32", "--batch", "8", "--every", "10", "--device", "cpu" };
        var train = File.Exists(shakespeare)
            ? new[] { "train", shakespeare, "--tokenizer", "gpt2", "--steps", "20" }.Concat(common).ToArray()
            : new[] { "train", "--steps", "20" }.Concat(common).ToArray();
        string first = Run(train);
        Assert.Contains("20 steps (20 in all)", first);
        Assert.Contains("sample (", first);
        string second = Run("resume", "--out", run, "--steps", "30");
        Assert.Contains("Resuming", second);
        Assert.Contains("10 steps (30 in all)", second);
        string sample = Run("sample", "--out", run, "--prompt", "ROMEO:", "--tokens", "12", "--seed", "3");
        Assert.Contains("ROMEO:", sample);
        static string Text(string output) => output[(output.IndexOf('\n', output.IndexOf("sample (", StringComparison.Ordinal)) + 1)..];
        Assert.Equal(Text(sample), Text(Run("sample", "--out", run, "--prompt", "ROMEO:", "--tokens", "12", "--seed", "3"))); // seeded

        // The metrics log holds every step once, across the resume; the plot is a PNG; the checkpoint is at step 30.
        var steps = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("step").GetInt64()).ToArray();
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), steps);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(run, "loss.png")).Take(4));
        using var checkpoint = SafeTensorsFile.Open(Path.Combine(run, "checkpoint.safetensors"));
        Assert.Equal("30", checkpoint.Metadata["step"]);
    }

    [Fact]
    public void Training_on_two_simulated_ranks_and_on_two_by_two_data_and_tensor_ranks_follows_the_one_rank_run()
    {
        // Generated text (no file), bytes, 12 steps: the held-out loss after training on 2 data-parallel ranks, or on 2 data ×
        // 2 tensor ranks, is the one-rank run's (to the 3 printed decimals).
        string Train(string name, params string[] extra) => Run(new[] { "train", "--out", Path.Combine(_dir, name), "--layers", "1", "--dim", "32", "--heads", "2",
            "--context", "16", "--batch", "8", "--every", "6", "--steps", "12", "--device", "cpu" }.Concat(extra).ToArray());
        static string HeldOut(string output) => output[output.IndexOf("held-out loss", StringComparison.Ordinal)..].Split(' ')[2];
        string one = Train("one"), two = Train("two", "--ranks", "2");
        Assert.Contains("2 data-parallel ranks (in-process), 4 sequences each per step", two);
        Assert.Equal(HeldOut(one), HeldOut(two));
        // 2 data × 2 tensor ranks: the same held-out loss; the saved whole model samples like any run's.
        string four = Train("four", "--ranks", "4", "--tensor", "2");
        Assert.Contains("2 data-parallel ranks (in-process), 4 sequences each per step, each 2 tensor-parallel ranks", four);
        Assert.Equal(HeldOut(one), HeldOut(four));
        Assert.Contains("ROMEO:", Run("sample", "--out", Path.Combine(_dir, "four"), "--prompt", "ROMEO:", "--tokens", "8"));
    }
}
