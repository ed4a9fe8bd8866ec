using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace Kiln.Runtime.Interop;

/// <summary>The NVIDIA libraries the runtime binds to.</summary>
public enum CudaLibrary
{
    /// <summary>The CUDA driver API (<c>libcuda.so.1</c>, <c>nvcuda.dll</c>); installed with the NVIDIA driver.</summary>
    Driver,

    /// <summary>NVRTC, the CUDA runtime compiler (<c>libnvrtc.so.13/.12/.11.2</c>).</summary>
    Nvrtc,

    /// <summary>cuBLASLt, the matrix-multiply library (<c>libcublasLt.so.13/.12/.11</c>).</summary>
    CublasLt,

    /// <summary>NCCL, the collective-communication library (<c>libnccl.so.2</c>).</summary>
    Nccl,
}

/// <summary>
/// Finds and loads the CUDA libraries by probing their versioned file names (sonames), the way
/// PyTorch does: a plain <c>DllImport("cuda")</c> would look for <c>libcuda.so</c>, which exists only where
/// the CUDA toolkit's development files are installed, never on a machine that has just a driver.
/// </summary>
/// <remarks>
/// <para>Search order for each library, first hit wins:</para>
/// <list type="number">
/// <item>When <c>KILN_CUDA_PATH</c> names a file, that file (for the library its name belongs to).</item>
/// <item>When <c>KILN_CUDA_PATH</c> names a directory (or a file's directory, for the other libraries), each
/// file name in that directory and its <c>lib64</c>/<c>lib</c> (Linux) or <c>bin</c>/<c>bin\x64</c> (Windows)
/// subdirectories. The override replaces the search for the toolkit libraries (NVRTC, cuBLASLt, NCCL);
/// the driver belongs to the system, so after the override it is still looked up by the system loader.</item>
/// <item>Otherwise each file name through the system loader (<c>LD_LIBRARY_PATH</c>, the ld.so cache,
/// <c>PATH</c> on Windows), then the toolkit directories named by <c>CUDA_HOME</c>, <c>CUDA_PATH</c> and
/// <c>/usr/local/cuda</c>.</item>
/// </list>
/// <para>Loaded handles are cached for the life of the instance and never freed: the libraries hold
/// process-wide state (contexts, compiled programs) that outlives any one caller.</para>
/// </remarks>
public sealed class NativeLibraries
{
    /// <summary>The environment variable that overrides the search: a directory, or the full path of one library file.</summary>
    public const string CudaPathVariable = "KILN_CUDA_PATH";

    private static readonly Lazy<NativeLibraries> SharedInstance = new(() => new NativeLibraries(), LazyThreadSafetyMode.ExecutionAndPublication);
    private static int _resolverInstalled;

    private readonly Func<string, string?> _environment;
    private readonly object _gate = new();
    private readonly Dictionary<CudaLibrary, (IntPtr Handle, string Path)> _loaded = new();

    /// <summary>Creates a resolver that reads the process environment when it probes.</summary>
    public NativeLibraries()
        : this(Environment.GetEnvironmentVariable)
    {
    }

    /// <summary>
    /// Creates a resolver that reads <c>KILN_CUDA_PATH</c>, <c>CUDA_HOME</c> and <c>CUDA_PATH</c> through
    /// <paramref name="environment"/> instead of the process environment (for tests and for tools that
    /// carry their own settings).
    /// </summary>
    /// <param name="environment">Returns the value of the named variable, or <see langword="null"/> when unset.</param>
    public NativeLibraries(Func<string, string?> environment)
    {
        _environment = environment ?? throw new ArgumentNullException(nameof(environment));
    }

    /// <summary>
    /// The process-wide resolver, used by the runtime's <c>[LibraryImport]</c> bindings. It reads the process
    /// environment the first time each library is loaded.
    /// </summary>
    public static NativeLibraries Shared => SharedInstance.Value;

