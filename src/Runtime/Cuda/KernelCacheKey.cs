// This file is compiled into both Kiln.Runtime (net10.0) and Kiln.Build.Tasks (netstandard2.0): the build task
// names the kernels it compiles with this key and the runtime finds them by it, so it must stay plain C# 7.3.
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Text;

namespace Kiln.Runtime.Cuda
{
    /// <summary>
    /// The content key of a CUDA translation unit and its variant: the first 32 hex digits of the SHA-256 of the
    /// UTF-8 bytes of each define followed by a line feed, a NUL, then the source (with CR LF normalised to LF).
    /// Prebuilt kernels are files named <c>{key}.sm_{arch}.cubin</c> and <c>{key}.compute_{arch}.ptx</c> in the
    /// application's <c>kiln-kernels</c> directory (written by the build) or in the run-time cache.
    /// </summary>
    public static class KernelCacheKey
    {
        /// <summary>The directory, next to the application's assemblies, that holds prebuilt kernels.</summary>
        public const string BundleDirectory = "kiln-kernels";

        /// <summary>
        /// The NVRTC options every Kiln kernel module is compiled with, before its precision define and architecture:
        /// the build task and the runtime both use these, so a prebuilt kernel is the one the runtime would compile.
        /// </summary>
        public static readonly IReadOnlyList<string> CompilerOptions = new[] { "-default-device", "--std=c++17" };

        /// <summary>The define that selects bf16 storage for low-precision tensors.</summary>
        public const string BFloat16Define = "-DKILN_PRECISION_BF16";

        /// <summary>The define that selects fp16 storage for low-precision tensors.</summary>
        public const string Float16Define = "-DKILN_PRECISION_F16";

        /// <summary>The define that selects fp32 storage (no reduced precision).</summary>
        public const string Float32Define = "-DKILN_PRECISION_F32";

        /// <summary>The key of <paramref name="source"/> built with <paramref name="defines"/>.</summary>
        public static string Compute(string source, IReadOnlyList<string> defines)
        {
            var text = new StringBuilder();
            foreach (var d in defines) text.Append(d).Append('\n');
            text.Append('\0').Append(source.Replace("\r\n", "\n"));
            byte[] hash;
            using (var sha = SHA256.Create()) hash = sha.ComputeHash(Encoding.UTF8.GetBytes(text.ToString()));
            var hex = new StringBuilder(32);
            for (int i = 0; i < 16; i++) hex.Append(hash[i].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            return hex.ToString();
        }

        /// <summary>The file name of the CUBIN for <paramref name="architecture"/> (compute capability × 10).</summary>
        public static string CubinFile(string key, int architecture) => key + ".sm_" + architecture.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".cubin";

        /// <summary>The file name of the PTX for the virtual <paramref name="architecture"/>.</summary>
        public static string PtxFile(string key, int architecture) => key + ".compute_" + architecture.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".ptx";

        /// <summary>The define of a precision name as MSBuild and the options spell it: <c>bf16</c>, <c>f16</c> or <c>f32</c>; null if unknown.</summary>
        public static string? DefineFor(string precision)
        {
            switch (precision.Trim().ToLowerInvariant())
            {
                case "bf16": case "bfloat16": return BFloat16Define;
                case "f16": case "fp16": case "float16": return Float16Define;
                case "f32": case "fp32": case "float32": return Float32Define;
                default: return null;
            }
        }
    }
}
