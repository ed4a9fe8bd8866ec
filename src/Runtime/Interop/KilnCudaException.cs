using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.RegularExpressions;

namespace Kiln.Runtime.Interop;

/// <summary>
/// A CUDA driver or NVRTC call returned an error status. Carries the API name, the status code and its
/// name and description, and the place in Kiln's source that made the call.
/// </summary>
public class KilnCudaException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="api">The native function that failed, e.g. <c>cuMemAlloc_v2</c>.</param>
    /// <param name="status">The status code it returned.</param>
    /// <param name="statusName">The status's symbolic name, e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>.</param>
    /// <param name="statusDescription">The library's description of the status.</param>
    /// <param name="callerFile">The Kiln source file that made the call.</param>
    /// <param name="callerLine">The line in <paramref name="callerFile"/>.</param>
    /// <param name="detail">Extra explanation appended to the message, or <see langword="null"/>.</param>
    public KilnCudaException(string api, int status, string statusName, string statusDescription, string callerFile, int callerLine, string? detail = null)
        : base(FormatMessage(api, status, statusName, statusDescription, callerFile, callerLine, detail))
    {
        Api = api;
        Status = status;
        StatusName = statusName;
        StatusDescription = statusDescription;
        CallerFile = callerFile;
        CallerLine = callerLine;
    }

    /// <summary>The native function that failed, e.g. <c>cuMemAlloc_v2</c> or <c>nvrtcCompileProgram</c>.</summary>
    public string Api { get; }

    /// <summary>The status code the function returned (<c>CUresult</c> or <c>nvrtcResult</c>).</summary>
    public int Status { get; }

    /// <summary>The status's symbolic name, e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c> or <c>NVRTC_ERROR_COMPILATION</c>.</summary>
    public string StatusName { get; }

    /// <summary>The library's own description of the status (for NVRTC, which has none, the name again).</summary>
    public string StatusDescription { get; }

    /// <summary>The Kiln source file that made the failing call.</summary>
    public string CallerFile { get; }

    /// <summary>The line in <see cref="CallerFile"/> that made the failing call.</summary>
    public int CallerLine { get; }

    private static string FormatMessage(string api, int status, string statusName, string statusDescription, string callerFile, int callerLine, string? detail)
    {
        var text = new StringBuilder();
        text.Append(api).Append(" failed with ").Append(statusName).Append(" (").Append(status).Append(')');
        if (!string.IsNullOrEmpty(statusDescription) && statusDescription != statusName)
            text.Append(": ").Append(statusDescription);
        text.Append(" [called from ").Append(Path.GetFileName(callerFile)).Append(':').Append(callerLine).Append(']');
        if (!string.IsNullOrEmpty(detail))
            text.Append('\n').Append(detail);
        return text.ToString();
    }
}

/// <summary>How serious an NVRTC diagnostic is.</summary>
public enum NvrtcSeverity
{
    /// <summary>The program did not compile.</summary>
    Error,

    /// <summary>The program compiled, but something is probably wrong.</summary>
    Warning,

    /// <summary>Information only.</summary>
    Remark,
}

/// <summary>One diagnostic parsed from an NVRTC log line such as <c>kernel.cu(12): error: identifier "x" is undefined</c>.</summary>
/// <param name="File">The file NVRTC reports (the program name, or the C# file a <c>#line</c> directive names); empty for a message "At end of source".</param>
/// <param name="Line">The 1-based line in that file; 0 for a message "At end of source".</param>
/// <param name="Severity">Error, warning or remark.</param>
/// <param name="Code">The diagnostic number when NVRTC prints one (e.g. <c>177-D</c>), otherwise <see langword="null"/>.</param>
/// <param name="Message">The text after the severity.</param>
public sealed record NvrtcDiagnostic(string File, int Line, NvrtcSeverity Severity, string? Code, string Message)
{
    // NVRTC (EDG front end) writes "name(line): error: text", "name(line): warning #177-D: text" and
    // "name(line): catastrophic error: text"; the program name may itself contain parentheses.
    private static readonly Regex LinePattern = new(
        @"^(?<file>.+)\((?<line>\d+)\): (?<severity>catastrophic error|error|warning|remark)(?: #(?<code>[0-9A-Za-z-]+))?: (?<message>.*)$",
        RegexOptions.CultureInvariant | RegexOptions.Compiled);

    // A message about the end of the translation unit has no line: "At end of source: error: expected a \"}\"".
    private static readonly Regex EndOfSourcePattern = new(
        @"^At end of source: (?<severity>catastrophic error|error|warning|remark)(?: #(?<code>[0-9A-Za-z-]+))?: (?<message>.*)$",
        RegexOptions.CultureInvariant | RegexOptions.Compiled);

    /// <summary>Parses every diagnostic line of an NVRTC log; source excerpts, carets and summary lines are skipped.</summary>
    /// <param name="log">The program log from <c>nvrtcGetProgramLog</c>.</param>
    public static IReadOnlyList<NvrtcDiagnostic> Parse(string log)
    {
        var diagnostics = new List<NvrtcDiagnostic>();
        if (string.IsNullOrEmpty(log))
            return diagnostics;

        foreach (string rawLine in log.Split('\n'))
        {
            string line = rawLine.TrimEnd('\r');
            Match match = LinePattern.Match(line);
            bool atEnd = false;
            if (!match.Success)
            {
                match = EndOfSourcePattern.Match(line);
                if (!match.Success)
                    continue;
                atEnd = true;
            }

            string severityText = match.Groups["severity"].Value;
            NvrtcSeverity severity = severityText switch
            {
                "warning" => NvrtcSeverity.Warning,
                "remark" => NvrtcSeverity.Remark,
                _ => NvrtcSeverity.Error,
            };
            string? code = match.Groups["code"].Success ? match.Groups["code"].Value : null;
            diagnostics.Add(new NvrtcDiagnostic(
                atEnd ? string.Empty : match.Groups["file"].Value,
                atEnd ? 0 : int.Parse(match.Groups["line"].Value, System.Globalization.CultureInfo.InvariantCulture),
                severity,
                code,
                match.Groups["message"].Value.Trim()));
        }

        return diagnostics;
    }