    /// <summary>The logical library name the runtime's <c>[LibraryImport]</c> declarations use for <paramref name="library"/>.</summary>
    public static string LogicalName(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => "cuda",
        CudaLibrary.Nvrtc => "nvrtc",
        CudaLibrary.CublasLt => "cublasLt",
        CudaLibrary.Nccl => "nccl",
        _ => throw new ArgumentOutOfRangeException(nameof(library), library, "Unknown CUDA library."),
    };

    /// <summary>Maps a logical import name (<c>cuda</c>, <c>nvrtc</c>, <c>cublasLt</c>, <c>nccl</c>) back to its library.</summary>
    /// <param name="logicalName">The name in a <c>[LibraryImport]</c> declaration.</param>
    /// <param name="library">The library, when the name is one of the four.</param>
    /// <returns><see langword="true"/> when <paramref name="logicalName"/> is a CUDA library's logical name.</returns>
    public static bool TryParseLogicalName(string logicalName, out CudaLibrary library)
    {
        foreach (CudaLibrary candidate in Enum.GetValues<CudaLibrary>())
        {
            if (string.Equals(LogicalName(candidate), logicalName, StringComparison.Ordinal))
            {
                library = candidate;
                return true;
            }
        }

        library = default;
        return false;
    }

    /// <summary>A human name for messages ("NVRTC (the CUDA runtime compiler)").</summary>
    public static string DisplayName(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => "the CUDA driver",
        CudaLibrary.Nvrtc => "NVRTC (the CUDA runtime compiler)",
        CudaLibrary.CublasLt => "cuBLASLt",
        CudaLibrary.Nccl => "NCCL",
        _ => library.ToString(),
    };

    /// <summary>
    /// The file names probed for <paramref name="library"/> on this operating system, newest first.
    /// Empty where the library does not exist for this operating system (NCCL on Windows, anything on macOS).
    /// </summary>
    public static IReadOnlyList<string> FileNames(CudaLibrary library)
    {
        if (OperatingSystem.IsWindows())
        {
            return library switch
            {
                CudaLibrary.Driver => ["nvcuda.dll"],
                CudaLibrary.Nvrtc => ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll"],
                CudaLibrary.CublasLt => ["cublasLt64_13.dll", "cublasLt64_12.dll", "cublasLt64_11.dll"],
                _ => [],
            };
        }

        if (OperatingSystem.IsLinux())
        {
            return library switch
            {
                CudaLibrary.Driver => ["libcuda.so.1"],
                CudaLibrary.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"],
                CudaLibrary.CublasLt => ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11"],
                CudaLibrary.Nccl => ["libnccl.so.2"],
                _ => [],
            };
        }

        return [];
    }

    /// <summary>
    /// Every location <see cref="Load"/> would try for <paramref name="library"/>, in order: full paths, and
    /// bare file names (which the system loader resolves).
    /// </summary>
    public IReadOnlyList<string> SearchPaths(CudaLibrary library)
    {
        var names = FileNames(library);
        var paths = new List<string>();
        string? overridePath = NonEmpty(_environment(CudaPathVariable));

        if (overridePath is not null)
        {
            string? directory = overridePath;
            if (File.Exists(overridePath))
            {
                if (FileBelongsTo(Path.GetFileName(overridePath), library))
                {
                    paths.Add(Path.GetFullPath(overridePath));
                    return paths;
                }

                directory = Path.GetDirectoryName(Path.GetFullPath(overridePath));
            }

            if (directory is not null)
                AddDirectoryCandidates(paths, directory, names);

            // The driver comes with the NVIDIA driver package, never with a toolkit, so a toolkit override
            // must not hide the system's libcuda.so.1.
            if (library == CudaLibrary.Driver)
                paths.AddRange(names);
            return Distinct(paths);
        }

        paths.AddRange(names);
        foreach (string variable in new[] { "CUDA_HOME", "CUDA_PATH" })
        {
            string? root = NonEmpty(_environment(variable));
            if (root is not null)
                AddDirectoryCandidates(paths, root, names);
        }

        if (OperatingSystem.IsLinux() && library != CudaLibrary.Driver)
            AddDirectoryCandidates(paths, "/usr/local/cuda", names);
        return Distinct(paths);
    }

