using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;

namespace Kiln.Build.Tasks.Nvrtc
{
    /// <summary>
    /// A minimal NVRTC binding for netstandard2.0: the library is opened with dlopen (LoadLibrary on Windows) and its
    /// functions are bound as delegates, so no DllImport name has to match the installed soname. The runtime has its
    /// own binding (net10.0); this one only needs to compile a program and read back the CUBIN, PTX and log.
    /// </summary>
    internal sealed class NvrtcLibrary
    {
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int VersionFn(out int major, out int minor);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GetNumSupportedArchsFn(out int count);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GetSupportedArchsFn([Out] int[] archs);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int CreateProgramFn(out IntPtr program, byte[] source, byte[] name, int numHeaders, IntPtr headers, IntPtr includeNames);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int CompileProgramFn(IntPtr program, int numOptions, IntPtr[] options);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GetSizeFn(IntPtr program, out UIntPtr size);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GetBytesFn(IntPtr program, [Out] byte[] buffer);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int DestroyProgramFn(ref IntPtr program);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate IntPtr GetErrorStringFn(int result);

        private readonly CreateProgramFn _create;
        private readonly CompileProgramFn _compile;
        private readonly GetSizeFn _logSize, _ptxSize, _cubinSize;
        private readonly GetBytesFn _log, _ptx, _cubin;
        private readonly DestroyProgramFn _destroy;
        private readonly GetErrorStringFn _errorString;

        private NvrtcLibrary(string path, IntPtr handle)
        {
            Path = path;
            _create = Bind<CreateProgramFn>(handle, "nvrtcCreateProgram");
            _compile = Bind<CompileProgramFn>(handle, "nvrtcCompileProgram");
            _logSize = Bind<GetSizeFn>(handle, "nvrtcGetProgramLogSize");
            _log = Bind<GetBytesFn>(handle, "nvrtcGetProgramLog");
            _ptxSize = Bind<GetSizeFn>(handle, "nvrtcGetPTXSize");
            _ptx = Bind<GetBytesFn>(handle, "nvrtcGetPTX");
            _cubinSize = Bind<GetSizeFn>(handle, "nvrtcGetCUBINSize");
            _cubin = Bind<GetBytesFn>(handle, "nvrtcGetCUBIN");
            _destroy = Bind<DestroyProgramFn>(handle, "nvrtcDestroyProgram");
            _errorString = Bind<GetErrorStringFn>(handle, "nvrtcGetErrorString");
            Check(Bind<VersionFn>(handle, "nvrtcVersion")(out int major, out int minor), "nvrtcVersion");
            Version = major + "." + minor;
            var count = Bind<GetNumSupportedArchsFn>(handle, "nvrtcGetNumSupportedArchs");
            Check(count(out int n), "nvrtcGetNumSupportedArchs");
            var archs = new int[n];
            Check(Bind<GetSupportedArchsFn>(handle, "nvrtcGetSupportedArchs")(archs), "nvrtcGetSupportedArchs");
            SupportedArchitectures = archs;
        }

        /// <summary>The file that was loaded.</summary>
        public string Path { get; }

        /// <summary>NVRTC's version, <c>major.minor</c>.</summary>
        public string Version { get; }

        /// <summary>The compute capabilities × 10 this NVRTC can compile for.</summary>
        public IReadOnlyList<int> SupportedArchitectures { get; }

        /// <summary>
        /// Loads NVRTC. An explicit <paramref name="explicitPath"/> (a file, or a directory holding the library) is the
        /// only place looked at when given, so a wrong path is reported instead of silently using another NVRTC. Without
        /// it: <paramref name="cudaPathVariable"/> (KILN_CUDA_PATH; file or directory, plus lib64/lib), the sonames
        /// libnvrtc.so.13/.12/.11.2 through the system loader, then $CUDA_HOME/lib64 and /usr/local/cuda/lib64.
        /// </summary>
        /// <param name="explicitPath">KilnNvrtcPath, or null.</param>
        /// <param name="cudaPathVariable">KILN_CUDA_PATH, or null.</param>
        /// <param name="cudaHome">CUDA_HOME, or null.</param>
        /// <param name="attempts">What was tried and why each failed, for the "not found" message.</param>
        public static NvrtcLibrary? TryLoad(string? explicitPath, string? cudaPathVariable, string? cudaHome, out string attempts)
        {
            var tried = new List<string>();
            IEnumerable<string> candidates = !string.IsNullOrWhiteSpace(explicitPath)
                ? CandidatesAt(explicitPath!.Trim(), tried, "KilnNvrtcPath")
                : AllCandidates(cudaPathVariable, cudaHome, tried);
            foreach (var candidate in candidates)
            {
                var lib = TryOpen(candidate, out string? why);
                if (lib is not null) { attempts = string.Join("; ", tried); return lib; }
                tried.Add(candidate + ": " + why);
            }
            attempts = tried.Count == 0 ? "no candidate locations" : string.Join("; ", tried);
            return null;
        }

