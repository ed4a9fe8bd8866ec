using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Kiln.Build.Tasks.Nvrtc
{
    /// <summary>One error or warning from an NVRTC program log; <see cref="File"/> is null when NVRTC gave no location.</summary>
    internal sealed class NvrtcDiagnostic : IEquatable<NvrtcDiagnostic>
    {
        public NvrtcDiagnostic(bool isError, string? file, int line, string message)
        {
            IsError = isError; File = file; Line = line; Message = message;
        }

        public bool IsError { get; }
        public string? File { get; }
        public int Line { get; }
        public string Message { get; }

        public bool Equals(NvrtcDiagnostic? other) =>
            other is not null && IsError == other.IsError && File == other.File && Line == other.Line && Message == other.Message;

        public override bool Equals(object? obj) => Equals(obj as NvrtcDiagnostic);

        public override int GetHashCode() => (Message.GetHashCode() * 31 + Line) * 31 + (File?.GetHashCode() ?? 0);

        public override string ToString() => (File is null ? "" : File + "(" + Line.ToString(CultureInfo.InvariantCulture) + "): ") + (IsError ? "error: " : "warning: ") + Message;
    }

    /// <summary>
    /// Reads the errors and warnings out of an NVRTC program log. The front end writes
    /// <c>path(line): error: message</c>, <c>path(line): warning #177-D: message</c> and
    /// <c>path(line): catastrophic error: message</c>; messages without a place read <c>At end of source: error: …</c>,
    /// <c>nvrtc: error: …</c> or plain <c>error: …</c>. Paths are the ones the <c>#line</c> directives named (the C#
    /// file) or the program name. Summary lines ("1 error detected …") and remarks are not diagnostics.
    /// </summary>
    internal static class NvrtcLog
    {
        private static readonly Regex Located = new Regex(
            @"^(?<file>.+?)\((?<line>\d+)\)\s*:\s*(?<sev>catastrophic error|error|warning)(?:\s*#[\w-]+)?\s*:\s*(?<msg>.*)$",
            RegexOptions.CultureInvariant);

        private static readonly Regex Unlocated = new Regex(
            @"^(?:(?<where>[^:]*?)\s*:\s*)?(?<sev>catastrophic error|error|warning)(?:\s*#[\w-]+)?\s*:\s*(?<msg>.+)$",
            RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);

        private static readonly Regex Ptxas = new Regex(@"^ptxas\s+(?<sev>fatal|error|warning)\s*:\s*(?<msg>.+)$", RegexOptions.CultureInvariant);

        public static List<NvrtcDiagnostic> Parse(string log)
        {
            var result = new List<NvrtcDiagnostic>();
            if (string.IsNullOrEmpty(log)) return result;
            foreach (var raw in log.Replace("\r\n", "\n").Split('\n'))
            {
                var line = raw.TrimEnd();
                if (line.Length == 0) continue;
                var m = Located.Match(line);
                if (m.Success)
                {
                    result.Add(new NvrtcDiagnostic(!m.Groups["sev"].Value.Equals("warning", StringComparison.Ordinal), m.Groups["file"].Value,
                        int.Parse(m.Groups["line"].Value, CultureInfo.InvariantCulture), m.Groups["msg"].Value.Trim()));
                    continue;
                }
                var p = Ptxas.Match(line.Trim());
                if (p.Success)
                {
                    result.Add(new NvrtcDiagnostic(p.Groups["sev"].Value != "warning", null, 0, "ptxas: " + p.Groups["msg"].Value.Trim()));
                    continue;
                }
                var u = Unlocated.Match(line.Trim());
                if (!u.Success) continue;
                string where = u.Groups["where"].Value.Trim();
                string message = u.Groups["msg"].Value.Trim();
                if (where.Length > 0 && !where.Equals("nvrtc", StringComparison.OrdinalIgnoreCase)) message = where + ": " + message;
                result.Add(new NvrtcDiagnostic(!u.Groups["sev"].Value.Equals("warning", StringComparison.OrdinalIgnoreCase), null, 0, message));
            }
            return result;
        }
    }
}