    /// <summary>The path or file name <paramref name="library"/> was loaded from, or <see langword="null"/> when it has not been loaded by this instance.</summary>
    public string? LoadedFrom(CudaLibrary library)
    {
        lock (_gate)
            return _loaded.TryGetValue(library, out var entry) ? entry.Path : null;
    }

    /// <summary>Loads <paramref name="library"/>, or explains why it cannot be loaded.</summary>
    /// <param name="library">The library to load.</param>
    /// <param name="handle">The native handle (for <see cref="NativeLibrary.GetExport"/>) when loading succeeded.</param>
    /// <param name="error">Why loading failed: the library, every location tried and how to fix it.</param>
    /// <returns><see langword="true"/> when the library is loaded.</returns>
    public bool TryLoad(CudaLibrary library, out IntPtr handle, out KilnNativeLibraryException? error)
    {
        lock (_gate)
        {
            if (_loaded.TryGetValue(library, out var cached))
            {
                handle = cached.Handle;
                error = null;
                return true;
            }

            var tried = new List<string>();
            var failures = new List<string>();
            foreach (string candidate in SearchPaths(library))
            {
                tried.Add(candidate);
                if (NativeLibrary.TryLoad(candidate, out handle))
                {
                    _loaded[library] = (handle, candidate);
                    error = null;
                    return true;
                }

                // A file that exists but will not load (wrong architecture, a missing dependency such as
                // libnvrtc-builtins) deserves the loader's own words; a missing file does not.
                if (Path.IsPathRooted(candidate) && File.Exists(candidate))
                    failures.Add($"{candidate}: {LoaderError(candidate)}");
            }

            handle = IntPtr.Zero;
            error = new KilnNativeLibraryException(library, tried, BuildMissingMessage(library, tried, failures));
            return false;
        }
    }

    /// <summary>Loads <paramref name="library"/> and returns its handle.</summary>
    /// <exception cref="KilnNativeLibraryException">The library was not found; the message names every location tried and the fix.</exception>
    public IntPtr Load(CudaLibrary library)
    {
        if (TryLoad(library, out IntPtr handle, out var error))
            return handle;
        throw error!;
    }

    /// <summary>
    /// Installs the process-wide resolver for the runtime assembly's <c>[LibraryImport("cuda" | "nvrtc" |
    /// "cublasLt" | "nccl")]</c> declarations. Idempotent; the bindings call it from their static constructors.
    /// This is the assembly's only resolver (.NET allows one per assembly): other native libraries the
    /// runtime needs are added here, and names it does not know fall through to the default probing.
    /// </summary>
    internal static void InstallResolver()
    {
        if (Interlocked.Exchange(ref _resolverInstalled, 1) != 0)
            return;
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!TryParseLogicalName(libraryName, out CudaLibrary library))
            return IntPtr.Zero;

