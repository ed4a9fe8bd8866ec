using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using Xunit;

namespace Kiln.Runtime.Tests;

/// <summary>Skips a test, with the reason, when Open MPI's <c>mpirun</c> is not on the PATH.</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute()
    {
        if (MpiProcessTests.MpiRun() is null) Skip = "Open MPI's mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev); the MPI process tests need it.";
    }
}

/// <summary>
/// Data parallelism as separate processes under <c>mpirun -np 4</c> (the probe app tests/Kiln.Parallel.Probe) gives the
/// losses and parameters of the same run on four simulated in-process ranks.
/// </summary>
public sealed class MpiProcessTests(Xunit.Abstractions.ITestOutputHelper output)
{
    internal static string? MpiRun() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    private static string Probe()
    {
        string configuration = typeof(MpiProcessTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Kiln.Parallel.Probe", "bin", configuration, "net10.0", "Kiln.Parallel.Probe.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("Kiln.Parallel.Probe.dll was not found above the test assembly; build tests/Kiln.Parallel.Probe.");
    }

    private string Run(string file, params string[] args) => RunArgs(file, args);

    private string RunArgs(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(180_000)) { p.Kill(true); throw new TimeoutException(file + " " + string.Join(' ', args)); }
        output.WriteLine($"$ {file} {string.Join(' ', args)}\n{stdout}{stderr.Result}");
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)} exited {p.ExitCode}:\n{stdout}\n{stderr.Result}");
        return stdout;
    }

    /// <summary>The numbers of the probe's "step s loss L" and "params S" lines, in order.</summary>
    private static double[] Figures(string stdout) => stdout.Split('\n')
        .Select(l => l.Contains("step ", StringComparison.Ordinal) ? l[(l.IndexOf("loss ", StringComparison.Ordinal) + 5)..] : l.Contains("params ", StringComparison.Ordinal) ? l[(l.IndexOf("params ", StringComparison.Ordinal) + 7)..] : null)
        .Where(s => s is not null).Select(s => double.Parse(s!.Trim(), CultureInfo.InvariantCulture)).ToArray();

    [MpiFact]
    public void Four_mpi_processes_train_like_four_simulated_ranks_data_parallel_and_with_tensor_or_pipeline_parallelism()
    {
        foreach (var options in new[] { new[] { "--zero=0" }, new[] { "--zero=2" }, new[] { "--zero=1", "--tensor=2" }, new[] { "--zero=1", "--pipeline=2" } })
        {
            var simulated = Figures(Run("dotnet", new[] { Probe(), "simulate", "4" }.Concat(options).ToArray()));
            var mpiOutput = Run(MpiRun()!, new[] { "-np", "4", "--allow-run-as-root", "--oversubscribe", "dotnet", Probe(), "mpi" }.Concat(options).ToArray());
            var mpi = Figures(mpiOutput);
            string what = string.Join(' ', options);
            Assert.Equal(5, simulated.Length);
            Assert.Equal(simulated.Length, mpi.Length);
            if (options.Contains("--tensor=2")) Assert.Contains("engine mpi ranks 4 (data 2 × tensor 2)", mpiOutput);
            if (options.Contains("--pipeline=2")) Assert.Contains("engine mpi ranks 4 (data 2 × pipeline 2)", mpiOutput);
            // MPI may add the ranks' values in another order than rank order: equal to fp32 rounding.
            for (int i = 0; i < mpi.Length; i++)
                Assert.True(Math.Abs(mpi[i] - simulated[i]) <= 1e-6 * Math.Abs(simulated[i]), $"{what} figure {i}: mpi {mpi[i]:R} vs simulated {simulated[i]:R}");
        }
    }

    [Fact]
    public void Tensor_and_pipeline_parallel_ranks_of_the_probe_train_like_one_rank()
    {
        // Simulated only (no MPI needed): the probe's models split over 2 tensor ranks or 2 stages (× 2 data) follow one rank on the whole batch.
        foreach (var axis in new[] { "--tensor=", "--pipeline=" })
        {
            var one = Figures(Run("dotnet", Probe(), "simulate", "1", axis + "1"));
            var split = Figures(Run("dotnet", Probe(), "simulate", "4", axis + "2"));
            Assert.Equal(one.Length, split.Length);
            for (int i = 0; i < one.Length; i++)
                Assert.True(Math.Abs(split[i] - one[i]) <= 1e-5 * Math.Abs(one[i]), $"{axis}2 figure {i}: 2 × 2 ranks {split[i]:R} vs one rank {one[i]:R}");
        }
    }
}
