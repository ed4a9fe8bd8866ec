using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Kiln.Generators.Diagnostics;

namespace Kiln.Generators.Tests;

/// <summary>
/// docs/diagnostics.md documents exactly the generator's descriptors and the build task's codes, in ID order, each with
/// a meaning, a message and a fix.
/// </summary>
public class DiagnosticsDocTests
{
    private static readonly Lazy<string> Doc = new(() => File.ReadAllText(FindDoc()).Replace("\r\n", "\n"));

    private static string FindDoc() => RepoFiles.Path("docs/diagnostics.md");

    /// <summary>Section ID → section text (from its heading to the next one), in document order.</summary>
    private static List<(string Id, string Text)> Sections()
    {
        var headings = Regex.Matches(Doc.Value, @"^## (?<id>\S+)\s*$", RegexOptions.Multiline).ToList();
        return headings.Select((m, i) => (m.Groups["id"].Value,
            Doc.Value.Substring(m.Index, (i + 1 < headings.Count ? headings[i + 1].Index : Doc.Value.Length) - m.Index))).ToList();
    }

    private static IEnumerable<string> DescriptorIds => Descriptors.All.Select(d => d.Id);

    /// <summary>
    /// The build task's codes, read from its code table (src/Build.Tasks/BuildCodes.cs). The task is an MSBuild
    /// assembly this project does not reference, so the table is read as text.
    /// </summary>
    private static readonly Lazy<List<string>> BuildTaskIds = new(() =>
        Regex.Matches(RepoFiles.Read("src/Build.Tasks/BuildCodes.cs"), "\"(KILNB[0-9]{3})\"").Select(m => m.Groups[1].Value).Distinct().ToList());

    private static IEnumerable<string> AllIds => DescriptorIds.Concat(BuildTaskIds.Value);

    [Fact]
    public void Every_descriptor_has_a_section_whose_heading_is_its_id()
    {
        var documented = Sections().Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        var missing = DescriptorIds.Where(id => !documented.Contains(id)).OrderBy(id => id, StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, "docs/diagnostics.md has no '## <ID>' section for " + string.Join(", ", missing));
    }

    [Fact]
    public void Every_build_task_code_has_a_section_whose_heading_is_its_id()
    {
        Assert.NotEmpty(BuildTaskIds.Value);
        var documented = Sections().Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        var missing = BuildTaskIds.Value.Where(id => !documented.Contains(id)).ToList();
        Assert.True(missing.Count == 0, "docs/diagnostics.md has no '## <ID>' section for " + string.Join(", ", missing));
    }

    [Fact]
    public void Doc_names_no_unknown_ids_and_has_no_duplicate_sections()
    {
        var known = AllIds.ToHashSet(StringComparer.Ordinal);
        var named = Regex.Matches(Doc.Value, @"\bKILN[0-9B]\w*").Select(m => m.Value).Distinct().ToList();
        var unknown = named.Where(id => !known.Contains(id)).ToList();
        Assert.True(unknown.Count == 0, "docs/diagnostics.md names IDs that are not in Descriptors.cs or BuildCodes.cs: " + string.Join(", ", unknown));
        var ids = Sections().Select(s => s.Id).ToList();
        Assert.Equal(ids.Distinct().Count(), ids.Count);
    }

    [Fact]
    public void Sections_are_in_id_order()
    {
        var ids = Sections().Select(s => s.Id).ToList();
        Assert.Equal(ids.OrderBy(id => id, StringComparer.Ordinal), ids);
    }

    [Fact]
    public void Each_section_has_a_meaning_a_message_and_a_fix_and_triggerable_ids_have_bad_and_fixed_code()
    {
        foreach (var (id, text) in Sections())
        {
            Assert.True(text.Contains("Meaning:", StringComparison.Ordinal), $"{id}: no 'Meaning:'");
            Assert.True(Regex.IsMatch(text, @"^Message: `[^`]+`", RegexOptions.Multiline), $"{id}: no 'Message: `...`' line");
            Assert.True(Regex.IsMatch(text, @"^Fix\b", RegexOptions.Multiline), $"{id}: no 'Fix' paragraph");
            // Build task codes are about project files and NVRTC, so their examples may be MSBuild XML or CUDA.
            bool buildTask = BuildTaskIds.Value.Contains(id);
            int codeBlocks = Regex.Matches(text, buildTask ? "^```[a-z]+$" : "^```csharp$", RegexOptions.Multiline).Count;
            int needed = MalformedModelTests.NotTriggerableFromSource.Contains(id) || id == "KILNB006" ? 1 : 2;
            Assert.True(codeBlocks >= needed, $"{id}: expected a bad example and a fix ({needed} code blocks), found {codeBlocks}");
        }
    }

    [Fact]
    public void Help_links_point_at_the_sections()
    {
        foreach (var d in Descriptors.All)
            Assert.EndsWith("docs/diagnostics.md#" + d.Id.ToLowerInvariant(), d.HelpLinkUri, StringComparison.Ordinal);
    }
}
