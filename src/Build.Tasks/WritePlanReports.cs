using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Kiln.Build.Tasks.Kernels;
using Microsoft.Build.Framework;

namespace Kiln.Build.Tasks
{
    /// <summary>
    /// Writes the parallel plan of every <c>[Model]</c> in the built assembly — the generator's <c>KilnPlanReport</c>
    /// (Markdown) and <c>KilnPlanJson</c> constants — to <c>&lt;Model&gt;.plan.md</c> and <c>&lt;Model&gt;.plan.json</c>,
    /// and logs one line per model: ranks, memory per rank and communication per step. Files whose content is unchanged
    /// are not rewritten, and files of models that no longer exist are removed.
    /// </summary>
    public sealed class WritePlanReports : Microsoft.Build.Utilities.Task
    {
        /// <summary>The assembly CoreCompile just wrote.</summary>
        [Required] public ITaskItem Assembly { get; set; } = null!;

        /// <summary>Where the plan files go (<c>$(IntermediateOutputPath)kiln-plan/</c>).</summary>
        [Required] public string OutputDirectory { get; set; } = "";

        /// <summary>The plan files of this build.</summary>
        [Output] public ITaskItem[] PlanFiles { get; private set; } = Array.Empty<ITaskItem>();

        /// <inheritdoc/>
        public override bool Execute()
        {
            List<KernelSource> reports, jsons;
            var path = Assembly.GetMetadata("FullPath");
            try
            {
                reports = KernelSourceReader.Read(path, "KilnPlanReport");
                jsons = KernelSourceReader.Read(path, "KilnPlanJson");
            }
            catch (Exception e) when (e is IOException || e is BadImageFormatException || e is UnauthorizedAccessException)
            {
                Log.LogError(null, BuildCodes.AssemblyUnreadable, null, path, 0, 0, 0, 0, $"Kiln could not read the built assembly '{path}' for its plan reports: {e.Message}");
                return false;
            }
            Directory.CreateDirectory(OutputDirectory);
            var written = new List<ITaskItem>();
            var keep = new HashSet<string>(StringComparer.Ordinal);
            foreach (var report in reports)
            {
                var json = jsons.FirstOrDefault(j => j.TypeName == report.TypeName);
                foreach (var (ext, text) in new[] { (".plan.md", report.Source), (".plan.json", json?.Source) })
                {
                    if (text is null) continue;
                    var file = Path.Combine(OutputDirectory, report.TypeName + ext);
                    keep.Add(Path.GetFileName(file));
                    if (!File.Exists(file) || File.ReadAllText(file, Encoding.UTF8) != text) WriteAtomically(file, text);
                    written.Add(new Microsoft.Build.Utilities.TaskItem(file));
                }
                Log.LogMessage(MessageImportance.High, $"Kiln: plan of {report.TypeName}: {Summary(report.Source)} → {Path.Combine(OutputDirectory, report.TypeName + ".plan.md")}");
            }
            foreach (var stale in Directory.GetFiles(OutputDirectory, "*.plan.*").Where(f => !keep.Contains(Path.GetFileName(f))))
                File.Delete(stale);
            PlanFiles = written.ToArray();
            return !Log.HasLoggedErrors;
        }

        /// <summary>The mesh line and the per-rank total of a Markdown report, for the build log.</summary>
        internal static string Summary(string markdown)
        {
            var lines = markdown.Split('\n');
            var mesh = lines.FirstOrDefault(l => l.StartsWith("Mesh: ", StringComparison.Ordinal))?.Substring(6).TrimEnd('.') ?? "";
            var total = lines.FirstOrDefault(l => l.StartsWith("| **total** | **", StringComparison.Ordinal));
            var bytes = total is null ? "" : total.Substring("| **total** | **".Length).Split(new[] { "**" }, StringSplitOptions.None)[0];
            if (bytes.StartsWith("`", StringComparison.Ordinal)) return $"{mesh}; memory per rank is a formula of the unbound sizes (give Batch and Sequence in [Parallel])";
            return bytes.Length > 0 ? $"{mesh}; {bytes} per rank" : mesh;
        }

        private static void WriteAtomically(string file, string text)
        {
            var temp = file + ".tmp";
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            if (File.Exists(file)) File.Delete(file);
            File.Move(temp, file);
        }
    }
}