        private static IEnumerable<string> AllCandidates(string? cudaPathVariable, string? cudaHome, List<string> tried)
        {
            if (!string.IsNullOrWhiteSpace(cudaPathVariable))
                foreach (var c in CandidatesAt(cudaPathVariable!.Trim(), tried, "KILN_CUDA_PATH")) yield return c;
            if (IsWindows)
            {
                foreach (var dir in new[] { Environment.GetEnvironmentVariable("CUDA_PATH") }.Where(d => !string.IsNullOrEmpty(d)))
                    foreach (var c in CandidatesAt(dir!, tried, "CUDA_PATH")) yield return c;
                yield break;
            }
            // Bare sonames go through the system loader (LD_LIBRARY_PATH, ld.so.cache).
            foreach (var soname in new[] { "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so" }) yield return soname;
            if (!string.IsNullOrWhiteSpace(cudaHome))
                foreach (var c in CandidatesAt(System.IO.Path.Combine(cudaHome!.Trim(), "lib64"), tried, "CUDA_HOME")) yield return c;
            foreach (var c in CandidatesAt("/usr/local/cuda/lib64", tried, "default")) yield return c;
        }

        /// <summary>The library files a path names: the file itself, or NVRTC libraries in the directory and its lib64/lib/bin.</summary>
        internal static IEnumerable<string> CandidatesAt(string path, List<string> tried, string origin)
        {
            if (File.Exists(path)) return new[] { path };
            if (!Directory.Exists(path)) { tried.Add(origin + " " + path + ": no such file or directory"); return Array.Empty<string>(); }
            var found = new List<string>();
            foreach (var dir in new[] { path, System.IO.Path.Combine(path, "lib64"), System.IO.Path.Combine(path, "lib"), System.IO.Path.Combine(path, "bin"), System.IO.Path.Combine(path, "bin", "x64") })
            {
                if (!Directory.Exists(dir)) continue;
                var files = Directory.GetFiles(dir)
                    .Where(f => IsNvrtcLibraryName(System.IO.Path.GetFileName(f)))
                    .OrderByDescending(f => f.Length).ThenByDescending(f => f, StringComparer.Ordinal);
                found.AddRange(files);
            }
            if (found.Count == 0) tried.Add(origin + " " + path + ": no libnvrtc.so* or nvrtc64_*.dll in it or its lib64, lib, bin");
            return found;
        }

        internal static bool IsNvrtcLibraryName(string name) =>
            name.IndexOf("builtins", StringComparison.OrdinalIgnoreCase) < 0 &&
            (name.StartsWith("libnvrtc.so", StringComparison.Ordinal) || name.StartsWith("libnvrtc.", StringComparison.Ordinal) && name.EndsWith(".dylib", StringComparison.Ordinal) ||
             name.StartsWith("nvrtc64_", StringComparison.OrdinalIgnoreCase) && name.EndsWith(".dll", StringComparison.OrdinalIgnoreCase));

        private static NvrtcLibrary? TryOpen(string path, out string? why)
        {
            IntPtr handle;
            try { handle = NativeLoader.Open(path, out why); }
            catch (Exception e) { why = e.GetType().Name + ": " + e.Message; return null; }
            if (handle == IntPtr.Zero) return null;
            try { return new NvrtcLibrary(path, handle); }
            catch (Exception e) { why = "not a usable NVRTC (11.2 or newer): " + e.Message; return null; }
        }

        private static T Bind<T>(IntPtr handle, string name) where T : class
        {
            var fn = NativeLoader.Symbol(handle, name);
            if (fn == IntPtr.Zero) throw new EntryPointNotFoundException("no symbol " + name);
            return (T)(object)Marshal.GetDelegateForFunctionPointer(fn, typeof(T));
        }

        private static bool IsWindows => Environment.OSVersion.Platform == PlatformID.Win32NT;

        private void Check(int result, string api)
        {
            if (result != 0) throw new InvalidOperationException(api + " failed: " + ErrorString(result));
        }

        private string ErrorString(int result)
        {
            try { return Marshal.PtrToStringAnsi(_errorString(result)) ?? ("NVRTC error " + result); }
            catch (Exception) { return "NVRTC error " + result; }
        }

        /// <summary>Compiles <paramref name="source"/>; the CUBIN is read when an <c>sm_XX</c> architecture is in the options, else the PTX.</summary>
        public NvrtcResult Compile(string source, string programName, IReadOnlyList<string> options, bool wantsCubin)
        {
            var optionPointers = new IntPtr[options.Count];
            IntPtr program = IntPtr.Zero;
            try
            {
                for (int i = 0; i < options.Count; i++) optionPointers[i] = Utf8Alloc(options[i]);
                int rc = _create(out program, Utf8(source), Utf8(programName), 0, IntPtr.Zero, IntPtr.Zero);
                if (rc != 0) return NvrtcResult.Failed("nvrtcCreateProgram: " + ErrorString(rc), "");
                int compiled = _compile(program, options.Count, optionPointers);
                string log = ReadLog(program);
                if (compiled != 0) return NvrtcResult.Failed("nvrtcCompileProgram: " + ErrorString(compiled), log);
                var bytes = ReadBytes(program, wantsCubin ? _cubinSize : _ptxSize, wantsCubin ? _cubin : _ptx, wantsCubin ? "CUBIN" : "PTX");
                if (!wantsCubin)
                {
                    int end = Array.IndexOf(bytes, (byte)0);
                    if (end >= 0) Array.Resize(ref bytes, end);
                }
                return NvrtcResult.Succeeded(bytes, log);
            }
            finally
            {
                if (program != IntPtr.Zero) _destroy(ref program);
                foreach (var p in optionPointers) if (p != IntPtr.Zero) Marshal.FreeHGlobal(p);
            }
        }

