using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Kiln.Runtime.Cuda;

namespace Kiln.Cuda.Emulator;

/// <summary>
/// Builds modules into shared objects with g++ and loads them. Builds are cached by the source's
/// <see cref="GpuKernelSource.Key"/> and a key of the emulator itself (header, flags, compiler version) in
/// <c>{temp}/kiln-emu-{user}/</c>, shared by processes and test runs; a shared object is loaded once per process.
/// </summary>
internal static class EmulatorBuild
{
    /// <summary>g++ options every module is built with. No FMA contraction (the CPU backend rounds every operation);
    /// no strict aliasing (CUDA code reinterprets pointers freely).</summary>
    private static readonly string[] Flags =
    [
        "-std=c++17", "-O1", "-shared", "-fPIC", "-fvisibility=hidden", "-fno-strict-aliasing", "-ffp-contract=off",
        "-DKILN_HOST_EMULATION",
    ];

    private const int ErrorLinesShown = 50;
    private static readonly TimeSpan CompileTimeout = TimeSpan.FromMinutes(5);

    private static readonly Lazy<string> Version = new(ProbeVersion);
    private static readonly Lazy<string> ToolKey = new(ComputeToolKey);
    private static readonly ConcurrentDictionary<string, LoadedLibrary> Loaded = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, object> BuildGates = new(StringComparer.Ordinal);

    /// <summary>The C++ compiler: <c>KILN_EMU_CXX</c> if set, else <c>g++</c>.</summary>
    public static string Compiler => Environment.GetEnvironmentVariable("KILN_EMU_CXX") is { Length: > 0 } cxx ? cxx : "g++";

    /// <summary>The header with the CUDA built-ins, copied next to this assembly.</summary>
    public static string HeaderPath => Path.Combine(Path.GetDirectoryName(typeof(EmulatorBuild).Assembly.Location) ?? AppContext.BaseDirectory, "native", "kiln_cuda_emu.h");

