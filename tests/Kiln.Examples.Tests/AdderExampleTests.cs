using System;
using System.Diagnostics;
using System.IO;
using System.Reflection;

namespace Kiln.Examples.Tests;

/// <summary>The README's main job: the Adder example with its defaults reaches its target (exit code 0, "PASS").</summary>
public sealed class AdderExampleTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async System.Threading.Tasks.Task The_adder_learns_two_digit_addition_to_99_percent_on_held_out_problems()
    {
        string configuration = typeof(AdderExampleTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Compiler.sln"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("repository root");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(root, "examples", "Adder", "bin", configuration, "net10.0", "Adder.dll"));
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        foreach (var line in stdout.Split('\n'))
            if (!line.StartsWith("step ", StringComparison.Ordinal)) output.WriteLine(line);
        Assert.True(p.ExitCode == 0, $"Adder exited {p.ExitCode}:\n{stdout}\n{await stderr}");
        Assert.Contains("PASS: held-out exact match ≥ 99%", stdout);
    }
}
