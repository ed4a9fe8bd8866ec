using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Kiln.Runtime.Interop;

/// <summary>What NVRTC produced for one program.</summary>
public sealed class CompileResult
{
    internal CompileResult(string name, string? architecture, IReadOnlyList<string> options, string ptx, byte[]? cubin, string log)
    {
        Name = name;
        Architecture = architecture;
        Options = options;
        Ptx = ptx;
        Cubin = cubin;
        Log = log;
        Diagnostics = NvrtcDiagnostic.Parse(log);
    }

    /// <summary>The program name (what NVRTC writes in its log lines).</summary>
    public string Name { get; }

    /// <summary>The target, e.g. <c>sm_90</c> (real: CUBIN and PTX) or <c>compute_90</c> (virtual: PTX only); <see langword="null"/> for NVRTC's default.</summary>
    public string? Architecture { get; }

    /// <summary>Every option passed to NVRTC, the architecture included.</summary>
    public IReadOnlyList<string> Options { get; }

    /// <summary>The PTX assembly text (without the terminating NUL).</summary>
    public string Ptx { get; }

    /// <summary>The CUBIN (an ELF image, loadable with <c>cuModuleLoadData</c>) when compiling for a real <c>sm_XX</c> architecture, otherwise <see langword="null"/>.</summary>
    public byte[]? Cubin { get; }

    /// <summary>The compiler log (warnings and remarks; empty when there were none).</summary>
    public string Log { get; }

    /// <summary>The diagnostics parsed from <see cref="Log"/>.</summary>
    public IReadOnlyList<NvrtcDiagnostic> Diagnostics { get; }
}

/// <summary>
/// Compiles CUDA C++ source to PTX and CUBIN with NVRTC, which works with or without a GPU. Kiln's emitted
/// kernels include no toolkit headers, so any NVRTC from 11.2 on compiles them.
/// </summary>
/// <remarks>
/// Prefer a CUBIN for the device's own architecture: PTX from an NVRTC newer than the driver fails to load
/// (<c>CUDA_ERROR_UNSUPPORTED_PTX_VERSION</c>), while a CUBIN loads on any driver that knows the GPU. Use PTX
/// (<see cref="BestArchitectureFor"/>) only for a GPU newer than this NVRTC.
/// </remarks>
public sealed class NvrtcCompiler
{
    // NVRTC releases before 12 make no promise about concurrent nvrtcCompileProgram calls; compiles are
    // rare at run time (the build task does the bulk), so they are simply serialised.
    private static readonly object CompileGate = new();
    private static readonly object CreateGate = new();
    private static NvrtcCompiler? _instance;

    private readonly HashSet<int> _supported;

    private NvrtcCompiler(Version version, int[] supported, string libraryPath)
    {
        Version = version;
        SupportedArchitectures = supported;
        LibraryPath = libraryPath;
        _supported = new HashSet<int>(supported);
    }

    /// <summary>The options used when the caller passes none: device code by default, C++17.</summary>
    public static IReadOnlyList<string> DefaultOptions { get; } = ["-default-device", "--std=c++17"];

    /// <summary>The NVRTC version (e.g. 11.8, 12.6, 13.0).</summary>
    public Version Version { get; }

    /// <summary>The real architectures this NVRTC can compile for, ascending, as compute capability × 10 (e.g. 80, 86, 89, 90).</summary>
    public IReadOnlyList<int> SupportedArchitectures { get; }

    /// <summary>Where NVRTC was loaded from (a full path, or the file name the system loader resolved).</summary>
    public string LibraryPath { get; }

    /// <summary>Loads NVRTC (see <see cref="NativeLibraries"/>) and reads its version and architectures.</summary>
    /// <param name="compiler">The compiler, when NVRTC is usable.</param>
    /// <param name="reason">Why not, when it is not: the library, the paths tried and the fix.</param>
    /// <returns><see langword="true"/> when NVRTC is usable.</returns>
    public static bool TryCreate([NotNullWhen(true)] out NvrtcCompiler? compiler, out string reason)
    {
        try
        {
            compiler = Create();
            reason = string.Empty;
            return true;
        }
        catch (Exception e) when (e is KilnNativeLibraryException or KilnCudaException or EntryPointNotFoundException or DllNotFoundException)
        {
            compiler = null;
            reason = e.Message;
            return false;
        }
    }

