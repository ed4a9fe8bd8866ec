using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;

using Kiln.Build.Tasks.Kernels;
using Kiln.Build.Tasks.Nvrtc;
using Kiln.Runtime.Cuda;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Kiln.Build.Tasks
{
    /// <summary>
    /// Compiles the CUDA kernels of every <c>[Model]</c> in the built assembly with NVRTC, ahead of time: one CUBIN per
    /// precision and real architecture plus PTX for the highest architecture's virtual one (for newer GPUs), named by
    /// <see cref="KernelCacheKey"/> so the runtime finds them. Files that already exist are reused (the name is a hash
    /// of the source and the precision), a report lists each kernel's registers and memory, and NVRTC's errors and
    /// warnings are logged at the C# lines the generated <c>#line</c> directives name.
    /// </summary>
    public sealed class CompileKernels : Microsoft.Build.Utilities.Task
    {
        /// <summary>The assembly CoreCompile just wrote (<c>@(IntermediateAssembly)</c>).</summary>
        [Required] public ITaskItem Assembly { get; set; } = null!;

        /// <summary>The content-addressed kernel cache, <c>$(IntermediateOutputPath)kiln-kernels/</c>.</summary>
        [Required] public string CacheDirectory { get; set; } = "";

        /// <summary><c>KilnCudaArchitectures</c>: real architectures, e.g. <c>sm_80;sm_90</c>.</summary>
        public string Architectures { get; set; } = "sm_80;sm_90";

        /// <summary><c>KilnKernelPrecisions</c>: <c>bf16;f16;f32</c> or a subset.</summary>
        public string Precisions { get; set; } = "bf16;f16;f32";

        /// <summary><c>KilnNvrtcPath</c>: the NVRTC library or a directory holding it; when set, nothing else is searched.</summary>
        public string? NvrtcPath { get; set; }

        /// <summary><c>KilnTestBreakKernel</c>: a test hook that breaks the first kernel of each model (see <see cref="TestBreakKernel"/>).</summary>
        public bool BreakKernelForTest { get; set; }

        /// <summary>The file that lists the kernel files of this build, one full path a line, for the copy to the output.</summary>
        [Required] public string BundleListFile { get; set; } = "";

        /// <summary>Touched after a complete, error-free compile: the target's output, so an unchanged build skips it.</summary>
        [Required] public string StampFile { get; set; } = "";

        /// <summary>Where the kernel report goes.</summary>
        [Required] public string ReportFile { get; set; } = "";

        /// <summary>The kernel files of this build (in <see cref="CacheDirectory"/>).</summary>
        [Output] public ITaskItem[] KernelFiles { get; private set; } = Array.Empty<ITaskItem>();

        /// <summary>Runs the task; every failure is logged, nothing escapes.</summary>
        public override bool Execute()
        {
            try
            {
                return ExecuteCore() && !Log.HasLoggedErrors;
            }
            catch (Exception e)
            {
                Log.LogError(null, BuildCodes.InternalError, null, null, 0, 0, 0, 0,
                    "Kiln's kernel build failed unexpectedly; this is a Kiln bug, please report it with this message. Set KilnSkipKernelCompile=true to build without prebuilt kernels until it is fixed: " + e);
                return false;
            }
        }

        private bool ExecuteCore()
        {
            var started = Stopwatch.StartNew();
            var targetErrors = new List<string>();
            var archs = KernelTargets.ParseArchitectures(Architectures, targetErrors);
            var precisions = KernelTargets.ParsePrecisions(Precisions, targetErrors);
            foreach (var e in targetErrors) Log.LogError(null, BuildCodes.InvalidTarget, null, null, 0, 0, 0, 0, e);
            if (targetErrors.Count > 0) return false;

            string assemblyPath = Assembly.GetMetadata("FullPath");
            if (string.IsNullOrEmpty(assemblyPath)) assemblyPath = Path.GetFullPath(Assembly.ItemSpec);
            List<KernelSource> sources;
            try
            {
                sources = KernelSourceReader.Read(assemblyPath);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is BadImageFormatException || e is InvalidOperationException)
            {
                Log.LogError(null, BuildCodes.AssemblyUnreadable, null, assemblyPath, 0, 0, 0, 0,
                    $"Kiln cannot read the CUDA kernels from the built assembly '{assemblyPath}': {e.Message}. Rebuild the project; if it persists, set KilnSkipKernelCompile=true and report it");
                return false;
            }

            Directory.CreateDirectory(CacheDirectory);
            int ptxArch = archs.Max();
            var jobs = new List<Job>();
            var files = new List<string>();
            foreach (var source in sources)
                foreach (var precision in precisions)
                {
                    string key = KernelCacheKey.Compute(source.Source, new[] { precision.Define });
                    foreach (int arch in archs) AddJob(source, precision, key, arch, true);
                    AddJob(source, precision, key, ptxArch, false);
                }

            void AddJob(KernelSource source, KernelPrecision precision, string key, int arch, bool cubin)
            {
                string file = Path.Combine(CacheDirectory, cubin ? KernelCacheKey.CubinFile(key, arch) : KernelCacheKey.PtxFile(key, arch));
                // The test hook compiles a different (broken) source, so the cache of the real one must not answer for it.
                jobs.Add(new Job(source, precision, arch, cubin, file, !BreakKernelForTest && File.Exists(file)));
            }

            var missing = jobs.Where(j => !j.Cached).ToList();
            NvrtcLibrary? nvrtc = null;
            if (missing.Count > 0)
            {
                nvrtc = NvrtcLibrary.TryLoad(NvrtcPath, Environment.GetEnvironmentVariable("KILN_CUDA_PATH"), Environment.GetEnvironmentVariable("CUDA_HOME"), out string attempts);
                if (nvrtc is null)
                {
                    Log.LogWarning(null, BuildCodes.NvrtcNotFound, null, null, 0, 0, 0, 0,
                        $"Kiln could not load NVRTC ({attempts}), so {missing.Count} of {jobs.Count} kernel files were not built ahead of time; kernels will be compiled by the runtime on first use; install NVRTC or set KilnNvrtcPath / KilnSkipKernelCompile");
                    WriteBundle(jobs.Where(j => j.Cached).Select(j => j.File).ToList(), sources.Count);
                    return true;
                }
                var unsupported = archs.Where(a => !nvrtc.SupportedArchitectures.Contains(a)).ToList();
                foreach (int a in unsupported)
                    Log.LogError(null, BuildCodes.InvalidTarget, null, null, 0, 0, 0, 0,
                        $"KilnCudaArchitectures entry 'sm_{a}' is not supported by NVRTC {nvrtc.Version} ({nvrtc.Path}), which compiles for {string.Join(", ", nvrtc.SupportedArchitectures.Select(x => "sm_" + x))}; remove it, or point KilnNvrtcPath at a newer NVRTC");
                if (unsupported.Count > 0) return false;
            }

            var compileTime = Stopwatch.StartNew();
            var results = new NvrtcResult[missing.Count];
            System.Threading.Tasks.Parallel.For(0, missing.Count, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, i =>
                results[i] = Compile(nvrtc!, missing[i]));
            compileTime.Stop();

            var logged = new HashSet<NvrtcDiagnostic>();
            int failed = 0;
            for (int i = 0; i < missing.Count; i++)
            {
                var job = missing[i];
                var result = results[i];
                var diagnostics = NvrtcLog.Parse(result.Log);
                foreach (var d in diagnostics)
                    if (logged.Add(d)) LogDiagnostic(d, job);
                if (!result.Ok)
                {
                    failed++;
                    if (!diagnostics.Any(d => d.IsError))
                    {
                        var d = new NvrtcDiagnostic(true, null, 0, result.Failure + (result.Log.Length > 0 ? ": " + result.Log.Trim() : ""));
                        if (logged.Add(d)) LogDiagnostic(d, job);
                    }
                    continue;
                }
                if (BreakKernelForTest) continue; // a broken source must never land in the cache under the real key
                WriteAtomically(job.File, result.Output!);
                if (job.Cubin) WriteAtomically(PtxasLogFile(job.File), Encoding.UTF8.GetBytes(result.Log));
            }
            if (failed > 0 || Log.HasLoggedErrors) return false;

            var kernelFiles = jobs.Select(j => j.File).ToList();
            WriteReport(sources, precisions, archs, ptxArch, jobs, nvrtc);
            WriteBundle(kernelFiles, sources.Count);
            File.WriteAllText(StampFile, "Kiln kernels built " + DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture) + "\n");

            int kernels = sources.Sum(s => KernelNames(s.Source).Count);
            string targets = string.Join(", ", archs.Select(a => "sm_" + a).Concat(new[] { "compute_" + ptxArch }));
            Log.LogMessage(MessageImportance.High,
                $"Kiln: {Count(sources.Count, "model")}, {Count(kernels, "kernel")} × {string.Join("/", precisions.Select(p => p.Name))}: {missing.Count} files compiled, {jobs.Count - missing.Count} cached ({targets}) in {compileTime.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s" +
                (nvrtc is null ? "" : $" with NVRTC {nvrtc.Version}") + $"; report: {ReportFile}");
            return true;
        }

        private static string Count(int n, string noun) => n.ToString(CultureInfo.InvariantCulture) + " " + noun + (n == 1 ? "" : "s");

        private NvrtcResult Compile(NvrtcLibrary nvrtc, Job job)
        {
            string source = job.Source.Source;
            if (BreakKernelForTest) source = TestBreakKernel.Break(source) ?? source;
            var options = new List<string>(KernelCacheKey.CompilerOptions) { job.Precision.Define, "--gpu-architecture=" + (job.Cubin ? "sm_" : "compute_") + job.Arch.ToString(CultureInfo.InvariantCulture) };
            if (job.Cubin) options.Add("-Xptxas=-v");
            string name = job.Source.TypeName.Substring(job.Source.TypeName.LastIndexOf('.') + 1) + ".cu";
            return nvrtc.Compile(source, name, options, job.Cubin);
        }

        private void LogDiagnostic(NvrtcDiagnostic d, Job job)
        {
            string where = $" (NVRTC, kernels of {job.Source.TypeName}, {job.Precision.Name}, {(job.Cubin ? "sm_" : "compute_")}{job.Arch})";
            string? file = d.File;
            string message = d.Message;
            // Lines outside user code are attributed to the generated program itself, which exists only in memory.
            if (file is not null && !file.EndsWith(".cs", StringComparison.OrdinalIgnoreCase))
                message = $"in the CUDA Kiln generated for {job.Source.TypeName} ({file} line {d.Line}): {message}";
            if (d.IsError)
                Log.LogError(null, BuildCodes.KernelCompileError, null, file, d.Line, 0, 0, 0, message + where);
            else
                Log.LogWarning(null, BuildCodes.KernelCompileWarning, null, file, d.Line, 0, 0, 0, message + where);
        }

        private void WriteBundle(List<string> files, int models)
        {
            KernelFiles = files.Select(f => (ITaskItem)new TaskItem(f)).ToArray();
            string text = string.Join("\n", files) + (files.Count > 0 ? "\n" : "");
            if (!File.Exists(BundleListFile) || File.ReadAllText(BundleListFile) != text) File.WriteAllText(BundleListFile, text);
            if (models == 0) Log.LogMessage(MessageImportance.Low, "Kiln: the assembly has no [Model] with CUDA kernels");
        }

        internal static string PtxasLogFile(string cubinFile) => cubinFile + ".ptxas.txt";

        private static readonly Regex KernelDeclaration = new Regex(@"__global__\s+void\s+(?<name>\w+)", RegexOptions.CultureInvariant);

        internal static List<string> KernelNames(string source) =>
            KernelDeclaration.Matches(source).Cast<Match>().Select(m => m.Groups["name"].Value).Distinct(StringComparer.Ordinal).ToList();

        private void WriteReport(List<KernelSource> sources, List<KernelPrecision> precisions, List<int> archs, int ptxArch, List<Job> jobs, NvrtcLibrary? nvrtc)
        {
            var sb = new StringBuilder();
            sb.Append("# Kiln kernel report\n\n");
            sb.Append("Generated by the Kiln build task. Options: `").Append(string.Join(" ", KernelCacheKey.CompilerOptions)).Append(" -DKILN_PRECISION_* --gpu-architecture=…`");
            if (nvrtc is not null) sb.Append("; NVRTC ").Append(nvrtc.Version).Append(" (").Append(nvrtc.Path).Append(')');
            sb.Append(".\nRegisters per thread, static shared memory per block, and local memory per thread (stack frame, spill stores/loads) from ptxas, or from the CUBIN where the ptxas log is not kept; n/a where neither says.\n");
            foreach (var source in sources)
                foreach (var precision in precisions)
                    foreach (int arch in archs)
                    {
                        var job = jobs.First(j => j.Source == source && j.Precision == precision && j.Cubin && j.Arch == arch);
                        sb.Append("\n## ").Append(source.TypeName).Append(" · ").Append(precision.Name).Append(" · sm_").Append(arch).Append("\n\n");
                        sb.Append('`').Append(Path.GetFileName(job.File)).Append("`\n\n");
                        AppendKernelTable(sb, job.File, KernelNames(source.Source));
                    }
            sb.Append("\nPTX for newer GPUs (compiled by the driver on first use): ");
            sb.Append(string.Join(", ", jobs.Where(j => !j.Cubin).Select(j => "`" + Path.GetFileName(j.File) + "`"))).Append(" (compute_").Append(ptxArch).Append(").\n");
            string text = sb.ToString();
            if (!File.Exists(ReportFile) || File.ReadAllText(ReportFile) != text) File.WriteAllText(ReportFile, text);
        }

        private static void AppendKernelTable(StringBuilder sb, string cubinFile, List<string> kernelsInSource)
        {
            List<KernelResources> elf;
            string? elfError = null;
            try { elf = CubinReader.Read(File.ReadAllBytes(cubinFile)); }
            catch (Exception e) when (e is IOException || e is FormatException || e is IndexOutOfRangeException) { elf = new List<KernelResources>(); elfError = e.Message; }
            var ptxas = File.Exists(PtxasLogFile(cubinFile)) ? PtxasReport.Parse(File.ReadAllText(PtxasLogFile(cubinFile))) : new Dictionary<string, PtxasUsage>();
            if (elfError is not null) sb.Append("CUBIN unreadable: ").Append(elfError).Append("\n\n");
            sb.Append("| Kernel | Registers | Static shared (B) | Stack frame (B) | Spill stores (B) | Spill loads (B) |\n|---|---:|---:|---:|---:|---:|\n");
            var byName = elf.ToDictionary(k => k.Name, StringComparer.Ordinal);
            var names = kernelsInSource.Concat(elf.Select(k => k.Name)).Distinct(StringComparer.Ordinal).OrderBy(n => n, StringComparer.Ordinal);
            foreach (var name in names)
            {
                byName.TryGetValue(name, out var e);
                ptxas.TryGetValue(name, out var p);
                sb.Append("| ").Append(name)
                  .Append(" | ").Append(Show(p?.Registers ?? e?.Registers))
                  .Append(" | ").Append(Show(p?.SharedBytes ?? e?.StaticSharedBytes))
                  .Append(" | ").Append(Show(p?.StackFrameBytes ?? e?.LocalBytes))
                  .Append(" | ").Append(Show(p?.SpillStoreBytes))
                  .Append(" | ").Append(Show(p?.SpillLoadBytes)).Append(" |\n");
            }
        }

        private static string Show(long? value) => value is long v ? v.ToString(CultureInfo.InvariantCulture) : "n/a";

        private void WriteAtomically(string file, byte[] bytes)
        {
            string temp = file + "." + Guid.NewGuid().ToString("N") + ".tmp";
            File.WriteAllBytes(temp, bytes);
            try
            {
                if (File.Exists(file)) File.Delete(file);
                File.Move(temp, file);
            }
            catch (IOException) when (File.Exists(file))
            {
                // Another build wrote the same content-addressed file first; its bytes are the same.
                File.Delete(temp);
            }
        }

        private sealed class Job
        {
            public Job(KernelSource source, KernelPrecision precision, int arch, bool cubin, string file, bool cached)
            {
                Source = source; Precision = precision; Arch = arch; Cubin = cubin; File = file; Cached = cached;
            }

            public KernelSource Source { get; }
            public KernelPrecision Precision { get; }
            public int Arch { get; }
            public bool Cubin { get; }
            public string File { get; }
            public bool Cached { get; }
        }
    }
}
