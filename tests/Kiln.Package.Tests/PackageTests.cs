using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Xml.Linq;

namespace Kiln.Package.Tests;

/// <summary>The Kiln and Kiln.Templates packages: what they hold, and a user's project from an empty folder to a trained model.</summary>
public class PackageTests(EndToEnd e2e, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<EndToEnd>
{
    private static string[] Entries(string package)
    {
        using var zip = ZipFile.OpenRead(package);
        return zip.Entries.Select(e => e.FullName).Where(n => !n.StartsWith("_rels/", StringComparison.Ordinal) && !n.StartsWith("package/", StringComparison.Ordinal)
            && n != "[Content_Types].xml" && !n.EndsWith(".nuspec", StringComparison.Ordinal)).OrderBy(n => n, StringComparer.Ordinal).ToArray();
    }

    private static XElement Nuspec(string package)
    {
        using var zip = ZipFile.OpenRead(package);
        using var stream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        return XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    private static string? Get(XElement metadata, string name) => metadata.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;

    private void Show(params CommandRun[] runs)
    {
        foreach (var r in runs) output.WriteLine($"`{r.Command}`: exit {r.ExitCode}, {r.Elapsed.TotalSeconds:0.0} s");
    }

    [Fact]
    public void The_Kiln_package_holds_the_libraries_generator_task_and_build_files_and_nothing_else()
    {
        Assert.True(e2e.PackKiln.Succeeded, e2e.PackKiln.ToString());
        Assert.Empty(e2e.PackKiln.WarningCodes);
        var taskDependencies = new[] { "System.Buffers.dll", "System.Collections.Immutable.dll", "System.Memory.dll", "System.Numerics.Vectors.dll", "System.Reflection.Metadata.dll", "System.Runtime.CompilerServices.Unsafe.dll" };
        var expected = new[]
        {
            "README.md",
            "analyzers/dotnet/cs/Kiln.Generators.dll",
            "build/Kiln.props", "build/Kiln.targets", "buildTransitive/Kiln.props", "buildTransitive/Kiln.targets",
            "lib/net10.0/Kiln.ModelDsl.dll", "lib/net10.0/Kiln.ModelDsl.xml", "lib/net10.0/Kiln.Runtime.dll", "lib/net10.0/Kiln.Runtime.xml",
            "tasks/netstandard2.0/Kiln.Build.Tasks.deps.json", "tasks/netstandard2.0/Kiln.Build.Tasks.dll",
        }.Concat(taskDependencies.Select(d => "tasks/netstandard2.0/" + d)).OrderBy(n => n, StringComparer.Ordinal).ToArray();
        Assert.Equal(expected, Entries(e2e.KilnPackage));
        // The packed assemblies are the ones this repository built (same size and bytes).
        using (var zip = ZipFile.OpenRead(e2e.KilnPackage))
        {
            foreach (var (entry, built) in new[]
            {
                ("lib/net10.0/Kiln.Runtime.dll", typeof(Kiln.Runtime.ModelProgram).Assembly.Location),
                ("lib/net10.0/Kiln.ModelDsl.dll", typeof(Kiln.Tensor).Assembly.Location),
            })
            {
                using var packed = new MemoryStream();
                using (var s = zip.GetEntry(entry)!.Open()) s.CopyTo(packed);
                Assert.Equal(File.ReadAllBytes(built), packed.ToArray());
            }
        }

        var metadata = Nuspec(e2e.KilnPackage);
        Assert.Equal("Kiln", Get(metadata, "id"));
        Assert.Equal(e2e.Version, Get(metadata, "version"));
        Assert.Equal("MIT", Get(metadata, "license"));
        Assert.Equal("README.md", Get(metadata, "readme"));
        Assert.False(string.IsNullOrWhiteSpace(Get(metadata, "description")));
        var repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");
        Assert.Equal("git", repository.Attribute("type")?.Value);
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");
        // One dependency, the runtime's console library; the generator and the task bring none.
        var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency").ToList();
        var spectre = Assert.Single(dependencies);
        Assert.Equal("Spectre.Console", spectre.Attribute("id")?.Value);
        Assert.Equal("net10.0", spectre.Parent!.Attribute("targetFramework")?.Value);

        // The symbols package carries the libraries' PDBs.
        Assert.Equal(new[] { "lib/net10.0/Kiln.ModelDsl.pdb", "lib/net10.0/Kiln.Runtime.pdb" }, Entries(e2e.KilnSymbols));
    }

    [Fact]
    public void The_templates_package_holds_both_templates_referencing_this_Kiln_version()
    {
        Assert.True(e2e.PackTemplates.Succeeded, e2e.PackTemplates.ToString());
        Assert.Empty(e2e.PackTemplates.WarningCodes);
        var entries = Entries(e2e.TemplatesPackage);
        Assert.Contains("content/kiln-gpt/.template.config/template.json", entries);
        Assert.Contains("content/kiln-classifier/.template.config/template.json", entries);
        Assert.DoesNotContain(entries, e => e.Contains("/bin/", StringComparison.Ordinal) || e.Contains("/obj/", StringComparison.Ordinal));
        var metadata = Nuspec(e2e.TemplatesPackage);
        Assert.Equal("Template", metadata.Descendants().Single(e => e.Name.LocalName == "packageType").Attribute("name")?.Value);
        using var zip = ZipFile.OpenRead(e2e.TemplatesPackage);
        foreach (var project in new[] { "content/kiln-gpt/KilnGpt.csproj", "content/kiln-classifier/KilnClassifier.csproj" })
        {
            using var reader = new StreamReader(zip.GetEntry(project)!.Open());
            var text = reader.ReadToEnd();
            Assert.Contains($"<PackageReference Include=\"Kiln\" Version=\"{e2e.Version}\" />", text);
        }
    }

    [Fact]
    public void A_console_project_with_the_package_builds_without_warnings_and_compiles_its_kernels()
    {
        Show(e2e.NewConsole, e2e.AddPackage, e2e.Build);
        Assert.True(e2e.NewConsole.Succeeded, e2e.NewConsole.ToString());
        Assert.True(e2e.AddPackage.Succeeded, e2e.AddPackage.ToString());
        Assert.True(e2e.Build.Succeeded, e2e.Build.ToString());
        if (e2e.NvrtcMissing is null)
        {
            Assert.Empty(e2e.Build.WarningCodes);
            Assert.Contains("Kiln: 1 model,", e2e.Build.Output);
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(e2e.AppDir, "bin", "Release", "net10.0", "kiln-kernels"), "*.cubin"));
        }
        else
        {
            output.WriteLine("NVRTC is missing, so the build may only warn KILNB001: " + e2e.NvrtcMissing);
            Assert.All(e2e.Build.WarningCodes, code => Assert.Equal("KILNB001", code));
        }
    }

    [Fact]
    public void The_console_project_trains_its_model()
    {
        Show(e2e.Train);
        Assert.True(e2e.Train.Succeeded, e2e.Train.ToString());
        Assert.Matches(@"held-out MSE [0-9.]+ -> [0-9.]+", e2e.Train.Output);
        output.WriteLine(e2e.Train.Output.Trim());
    }

    [Fact]
    public void An_unchanged_second_build_runs_neither_the_generator_nor_the_kernel_compiler()
    {
        Show(e2e.SecondBuild);
        Assert.True(e2e.SecondBuild.Succeeded, e2e.SecondBuild.ToString());
        // The generator runs inside CoreCompile, so a skipped CoreCompile means no generator work.
        Assert.Contains("Skipping target \"CoreCompile\" because all output files are up-to-date", e2e.SecondBuild.Output);
        if (e2e.NvrtcMissing is null)
            Assert.Contains("Skipping target \"KilnCompileKernels\" because all output files are up-to-date", e2e.SecondBuild.Output);
    }

    [Fact]
    public void A_self_contained_publish_carries_its_kernels_and_runs_without_dotnet()
    {
        Show(e2e.Publish, e2e.RunPublished);
        Assert.True(e2e.Publish.Succeeded, e2e.Publish.ToString());
        Assert.DoesNotContain(e2e.Publish.WarningCodes, c => c != "KILNB001" || e2e.NvrtcMissing is null);
        if (e2e.NvrtcMissing is null)
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(e2e.PublishDir, "kiln-kernels"), "*.cubin"));
        output.WriteLine(e2e.WithoutDotnet);
        Assert.True(e2e.RunPublished.Succeeded, e2e.RunPublished.ToString());
        Assert.Contains("held-out MSE", e2e.RunPublished.Output);
    }

    [Fact]
    public void A_NativeAOT_publish_has_no_trimming_or_AOT_warnings_and_trains()
    {
        Show(e2e.PublishAot, e2e.RunAot);
        Assert.True(e2e.PublishAot.Succeeded, e2e.PublishAot.ToString());
        Assert.DoesNotContain(e2e.PublishAot.WarningCodes, c => c != "KILNB001" || e2e.NvrtcMissing is null);
        Assert.DoesNotContain(Directory.GetFiles(e2e.AotDir), f => f.EndsWith(".dll", StringComparison.Ordinal)); // one native executable
        Assert.True(e2e.RunAot.Succeeded, e2e.RunAot.ToString());
        Assert.Contains("held-out MSE", e2e.RunAot.Output);
    }

    [Theory]
    [InlineData("kiln-gpt", "bits/byte")]
    [InlineData("kiln-classifier", "held-out accuracy")]
    public void Each_template_creates_a_project_that_builds_without_warnings_and_trains(string template, string result)
    {
        Assert.True(e2e.InstallTemplates.Succeeded, e2e.InstallTemplates.ToString());
        var (created, built, trained) = e2e.Templates[template];
        Show(created, built, trained);
        Assert.True(created.Succeeded, created.ToString());
        Assert.True(built.Succeeded, built.ToString());
        Assert.DoesNotContain(built.WarningCodes, c => c != "KILNB001" || e2e.NvrtcMissing is null);
        Assert.True(trained.Succeeded, trained.ToString());
        Assert.Contains(result, trained.Output);
        output.WriteLine(string.Join('\n', trained.Output.Split('\n').Where(l => !l.StartsWith("step ", StringComparison.Ordinal))));
    }
}
