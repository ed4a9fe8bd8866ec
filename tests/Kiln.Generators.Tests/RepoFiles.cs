using System;
using System.IO;

namespace Kiln.Generators.Tests;

/// <summary>Files of the source tree (examples, docs, goldens), found by walking up from the test assembly.</summary>
internal static class RepoFiles
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Compiler.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"The repository root (the folder with Compiler.sln) is not above {AppContext.BaseDirectory}.");
    });

    /// <summary>The absolute path of <paramref name="relative"/> (a path below the repository root, '/'-separated).</summary>
    public static string Path(string relative) => System.IO.Path.Combine(Root.Value, relative.Replace('/', System.IO.Path.DirectorySeparatorChar));

    /// <summary>The text of a file below the repository root.</summary>
    public static string Read(string relative) => File.ReadAllText(Path(relative));
}