    /// <summary>Loads NVRTC and reads its version and architectures; the instance is shared by the process.</summary>
    /// <exception cref="KilnNativeLibraryException">NVRTC was not found; the message lists the paths tried and the fix.</exception>
    public static NvrtcCompiler Create()
    {
        lock (CreateGate)
        {
            if (_instance is not null)
                return _instance;

            Nvrtc.EnsureLoaded();
            Nvrtc.Check(Nvrtc.nvrtcVersion(out int major, out int minor));
            Nvrtc.Check(Nvrtc.nvrtcGetNumSupportedArchs(out int count));
            var architectures = new int[count];
            unsafe
            {
                fixed (int* p = architectures)
                    Nvrtc.Check(Nvrtc.nvrtcGetSupportedArchs(p));
            }

            Array.Sort(architectures);
            _instance = new NvrtcCompiler(new Version(major, minor), architectures, NativeLibraries.Shared.LoadedFrom(CudaLibrary.Nvrtc) ?? "nvrtc");
            return _instance;
        }
    }

    /// <summary>Whether this NVRTC can compile for <paramref name="architecture"/> (compute capability × 10).</summary>
    public bool Supports(int architecture) => _supported.Contains(architecture);

    /// <summary>
    /// The newest architecture this NVRTC supports that a device of <paramref name="deviceArchitecture"/> can
    /// run: the device's own when supported (compile a CUBIN), otherwise an older one (compile PTX for it and let
    /// the driver JIT), or <see langword="null"/> when the device is older than anything this NVRTC supports.
    /// </summary>
    public int? BestArchitectureFor(int deviceArchitecture)
    {
        int? best = null;
        foreach (int arch in SupportedArchitectures)
        {
            if (arch <= deviceArchitecture)
                best = arch;
        }

        return best;
    }

    /// <summary>
    /// Compiles <paramref name="source"/> with NVRTC.
    /// </summary>
    /// <param name="source">CUDA C++ source; self-contained (no <c>#include</c> of toolkit headers).</param>
    /// <param name="name">The program name, as it will appear in diagnostics (e.g. <c>gpt_layernorm.cu</c>).</param>
    /// <param name="options">NVRTC options; <see langword="null"/> means <see cref="DefaultOptions"/>. The architecture option is added from <paramref name="cubinArch"/> or <paramref name="ptxArch"/>; give it here instead only when neither is set.</param>
    /// <param name="cubinArch">A real architecture (e.g. 90 for <c>sm_90</c>): the result has a CUBIN and PTX.</param>
    /// <param name="ptxArch">A virtual architecture (e.g. 90 for <c>compute_90</c>) when <paramref name="cubinArch"/> is not set: the result has PTX only.</param>
    /// <returns>PTX, the CUBIN for a real architecture, and the log.</returns>
    /// <exception cref="NvrtcCompileException">The source did not compile; the exception carries the log and the parsed diagnostics.</exception>
    /// <exception cref="NvrtcArchitectureException">This NVRTC does not support the requested architecture.</exception>
    public CompileResult Compile(string source, string name, IReadOnlyList<string>? options = null, int? cubinArch = null, int? ptxArch = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (cubinArch is not null && ptxArch is not null)
            throw new ArgumentException("Give either cubinArch (a CUBIN for sm_XX, PTX included) or ptxArch (PTX only for compute_XX), not both.", nameof(ptxArch));

        var allOptions = new List<string>(options ?? DefaultOptions);
        string? architecture = FindArchitectureOption(allOptions);
        if (architecture is not null && (cubinArch is not null || ptxArch is not null))
            throw new ArgumentException($"The options already select {architecture}; do not also pass cubinArch or ptxArch.", nameof(options));

        if (cubinArch is int real)
        {
            architecture = "sm_" + real.ToString(CultureInfo.InvariantCulture);
            allOptions.Add("--gpu-architecture=" + architecture);
        }
        else if (ptxArch is int virtualArch)
        {
            architecture = "compute_" + virtualArch.ToString(CultureInfo.InvariantCulture);
            allOptions.Add("--gpu-architecture=" + architecture);
        }

        if (architecture is not null)
            ValidateArchitecture(architecture);
        bool wantsCubin = architecture is not null && architecture.StartsWith("sm_", StringComparison.Ordinal);

        lock (CompileGate)
            return CompileCore(source, name, allOptions, architecture, wantsCubin);
    }

