using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Kiln.Build.Tasks.Kernels
{
    /// <summary>Per-kernel resources from the <c>-Xptxas=-v</c> lines NVRTC appends to the program log.</summary>
    internal sealed class PtxasUsage
    {
        public int? Registers { get; set; }
        public long? SharedBytes { get; set; }
        public long? StackFrameBytes { get; set; }
        public long? SpillStoreBytes { get; set; }
        public long? SpillLoadBytes { get; set; }
    }

    /// <summary>
    /// Parses ptxas's verbose output: <c>Compiling entry function 'k' for 'sm_80'</c>, <c>Function properties for k</c>
    /// followed by <c>N bytes stack frame, N bytes spill stores, N bytes spill loads</c>, and
    /// <c>Used N registers, N bytes smem, N bytes cmem[0]</c>.
    /// </summary>
    internal static class PtxasReport
    {
        private static readonly Regex Entry = new Regex(@"Compiling entry function '(?<name>[^']+)'", RegexOptions.CultureInvariant);
        private static readonly Regex Properties = new Regex(@"Function properties for (?<name>\S+)", RegexOptions.CultureInvariant);
        private static readonly Regex Frame = new Regex(@"(?<frame>\d+) bytes stack frame, (?<st>\d+) bytes spill stores, (?<ld>\d+) bytes spill loads", RegexOptions.CultureInvariant);
        private static readonly Regex Used = new Regex(@"Used (?<reg>\d+) registers(?:, (?<smem>\d+) bytes smem)?", RegexOptions.CultureInvariant);

        public static Dictionary<string, PtxasUsage> Parse(string log)
        {
            var result = new Dictionary<string, PtxasUsage>(StringComparer.Ordinal);
            string? entry = null, properties = null;
            foreach (var line in (log ?? "").Replace("\r\n", "\n").Split('\n'))
            {
                if (!line.StartsWith("ptxas", StringComparison.Ordinal)) continue;
                Match m;
                if ((m = Entry.Match(line)).Success) { entry = m.Groups["name"].Value; Get(result, entry); continue; }
                if ((m = Properties.Match(line)).Success) { properties = m.Groups["name"].Value; continue; }
                if ((m = Frame.Match(line)).Success && properties is not null)
                {
                    var u = Get(result, properties);
                    u.StackFrameBytes = Long(m, "frame"); u.SpillStoreBytes = Long(m, "st"); u.SpillLoadBytes = Long(m, "ld");
                    continue;
                }
                if ((m = Used.Match(line)).Success && entry is not null)
                {
                    var u = Get(result, entry);
                    u.Registers = (int)Long(m, "reg");
                    u.SharedBytes = m.Groups["smem"].Success ? Long(m, "smem") : 0;
                }
            }
            return result;
        }

        private static PtxasUsage Get(Dictionary<string, PtxasUsage> map, string name)
        {
            if (!map.TryGetValue(name, out var u)) map[name] = u = new PtxasUsage();
            return u;
        }

        private static long Long(Match m, string group) => long.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture);
    }
}
