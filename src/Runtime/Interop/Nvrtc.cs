using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Kiln.Runtime.Interop;

/// <summary>NVRTC status codes (<c>nvrtcResult</c>); the values are stable across NVRTC 11.2–13.</summary>
internal enum NvrtcResult
{
    Success = 0,
    OutOfMemory = 1,
    ProgramCreationFailure = 2,
    InvalidInput = 3,
    InvalidProgram = 4,
    InvalidOption = 5,
    Compilation = 6,
    BuiltinOperationFailure = 7,
    NoNameExpressionsAfterCompilation = 8,
    NoLoweredNamesBeforeCompilation = 9,
    NameExpressionNotValid = 10,
    InternalError = 11,
}

/// <summary>
/// Source-generated bindings to NVRTC (the CUDA runtime compiler) under the logical name <c>nvrtc</c>,
/// which <see cref="NativeLibraries"/> resolves to <c>libnvrtc.so.13/.12/.11.2</c>. Call every function
/// through <see cref="Check"/>; use <see cref="NvrtcCompiler"/> rather than these directly.
/// </summary>
internal static unsafe partial class Nvrtc
{
    /// <summary>The logical library name (see <see cref="NativeLibraries.LogicalName"/>).</summary>
    internal const string Library = "nvrtc";

    static Nvrtc() => NativeLibraries.InstallResolver();

    /// <summary>Loads NVRTC through the shared resolver, so that a missing library is reported with the search list rather than as a bare <see cref="DllNotFoundException"/>.</summary>
    /// <exception cref="KilnNativeLibraryException">NVRTC was not found.</exception>
    internal static void EnsureLoaded() => NativeLibraries.Shared.Load(CudaLibrary.Nvrtc);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcVersion(out int major, out int minor);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcGetNumSupportedArchs(out int count);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcGetSupportedArchs(int* architectures);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial NvrtcResult nvrtcCreateProgram(out nint program, string source, string name, int headerCount, byte** headers, byte** includeNames);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcCompileProgram(nint program, int optionCount, byte** options);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcGetProgramLogSize(nint program, out nuint size);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcGetProgramLog(nint program, byte* log);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcGetPTXSize(nint program, out nuint size);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcGetPTX(nint program, byte* ptx);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcGetCUBINSize(nint program, out nuint size);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcGetCUBIN(nint program, byte* cubin);

    [LibraryImport(Library)]
    internal static partial NvrtcResult nvrtcDestroyProgram(ref nint program);

    [LibraryImport(Library)]
    internal static partial byte* nvrtcGetErrorString(NvrtcResult result);

    /// <summary>
    /// The one checked wrapper for NVRTC calls: returns when <paramref name="result"/> is success, otherwise
    /// throws <see cref="KilnCudaException"/> naming the API (taken from the call expression), the status and
    /// the Kiln call site. When <paramref name="program"/> is given (the result of <c>nvrtcCompileProgram</c>),
    /// the failure is a <see cref="NvrtcCompileException"/> carrying the program's log and its diagnostics.
    /// </summary>
    internal static void Check(
        NvrtcResult result,
        ProgramContext? program = null,
        [CallerArgumentExpression(nameof(result))] string call = "",
        [CallerFilePath] string file = "",
        [CallerLineNumber] int line = 0)
    {
        if (result == NvrtcResult.Success)
            return;

        string api = ApiName(call);
        string name = StatusName(result);
        if (program is not null)
            throw new NvrtcCompileException(program.Name, program.Options, TryReadLog(program.Handle), api, (int)result, name, file, line);
        throw new KilnCudaException(api, (int)result, name, name, file, line);
    }

    /// <summary>NVRTC's name for a status, e.g. <c>NVRTC_ERROR_COMPILATION</c>.</summary>
    internal static string StatusName(NvrtcResult result)
    {
        try
        {
            byte* text = nvrtcGetErrorString(result);
            if (text != null)
                return Marshal.PtrToStringUTF8((nint)text) ?? result.ToString();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Reporting an error must not raise a different one.
        }

        return "NVRTC status " + ((int)result).ToString(System.Globalization.CultureInfo.InvariantCulture) + " (" + result + ")";
    }

    /// <summary>Reads a program's log; used on the error path, where a second failure must not hide the first.</summary>
    internal static string TryReadLog(nint program)
    {
        if (nvrtcGetProgramLogSize(program, out nuint size) != NvrtcResult.Success || size <= 1)
            return string.Empty;
        var buffer = new byte[checked((int)size)];
        fixed (byte* p = buffer)
        {
            if (nvrtcGetProgramLog(program, p) != NvrtcResult.Success)
                return string.Empty;
        }

        return DecodeNulTerminated(buffer);
    }

    /// <summary>Decodes UTF-8 text up to its first NUL (NVRTC's sizes include the terminator).</summary>
    internal static string DecodeNulTerminated(ReadOnlySpan<byte> bytes)
    {
        int end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end >= 0 ? bytes[..end] : bytes);
    }

    /// <summary>"Nvrtc.nvrtcCompileProgram(handle, n, p)" → "nvrtcCompileProgram".</summary>
    internal static string ApiName(string callExpression)
    {
        int paren = callExpression.IndexOf('(');
        string head = paren >= 0 ? callExpression[..paren] : callExpression;
        int dot = head.LastIndexOf('.');
        return (dot >= 0 ? head[(dot + 1)..] : head).Trim();
    }

    /// <summary>What the checked wrapper needs to turn a failed compile into an <see cref="NvrtcCompileException"/>.</summary>
    internal sealed class ProgramContext(nint handle, string name, IReadOnlyList<string> options)
    {
        public nint Handle { get; } = handle;

        public string Name { get; } = name;

        public IReadOnlyList<string> Options { get; } = options;
    }
}
