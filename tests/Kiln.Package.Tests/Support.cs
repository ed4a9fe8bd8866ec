using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace Kiln.Package.Tests;

/// <summary>Files of the source tree, found by walking up from the test assembly.</summary>
internal static class RepoFiles
{
    private static readonly Lazy<string> RootDirectory = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Compiler.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"The repository root (the folder with Compiler.sln) is not above {AppContext.BaseDirectory}.");
    });

    public static string Root => RootDirectory.Value;

    public static string Path(string relative) => System.IO.Path.Combine(Root, relative.Replace('/', System.IO.Path.DirectorySeparatorChar));

    /// <summary>The configuration this test assembly was built in; the packages are packed from the same one.</summary>
    public static string Configuration =>
        typeof(RepoFiles).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
}

/// <summary>One command a test ran: its arguments, exit code, combined output and duration.</summary>
public sealed record CommandRun(string Command, int ExitCode, string Output, TimeSpan Elapsed)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>The MSBuild warnings in the output, as their codes (CS8618, KILNB001, NU1603, …), without duplicates.</summary>
    public IReadOnlyList<string> WarningCodes =>
        Regex.Matches(Output, @"warning (?<code>[A-Z]+[0-9]+)").Select(m => m.Groups["code"].Value).Distinct().ToList();

    public override string ToString() => $"`{Command}` exited {ExitCode} after {Elapsed.TotalSeconds:0.0} s:\n{Output}";

    /// <summary>A step that did not run because an earlier one failed.</summary>
    public static CommandRun NotRun(string command, string why) => new(command, -1, "not run: " + why, TimeSpan.Zero);
}

/// <summary>Runs processes the way a user's shell would, with output captured and a time limit.</summary>
internal static class Shell
{
    public static CommandRun Run(string workingDirectory, string file, IEnumerable<string> arguments, IDictionary<string, string>? environment = null, int timeoutSeconds = 600)
    {
        var psi = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        // The test host's own MSBuild/SDK settings must not leak into the user's builds.
        foreach (var name in new[] { "MSBuildSDKsPath", "MSBUILD_EXE_PATH", "MSBuildExtensionsPath", "DOTNET_HOST_PATH", "VSTEST_HOST_DEBUG" })
            psi.Environment.Remove(name);
        if (environment is not null)
            foreach (var (k, v) in environment) psi.Environment[k] = v;
        var output = new StringBuilder();
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeoutSeconds * 1000))
        {
            process.Kill(entireProcessTree: true);
            lock (output) output.AppendLine($"(killed after {timeoutSeconds} s)");
        }
        process.WaitForExit();
        string text;
        lock (output) text = output.ToString();
        return new CommandRun(file + " " + string.Join(' ', psi.ArgumentList), process.HasExited ? process.ExitCode : -1, text, clock.Elapsed);
    }

    public static CommandRun Dotnet(string workingDirectory, params string[] arguments) => Run(workingDirectory, "dotnet", arguments);
}