        // Returning zero lets .NET fall back to its own probing, which fails with a generic
        // DllNotFoundException; the checked wrappers load the library first, so users see the
        // KilnNativeLibraryException with the search list instead.
        return Shared.TryLoad(library, out IntPtr handle, out _) ? handle : IntPtr.Zero;
    }

    private string BuildMissingMessage(CudaLibrary library, IReadOnlyList<string> tried, IReadOnlyList<string> failures)
    {
        var text = new StringBuilder();
        var names = FileNames(library);
        if (names.Count == 0)
        {
            text.Append("Kiln cannot use ").Append(DisplayName(library)).Append(" on ")
                .Append(RuntimeInformation.OSDescription).Append(": NVIDIA does not ship it for this operating system. ")
                .Append("Train on the CPU with Device = \"cpu\".");
            return text.ToString();
        }

        if (library == CudaLibrary.Driver)
            text.Append(names[0]).Append(" not found: no NVIDIA driver on this machine.");
        else
            text.Append(DisplayName(library)).Append(" not found: none of ").Append(string.Join(", ", names)).Append(" could be loaded.");

        text.Append("\nTried, in order:");
        foreach (string path in tried)
            text.Append("\n  ").Append(path);

        if (failures.Count > 0)
        {
            text.Append("\nFiles that exist but failed to load:");
            foreach (string failure in failures)
                text.Append("\n  ").Append(failure);
        }

        string? overridePath = NonEmpty(_environment(CudaPathVariable));
        if (overridePath is not null)
            text.Append("\n").Append(CudaPathVariable).Append(" is set to '").Append(overridePath).Append("', which replaces the usual search.");

        text.Append("\nFix: ").Append(InstallHint(library))
            .Append("; or set ").Append(CudaPathVariable).Append(" to the directory that holds ").Append(string.Join(" / ", names))
            .Append(" (or to the full path of the file); or train on the CPU with Device = \"cpu\".");
        return text.ToString();
    }

    private static string InstallHint(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => "install the NVIDIA driver (it provides libcuda.so.1; inside a container, run it with the GPU exposed, e.g. docker --gpus all)",
        CudaLibrary.Nvrtc => "install NVRTC: the CUDA toolkit, `pip install nvidia-cuda-nvrtc`, or on Debian `apt-get install libnvrtc11.2` (non-free)",
        CudaLibrary.CublasLt => "install cuBLAS: the CUDA toolkit, `pip install nvidia-cublas`, or on Debian `apt-get install libcublaslt11` (non-free)",
        CudaLibrary.Nccl => "install NCCL: `apt-get install libnccl2` from NVIDIA's repository, or `pip install nvidia-nccl-cu12`",
        _ => "install the library",
    };

    private static bool FileBelongsTo(string fileName, CudaLibrary library)
    {
        string name = fileName.ToLowerInvariant();
        return library switch
        {
            // libnvrtc-builtins is NVRTC's helper, not NVRTC itself.
            CudaLibrary.Nvrtc => name.Contains("nvrtc", StringComparison.Ordinal) && !name.Contains("builtins", StringComparison.Ordinal),
            CudaLibrary.CublasLt => name.Contains("cublaslt", StringComparison.Ordinal),
            CudaLibrary.Nccl => name.Contains("nccl", StringComparison.Ordinal),
            CudaLibrary.Driver => name.StartsWith("libcuda.", StringComparison.Ordinal) || name == "nvcuda.dll",
            _ => false,
        };
    }

    private static void AddDirectoryCandidates(List<string> paths, string directory, IReadOnlyList<string> names)
    {
        string root = Path.GetFullPath(directory);
        string[] subdirectories = OperatingSystem.IsWindows()
            ? ["", "bin", Path.Combine("bin", "x64")]
            : ["", "lib64", "lib"];
        foreach (string name in names)
        {
            foreach (string sub in subdirectories)
                paths.Add(Path.Combine(root, sub, name));
        }
    }

    private static string LoaderError(string path)
    {
        try
        {
            IntPtr handle = NativeLibrary.Load(path);
            NativeLibrary.Free(handle);
            return "loaded on retry";
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            return e.Message.Replace('\n', ' ').Trim();
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static List<string> Distinct(List<string> paths)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<string>(paths.Count);
        foreach (string path in paths)
        {
            if (seen.Add(path))
                result.Add(path);
        }

        return result;
    }
}

/// <summary>A CUDA library could not be found or loaded. The message names the library, every location tried and the fix.</summary>
public sealed class KilnNativeLibraryException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="library">The library that could not be loaded.</param>
    /// <param name="tried">Every path or file name tried, in order.</param>
    /// <param name="message">The full explanation.</param>
    public KilnNativeLibraryException(CudaLibrary library, IReadOnlyList<string> tried, string message)
        : base(message)
    {
        Library = library;
        Tried = tried;
    }

    /// <summary>The library that could not be loaded.</summary>
    public CudaLibrary Library { get; }

    /// <summary>Every path or file name tried, in order.</summary>
    public IReadOnlyList<string> Tried { get; }
}