    /// <summary>Where built modules are kept.</summary>
    public static string CacheDirectory
    {
        get
        {
            string user = new(Environment.UserName.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
            return Path.Combine(Path.GetTempPath(), "kiln-emu-" + (user.Length > 0 ? user : "user"));
        }
    }

    /// <summary>The first line of <c>g++ --version</c>; throws <see cref="EmulatorException"/> when the compiler cannot run.</summary>
    public static string CompilerVersion() => Version.Value;

    /// <summary>The loaded shared object of <paramref name="source"/>, building it first unless it is cached.</summary>
    public static LoadedLibrary Load(GpuKernelSource source, IReadOnlyList<KernelDeclaration> kernels)
    {
        string path = Path.Combine(CacheDirectory, source.Key + "-" + ToolKey.Value + ".so");
        if (Loaded.TryGetValue(path, out var library)) return library;
        // One build per module in this process even when tests load it in parallel; a failure is not remembered.
        lock (BuildGates.GetOrAdd(path, _ => new object()))
        {
            if (Loaded.TryGetValue(path, out library)) return library;
            if (!File.Exists(path)) Build(source, kernels, path);
            library = new LoadedLibrary(path);
            Loaded[path] = library;
            return library;
        }
    }

    private static void Build(GpuKernelSource source, IReadOnlyList<KernelDeclaration> kernels, string path)
    {
        Directory.CreateDirectory(CacheDirectory);
        string work = Path.Combine(CacheDirectory, "build-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        string cpp = Path.Combine(work, "module.cpp"), so = Path.Combine(work, "module.so");
        // The source keeps its own line numbers (and NVRTC's file name) in g++'s messages; the dispatch follows it.
        string unit = "#line 1 \"" + source.Name.Replace("\\", "/", StringComparison.Ordinal).Replace("\"", "", StringComparison.Ordinal) + "\"\n"
            + source.Source.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n" + KernelDeclarations.Dispatch(kernels);
        File.WriteAllText(cpp, unit);
        var arguments = new List<string>(Flags);
        arguments.AddRange(source.Defines);
        arguments.AddRange(["-include", HeaderPath, "-o", so, cpp]);
        var (exitCode, output) = Run(Compiler, arguments, work);
        if (exitCode != 0)
        {
            // Keep the failed unit under a stable name (the next failure of the same source overwrites it).
            string kept = Path.Combine(CacheDirectory, "failed", source.Key);
            if (Directory.Exists(kept)) Directory.Delete(kept, recursive: true);
            Directory.CreateDirectory(Path.GetDirectoryName(kept)!);
            Directory.Move(work, kept);
            string keptCpp = Path.Combine(kept, "module.cpp");
            string[] lines = output.Split('\n');
            string shown = string.Join('\n', lines.Take(ErrorLinesShown)) + (lines.Length > ErrorLinesShown ? $"\n… ({lines.Length - ErrorLinesShown} more lines)" : "");
            throw new EmulatorCompileException(
                $"g++ could not compile {source.Name} ({string.Join(' ', source.Defines)}) for the CUDA emulator (exit code {exitCode}). " +
                $"The translation unit is kept at {keptCpp}; the command was: {Compiler} {string.Join(' ', arguments.Select(a => a == cpp ? keptCpp : a))}\n{shown}",
                output, keptCpp);
        }
        // Publish atomically: another process may be building the same module at the same time.
        File.Move(so, path, overwrite: true);
        Directory.Delete(work, recursive: true);
    }

    private static (int ExitCode, string Output) Run(string fileName, IEnumerable<string> arguments, string? workingDirectory)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new EmulatorException($"Could not start {fileName}.");
        }
        catch (Win32Exception e)
        {
            throw new EmulatorException(
                $"The CUDA emulator needs a C++ compiler, but '{fileName}' could not be started ({e.Message}). " +
                "Install g++ (Debian/Ubuntu: apt-get install g++) or point KILN_EMU_CXX at one.", e);
        }
        using (process)
        {
            Task<string> stdout = process.StandardOutput.ReadToEndAsync(), stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(CompileTimeout))
            {
                process.Kill(entireProcessTree: true);
                throw new EmulatorException($"{fileName} did not finish within {CompileTimeout.TotalMinutes} minutes and was stopped.");
            }
            return (process.ExitCode, (stderr.Result + stdout.Result).TrimEnd());
        }
    }

    private static string ProbeVersion()
    {
        var (exitCode, output) = Run(Compiler, ["--version"], null);
        if (exitCode != 0)
            throw new EmulatorException($"'{Compiler} --version' failed with exit code {exitCode}: {output}. Install g++ or point KILN_EMU_CXX at one.");
        return output.Split('\n')[0].Trim();
    }

    private static string ComputeToolKey()
    {
        if (!File.Exists(HeaderPath))
            throw new EmulatorException($"The emulator header is missing from {HeaderPath}; rebuild Kiln.Cuda.Emulator (it copies native/kiln_cuda_emu.h to its output).");
        string identity = File.ReadAllText(HeaderPath) + "\0" + string.Join(' ', Flags) + "\0" + CompilerVersion() + "\0" + KernelDeclarations.Dispatch([]);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..12];
    }
}

/// <summary>
/// A loaded module shared object. Its emulator state (current launch, fiber stacks, shared memory) is process-global,
/// so launches into it are serialised by <see cref="Gate"/>; different modules run concurrently.
/// </summary>
internal sealed unsafe class LoadedLibrary
{
    private readonly nint _handle;

    public LoadedLibrary(string path)
    {
        try
        {
            _handle = NativeLibrary.Load(path);
        }
        catch (DllNotFoundException e)
        {
            throw new EmulatorException($"The emulator could not load the module it built, {path}: {e.Message}", e);
        }
        Launch = (delegate* unmanaged<nint, byte*, uint, uint, uint, uint, uint, uint, ulong, void**, byte*, int, int>)NativeLibrary.GetExport(_handle, "kiln_emu_launch");
    }

    public Lock Gate { get; } = new();

    /// <summary><c>kiln_emu_launch(kernel, name, grid xyz, block xyz, sharedBytes, args, error, errorCapacity)</c>.</summary>
    public delegate* unmanaged<nint, byte*, uint, uint, uint, uint, uint, uint, ulong, void**, byte*, int, int> Launch { get; }

    /// <summary>The address of an exported symbol, or 0.</summary>
    public nint Export(string symbol) => NativeLibrary.TryGetExport(_handle, symbol, out nint address) ? address : 0;
}