        private string ReadLog(IntPtr program)
        {
            if (_logSize(program, out UIntPtr size) != 0 || size.ToUInt64() <= 1) return "";
            var buffer = new byte[(int)size.ToUInt64()];
            if (_log(program, buffer) != 0) return "";
            return Encoding.UTF8.GetString(buffer, 0, Math.Max(0, buffer.Length - 1)).TrimEnd('\0');
        }

        private byte[] ReadBytes(IntPtr program, GetSizeFn sizeOf, GetBytesFn read, string what)
        {
            Check(sizeOf(program, out UIntPtr size), "nvrtcGet" + what + "Size");
            var buffer = new byte[(int)size.ToUInt64()];
            Check(read(program, buffer), "nvrtcGet" + what);
            return buffer;
        }

        private static byte[] Utf8(string text)
        {
            int n = Encoding.UTF8.GetByteCount(text);
            var bytes = new byte[n + 1];
            Encoding.UTF8.GetBytes(text, 0, text.Length, bytes, 0);
            return bytes;
        }

        private static IntPtr Utf8Alloc(string text)
        {
            var bytes = Utf8(text);
            var p = Marshal.AllocHGlobal(bytes.Length);
            Marshal.Copy(bytes, 0, p, bytes.Length);
            return p;
        }
    }

    /// <summary>The outcome of one NVRTC compile: the output bytes on success, and the program log either way.</summary>
    internal sealed class NvrtcResult
    {
        private NvrtcResult(bool ok, byte[]? output, string log, string? failure) { Ok = ok; Output = output; Log = log; Failure = failure; }

        public bool Ok { get; }
        public byte[]? Output { get; }
        public string Log { get; }
        public string? Failure { get; }

        public static NvrtcResult Succeeded(byte[] output, string log) => new NvrtcResult(true, output, log, null);
        public static NvrtcResult Failed(string failure, string log) => new NvrtcResult(false, null, log, failure);
    }

    /// <summary>dlopen/dlsym (libdl.so.2, or libc.so.6 where glibc merged them) and LoadLibrary/GetProcAddress on Windows.</summary>
    internal static class NativeLoader
    {
        private const int RtldNow = 2;

        [DllImport("libdl.so.2", EntryPoint = "dlopen")] private static extern IntPtr DlOpenDl(string? file, int mode);
        [DllImport("libdl.so.2", EntryPoint = "dlsym")] private static extern IntPtr DlSymDl(IntPtr handle, string name);
        [DllImport("libdl.so.2", EntryPoint = "dlerror")] private static extern IntPtr DlErrorDl();
        [DllImport("libc.so.6", EntryPoint = "dlopen")] private static extern IntPtr DlOpenC(string? file, int mode);
        [DllImport("libc.so.6", EntryPoint = "dlsym")] private static extern IntPtr DlSymC(IntPtr handle, string name);
        [DllImport("libc.so.6", EntryPoint = "dlerror")] private static extern IntPtr DlErrorC();
        [DllImport("kernel32", SetLastError = true, CharSet = CharSet.Unicode)] private static extern IntPtr LoadLibraryW(string path);
        [DllImport("kernel32", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)] private static extern IntPtr GetProcAddress(IntPtr module, string name);

        private static bool? _useLibc;

        public static IntPtr Open(string path, out string? why)
        {
            why = null;
            if (Environment.OSVersion.Platform == PlatformID.Win32NT)
            {
                var h = LoadLibraryW(path);
                if (h == IntPtr.Zero) why = "LoadLibrary failed with error " + Marshal.GetLastWin32Error();
                return h;
            }
            IntPtr handle = UseLibc ? DlOpenC(path, RtldNow) : DlOpenDl(path, RtldNow);
            if (handle == IntPtr.Zero)
            {
                var error = UseLibc ? DlErrorC() : DlErrorDl();
                why = error == IntPtr.Zero ? "dlopen failed" : Marshal.PtrToStringAnsi(error);
            }
            return handle;
        }

        public static IntPtr Symbol(IntPtr handle, string name) =>
            Environment.OSVersion.Platform == PlatformID.Win32NT ? GetProcAddress(handle, name)
            : UseLibc ? DlSymC(handle, name) : DlSymDl(handle, name);

        private static bool UseLibc
        {
            get
            {
                if (_useLibc is bool b) return b;
                try { DlErrorDl(); _useLibc = false; }
                catch (DllNotFoundException) { _useLibc = true; }
                catch (EntryPointNotFoundException) { _useLibc = true; }
                return _useLibc.Value;
            }
        }
    }
}
