using System.Text.RegularExpressions;

namespace Kiln.Build.Tasks.Kernels
{
    /// <summary>
    /// The <c>KilnTestBreakKernel</c> test hook: puts an undefined identifier on the line right after the first
    /// <c>#line N "….cs"</c> directive inside the first kernel body, so NVRTC reports an error that the directive
    /// maps to line N of the model's C# file — the path a real emitter bug would take.
    /// </summary>
    internal static class TestBreakKernel
    {
        /// <summary>The identifier NVRTC will report as undefined.</summary>
        public const string BrokenStatement = "kiln_test_break_kernel_undefined = 0;";

        private static readonly Regex CSharpLineDirective = new Regex("\n#line [0-9]+ \"[^\"\n]*\\.cs\"[^\n]*\n", RegexOptions.CultureInvariant);

        /// <summary>The broken source, or null when the source has no kernel with a C# line directive.</summary>
        public static string? Break(string source)
        {
            int kernel = source.IndexOf("__global__", System.StringComparison.Ordinal);
            if (kernel < 0) return null;
            int body = source.IndexOf('{', kernel);
            if (body < 0) return null;
            var m = CSharpLineDirective.Match(source, body);
            if (!m.Success) return null;
            int at = m.Index + m.Length;
            return source.Substring(0, at) + BrokenStatement + "\n" + source.Substring(at);
        }
    }
}
