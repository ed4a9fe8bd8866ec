using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Kiln.Runtime.Interop;

namespace Kiln.Package.Tests;

/// <summary>
/// What a user does with Kiln from an empty folder, run once per test run in this order: pack the Kiln and
/// Kiln.Templates packages into a local feed (a version of their own, so no cached package is used); then, in a
/// temporary folder that sees only that feed and the usual NuGet source, <c>dotnet new console</c>,
/// <c>dotnet add package Kiln</c>, write the model of the package's README, build, train, build again (nothing to
/// do), publish self-contained and with NativeAOT and run both with the machine's .NET hidden; and install the
/// templates and build and train each. Each fact checks one step.
/// </summary>
public sealed class EndToEnd : IDisposable
{
    public string Root { get; }
    public string Feed => Path.Combine(Root, "feed");
    public string AppDir => Path.Combine(Root, "App");
    public string Version { get; }
    /// <summary>Why no kernels are expected (NVRTC is missing), or null when builds must compile them.</summary>
    public string? NvrtcMissing { get; }

    public CommandRun PackKiln { get; }
    public CommandRun PackTemplates { get; }
    public string KilnPackage => Path.Combine(Feed, $"Kiln.{Version}.nupkg");
    public string KilnSymbols => Path.Combine(Feed, $"Kiln.{Version}.snupkg");
    public string TemplatesPackage => Path.Combine(Feed, $"Kiln.Templates.{Version}.nupkg");

    public CommandRun NewConsole { get; }
    public CommandRun AddPackage { get; }
    public CommandRun Build { get; }
    public CommandRun Train { get; }
    public CommandRun SecondBuild { get; }
    public CommandRun Publish { get; }
    public string PublishDir => Path.Combine(Root, "publish");
    public CommandRun RunPublished { get; }
    public CommandRun PublishAot { get; }
    public string AotDir => Path.Combine(Root, "aot");
    public CommandRun RunAot { get; }
    /// <summary>How the published apps were shown to run without .NET.</summary>
    public string WithoutDotnet { get; }

    public CommandRun InstallTemplates { get; }
    public IReadOnlyDictionary<string, (CommandRun New, CommandRun Build, CommandRun Train)> Templates { get; }

    public const string TrainingProgram = """
        using System;
        using Kiln;
        using Kiln.Runtime;

        // y = sin(x0) + x1·x2 − 0.5·x3² on 4096 random points of [-1, 1]^8.
        const int n = 4096, inputs = 8;
        var rng = new Random(1);
        var x = new float[n * inputs];
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < inputs; j++) x[i * inputs + j] = (float)(rng.NextDouble() * 2 - 1);
            y[i] = MathF.Sin(x[i * inputs]) + x[i * inputs + 1] * x[i * inputs + 2] - 0.5f * x[i * inputs + 3] * x[i * inputs + 3];
        }
        var (train, heldOut) = new InMemoryDataset(("x", TensorData.Float(x, n, inputs)), ("y", TensorData.Float(y, n, 1))).Split(0.2, seed: 1);
        long steps = args.Length > 0 ? long.Parse(args[0]) : 600;
        var trainer = new Regressor(depth: 3).CreateTrainer(new TrainOptions { Steps = steps, BatchSize = 64, Device = "cpu", Progress = ProgressMode.None });
        double before = trainer.Evaluate(heldOut);
        trainer.Fit(train, heldOut);
        double after = trainer.Evaluate(heldOut);
        Console.WriteLine($"held-out MSE {before:F4} -> {after:F4}");
        return after < before / 4 ? 0 : 1;
        """;