    /// <summary>The diagnostic in NVRTC's own format.</summary>
    public override string ToString()
    {
        string severity = Severity switch
        {
            NvrtcSeverity.Warning => "warning",
            NvrtcSeverity.Remark => "remark",
            _ => "error",
        };
        return Code is null ? $"{File}({Line}): {severity}: {Message}" : $"{File}({Line}): {severity} #{Code}: {Message}";
    }
}

/// <summary>NVRTC rejected a program: the exception carries the full compiler log and the diagnostics parsed from it.</summary>
public sealed class NvrtcCompileException : KilnCudaException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="programName">The name the program was compiled under (appears in the log lines).</param>
    /// <param name="options">The compiler options used.</param>
    /// <param name="log">The full compiler log.</param>
    /// <param name="api">The failing NVRTC function (normally <c>nvrtcCompileProgram</c>).</param>
    /// <param name="status">The NVRTC status code.</param>
    /// <param name="statusName">The status's name.</param>
    /// <param name="callerFile">The Kiln source file that made the call.</param>
    /// <param name="callerLine">The line in <paramref name="callerFile"/>.</param>
    public NvrtcCompileException(string programName, IReadOnlyList<string> options, string log, string api, int status, string statusName, string callerFile, int callerLine)
        : this(programName, options, log, NvrtcDiagnostic.Parse(log), api, status, statusName, callerFile, callerLine)
    {
    }

    private NvrtcCompileException(string programName, IReadOnlyList<string> options, string log, IReadOnlyList<NvrtcDiagnostic> diagnostics, string api, int status, string statusName, string callerFile, int callerLine)
        : base(api, status, statusName, statusName, callerFile, callerLine, Describe(programName, options, log, diagnostics))
    {
        ProgramName = programName;
        Options = options;
        Log = log;
        Diagnostics = diagnostics;
    }

    /// <summary>The name the program was compiled under.</summary>
    public string ProgramName { get; }

    /// <summary>The compiler options used.</summary>
    public IReadOnlyList<string> Options { get; }

    /// <summary>The full NVRTC log, unmodified.</summary>
    public string Log { get; }

    /// <summary>The diagnostics parsed from <see cref="Log"/> (errors, warnings and remarks, in log order).</summary>
    public IReadOnlyList<NvrtcDiagnostic> Diagnostics { get; }

    private static string Describe(string programName, IReadOnlyList<string> options, string log, IReadOnlyList<NvrtcDiagnostic> diagnostics)
    {
        var text = new StringBuilder();
        int errors = 0;
        foreach (var d in diagnostics)
        {
            if (d.Severity == NvrtcSeverity.Error)
                errors++;
        }

        text.Append("NVRTC could not compile '").Append(programName).Append('\'');
        if (errors > 0)
            text.Append(" (").Append(errors).Append(errors == 1 ? " error" : " errors").Append(')');
        text.Append(" with options: ").Append(options.Count == 0 ? "(none)" : string.Join(' ', options)).Append('\n');
        text.Append(string.IsNullOrWhiteSpace(log) ? "(NVRTC wrote no log)" : log.TrimEnd());
        return text.ToString();
    }
}

/// <summary>
/// A GPU architecture was requested that the loaded NVRTC cannot compile for. The message lists the
/// architectures it supports and the ways out (a newer NVRTC, or PTX for an older virtual architecture).
/// </summary>
public sealed class NvrtcArchitectureException : NotSupportedException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="requested">The requested architecture as written in the option, e.g. <c>sm_100</c>.</param>
    /// <param name="nvrtcVersion">The loaded NVRTC's version.</param>
    /// <param name="supported">The architectures (compute capability × 10) the loaded NVRTC supports.</param>
    public NvrtcArchitectureException(string requested, Version nvrtcVersion, IReadOnlyList<int> supported)
        : base(FormatMessage(requested, nvrtcVersion, supported))
    {
        Requested = requested;
        NvrtcVersion = nvrtcVersion;
        Supported = supported;
    }

    /// <summary>The requested architecture as written, e.g. <c>sm_100</c>.</summary>
    public string Requested { get; }

    /// <summary>The loaded NVRTC's version.</summary>
    public Version NvrtcVersion { get; }

    /// <summary>The architectures the loaded NVRTC supports (e.g. 80, 90).</summary>
    public IReadOnlyList<int> Supported { get; }

    private static string FormatMessage(string requested, Version version, IReadOnlyList<int> supported)
    {
        var names = new List<string>(supported.Count);
        foreach (int arch in supported)
            names.Add("sm_" + arch.ToString(System.Globalization.CultureInfo.InvariantCulture));
        string highest = supported.Count > 0 ? supported[^1].ToString(System.Globalization.CultureInfo.InvariantCulture) : "?";
        return $"NVRTC {version.Major}.{version.Minor} cannot compile for {requested}: it supports {string.Join(", ", names)}. " +
               $"Fix: install a newer NVRTC (libnvrtc.so.12 or libnvrtc.so.13) and point {NativeLibraries.CudaPathVariable} at it, " +
               $"or compile PTX for compute_{highest} and let the driver JIT it for the newer GPU.";
    }
}