    private unsafe CompileResult CompileCore(string source, string name, List<string> options, string? architecture, bool wantsCubin)
    {
        Nvrtc.Check(Nvrtc.nvrtcCreateProgram(out nint program, source, name, 0, null, null));
        var optionPointers = new nint[options.Count];
        try
        {
            for (int i = 0; i < options.Count; i++)
                optionPointers[i] = Marshal.StringToCoTaskMemUTF8(options[i]);

            fixed (nint* p = optionPointers)
            {
                Nvrtc.Check(
                    Nvrtc.nvrtcCompileProgram(program, options.Count, (byte**)p),
                    new Nvrtc.ProgramContext(program, name, options.ToArray()));
            }

            string log = ReadLog(program);
            string ptx = ReadPtx(program);
            byte[]? cubin = wantsCubin ? ReadCubin(program) : null;
            Nvrtc.Check(Nvrtc.nvrtcDestroyProgram(ref program));
            return new CompileResult(name, architecture, options.ToArray(), ptx, cubin, log);
        }
        catch
        {
            // The error being thrown matters more than a failure to free the program.
            if (program != 0)
                _ = Nvrtc.nvrtcDestroyProgram(ref program);
            throw;
        }
        finally
        {
            foreach (nint pointer in optionPointers)
            {
                if (pointer != 0)
                    Marshal.FreeCoTaskMem(pointer);
            }
        }
    }

    private static unsafe string ReadLog(nint program)
    {
        Nvrtc.Check(Nvrtc.nvrtcGetProgramLogSize(program, out nuint size));
        var buffer = new byte[checked((int)size)];
        if (buffer.Length == 0)
            return string.Empty;
        fixed (byte* p = buffer)
            Nvrtc.Check(Nvrtc.nvrtcGetProgramLog(program, p));
        return Nvrtc.DecodeNulTerminated(buffer);
    }

    private static unsafe string ReadPtx(nint program)
    {
        Nvrtc.Check(Nvrtc.nvrtcGetPTXSize(program, out nuint size));
        var buffer = new byte[checked((int)size)];
        if (buffer.Length == 0)
            return string.Empty;
        fixed (byte* p = buffer)
            Nvrtc.Check(Nvrtc.nvrtcGetPTX(program, p));
        return Nvrtc.DecodeNulTerminated(buffer);
    }

    private static unsafe byte[] ReadCubin(nint program)
    {
        Nvrtc.Check(Nvrtc.nvrtcGetCUBINSize(program, out nuint size));
        var buffer = new byte[checked((int)size)];
        if (buffer.Length == 0)
            return buffer;
        fixed (byte* p = buffer)
            Nvrtc.Check(Nvrtc.nvrtcGetCUBIN(program, p));
        return buffer;
    }

    private void ValidateArchitecture(string architecture)
    {
        // "sm_90", "sm_90a", "compute_90": the digits are the compute capability × 10.
        int underscore = architecture.IndexOf('_');
        if (underscore < 0)
            return;
        int start = underscore + 1, end = start;
        while (end < architecture.Length && char.IsAsciiDigit(architecture[end]))
            end++;
        if (end == start || !int.TryParse(architecture.AsSpan(start, end - start), NumberStyles.None, CultureInfo.InvariantCulture, out int number))
            return;
        if (!_supported.Contains(number))
            throw new NvrtcArchitectureException(architecture, Version, SupportedArchitectures);
    }

    private static string? FindArchitectureOption(List<string> options)
    {
        for (int i = 0; i < options.Count; i++)
        {
            string option = options[i];
            foreach (string prefix in new[] { "--gpu-architecture=", "-arch=" })
            {
                if (option.StartsWith(prefix, StringComparison.Ordinal))
                    return option[prefix.Length..];
            }

            if ((option == "--gpu-architecture" || option == "-arch") && i + 1 < options.Count)
                return options[i + 1];
        }

        return null;
    }
}
