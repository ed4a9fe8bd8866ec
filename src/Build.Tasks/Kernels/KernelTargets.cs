using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text.RegularExpressions;
using Kiln.Runtime.Cuda;

namespace Kiln.Build.Tasks.Kernels
{
    /// <summary>A precision the kernels are built for: its MSBuild name and the define that selects it.</summary>
    internal sealed class KernelPrecision
    {
        public KernelPrecision(string name, string define) { Name = name; Define = define; }

        public string Name { get; }
        public string Define { get; }
    }

    /// <summary>Parses <c>KilnCudaArchitectures</c> and <c>KilnKernelPrecisions</c>; each bad entry is one error message.</summary>
    internal static class KernelTargets
    {
        /// <summary>How architectures are written, for error messages.</summary>
        public const string ArchitectureForms = "write real architectures as sm_XX (the compute capability times ten, e.g. sm_80;sm_90) or just the number (80;90), separated by semicolons";

        /// <summary>How precisions are written, for error messages.</summary>
        public const string PrecisionForms = "the accepted precisions are bf16, f16 and f32 (also bfloat16, fp16/float16, fp32/float32), separated by semicolons";

        private static readonly Regex Architecture = new Regex(@"^(?:sm_)?(?<n>[1-9][0-9]{1,2})$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);

        /// <summary>The distinct architectures (compute capability × 10) in list order.</summary>
        public static List<int> ParseArchitectures(string? list, List<string> errors)
        {
            var result = new List<int>();
            foreach (var entry in Entries(list))
            {
                var m = Architecture.Match(entry);
                if (!m.Success) { errors.Add($"KilnCudaArchitectures entry '{entry}' is not an architecture: {ArchitectureForms}"); continue; }
                int arch = int.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture);
                if (!result.Contains(arch)) result.Add(arch);
            }
            if (result.Count == 0 && errors.Count == 0) errors.Add($"KilnCudaArchitectures is empty: {ArchitectureForms}");
            return result;
        }

        /// <summary>The distinct precisions in list order.</summary>
        public static List<KernelPrecision> ParsePrecisions(string? list, List<string> errors)
        {
            var result = new List<KernelPrecision>();
            int before = errors.Count;
            foreach (var entry in Entries(list))
            {
                var define = KernelCacheKey.DefineFor(entry);
                if (define is null) { errors.Add($"KilnKernelPrecisions entry '{entry}' is not a precision: {PrecisionForms}"); continue; }
                if (result.Exists(p => p.Define == define)) continue;
                result.Add(new KernelPrecision(NameOf(define), define));
            }
            if (result.Count == 0 && errors.Count == before) errors.Add($"KilnKernelPrecisions is empty: {PrecisionForms}");
            return result;
        }

        private static string NameOf(string define) =>
            define == KernelCacheKey.BFloat16Define ? "bf16" : define == KernelCacheKey.Float16Define ? "f16" : "f32";

        private static IEnumerable<string> Entries(string? list)
        {
            foreach (var part in (list ?? "").Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries))
            {
                var entry = part.Trim();
                if (entry.Length > 0) yield return entry;
            }
        }
    }
}