    public EndToEnd()
    {
        Root = Directory.CreateTempSubdirectory("kiln-package-e2e-").FullName;
        var prefix = typeof(Kiln.Runtime.ModelProgram).Assembly.GetName().Version!;
        string suffix = "e2e.t" + Guid.NewGuid().ToString("N")[..12];
        Version = $"{prefix.Major}.{prefix.Minor}.{prefix.Build}-{suffix}";
        NvrtcMissing = NvrtcCompiler.TryCreate(out _, out string reason) ? null : reason.Split('\n')[0];

        // MSBuild must not pick up the repository's (or anyone's) Directory.Build.* or central package versions.
        File.WriteAllText(Path.Combine(Root, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(Root, "Directory.Build.targets"), "<Project />\n");
        File.WriteAllText(Path.Combine(Root, "Directory.Packages.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(Root, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="kiln-e2e" value="{Feed}" />
              </packageSources>
            </configuration>
            """);

        string cfg = RepoFiles.Configuration;
        PackKiln = Shell.Dotnet(Root, "pack", RepoFiles.Path("src/Package/Kiln.Package.csproj"), "-c", cfg, "--no-build", "-o", Feed, "-p:VersionSuffix=" + suffix, "-nodeReuse:false");
        PackTemplates = Shell.Dotnet(Root, "pack", RepoFiles.Path("templates/Kiln.Templates.csproj"), "-c", cfg, "--no-build", "-o", Feed, "-p:VersionSuffix=" + suffix, "-nodeReuse:false");

        // A console app with the package, the README's model and a training loop.
        bool packed = PackKiln.Succeeded && File.Exists(KilnPackage);
        NewConsole = Shell.Dotnet(Root, "new", "console", "-o", "App", "--framework", "net10.0");
        AddPackage = packed && NewConsole.Succeeded
            ? Shell.Dotnet(Root, "add", Path.Combine("App", "App.csproj"), "package", "Kiln", "--version", Version)
            : CommandRun.NotRun("dotnet add package Kiln", "packing or dotnet new console failed");
        if (AddPackage.Succeeded)
        {
            File.WriteAllText(Path.Combine(AppDir, "Regressor.cs"), ReadmeModel());
            File.WriteAllText(Path.Combine(AppDir, "Program.cs"), TrainingProgram);
        }
        Build = AddPackage.Succeeded ? Shell.Dotnet(AppDir, "build", "-c", "Release", "-nodeReuse:false", "-tl:off") : CommandRun.NotRun("dotnet build", "adding the package failed");
        Train = Build.Succeeded ? Shell.Dotnet(AppDir, "run", "-c", "Release", "--no-build", "--", "300") : CommandRun.NotRun("dotnet run", "the build failed");
        SecondBuild = Build.Succeeded ? Shell.Dotnet(AppDir, "build", "-c", "Release", "-nodeReuse:false", "-tl:off", "-v:n") : CommandRun.NotRun("dotnet build (again)", "the build failed");

        // Deployment: self-contained, and NativeAOT, each run where no .NET can be found.
        Publish = Build.Succeeded
            ? Shell.Dotnet(AppDir, "publish", "-c", "Release", "-r", "linux-x64", "--self-contained", "-o", PublishDir, "-nodeReuse:false", "-tl:off")
            : CommandRun.NotRun("dotnet publish", "the build failed");
        (RunPublished, WithoutDotnet) = Publish.Succeeded ? RunWithoutDotnet(Path.Combine(PublishDir, "App"), "200") : (CommandRun.NotRun("App", "publishing failed"), "");
        PublishAot = Build.Succeeded
            ? Shell.Dotnet(AppDir, "publish", "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-o", AotDir, "-nodeReuse:false", "-tl:off")
            : CommandRun.NotRun("dotnet publish -p:PublishAot=true", "the build failed");
        RunAot = PublishAot.Succeeded ? RunWithoutDotnet(Path.Combine(AotDir, "App"), "200").Run : CommandRun.NotRun("App (NativeAOT)", "publishing failed");

        // The templates, installed into a hive of this test's own.
        string hive = Path.Combine(Root, "template-hive");
        InstallTemplates = PackTemplates.Succeeded && File.Exists(TemplatesPackage)
            ? Shell.Dotnet(Root, "new", "install", TemplatesPackage, "--debug:custom-hive", hive)
            : CommandRun.NotRun("dotnet new install", "packing the templates failed");
        var templates = new Dictionary<string, (CommandRun, CommandRun, CommandRun)>();
        foreach (var (shortName, project, arguments) in new[] { ("kiln-gpt", "MyGpt", new[] { "--steps=30", "--layers=1" }), ("kiln-classifier", "MyClassifier", new[] { "--steps=300" }) })
        {
            var created = InstallTemplates.Succeeded && packed
                ? Shell.Dotnet(Root, "new", shortName, "-o", project, "--debug:custom-hive", hive)
                : CommandRun.NotRun("dotnet new " + shortName, "installing the templates failed");
            string dir = Path.Combine(Root, project);
            var built = created.Succeeded ? Shell.Dotnet(dir, "build", "-c", "Release", "-nodeReuse:false", "-tl:off") : CommandRun.NotRun("dotnet build", "dotnet new failed");
            var trained = built.Succeeded ? Shell.Dotnet(dir, new[] { "run", "-c", "Release", "--no-build", "--" }.Concat(arguments).ToArray()) : CommandRun.NotRun("dotnet run", "the build failed");
            templates[shortName] = (created, built, trained);
        }
        Templates = templates;
    }

    /// <summary>The model declared in the package's README (src/Package/README.md), so the README is what is tested.</summary>
    public static string ReadmeModel()
    {
        var readme = File.ReadAllText(RepoFiles.Path("src/Package/README.md")).Replace("\r\n", "\n");
        return Regex.Matches(readme, "```csharp\n(?<code>.*?)```", RegexOptions.Singleline)
            .Select(m => m.Groups["code"].Value).Single(c => c.Contains("[Model]", StringComparison.Ordinal));
    }

    /// <summary>
    /// Runs a published app in a mount namespace where the .NET installation (and ~/.dotnet, ~/.nuget) are empty
    /// folders, so it can only use what it carries; where that is impossible (not root, no unshare), runs it with
    /// DOTNET_ROOT unset and a PATH without dotnet, and says so.
    /// </summary>
    private (CommandRun Run, string How) RunWithoutDotnet(string app, string argument)
    {
        string dotnetRoot = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(typeof(object).Assembly.Location)!, "..", "..", ".."));
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var environment = new Dictionary<string, string> { ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ["DOTNET_ROOT"] = "" };
        if (Environment.UserName == "root" && File.Exists("/usr/bin/unshare"))
        {
            var hidden = new[] { dotnetRoot, Path.Combine(home, ".dotnet"), Path.Combine(home, ".nuget") }.Where(Directory.Exists).ToList();
            string script = string.Join(" && ", hidden.Select(d => $"mount -t tmpfs none '{d}'"))
                + $" && test ! -e '{Path.Combine(dotnetRoot, "dotnet")}' && test ! -d '{Path.Combine(dotnetRoot, "shared")}' && echo 'no .NET: {string.Join(", ", hidden)} hidden'"
                + $" && exec '{app}' {argument}";
            var run = Shell.Run(Root, "/usr/bin/unshare", new[] { "-m", "--propagation", "private", "sh", "-c", script }, environment);
            if (!run.Output.Contains("mount: ", StringComparison.Ordinal) && !run.Output.Contains("unshare failed", StringComparison.Ordinal))
                return (run, $"ran in a mount namespace with {string.Join(", ", hidden)} replaced by empty folders");
        }
        return (Shell.Run(Root, app, new[] { argument }, environment), $"ran with DOTNET_ROOT unset and dotnet off PATH (hiding {dotnetRoot} needs root and unshare)");
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        // The packages this run restored into the global folder carry a version no one else uses.
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var id in new[] { "kiln", "kiln.templates" })
        {
            try { Directory.Delete(Path.Combine(packages, id, Version.ToLowerInvariant()), recursive: true); }
            catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
