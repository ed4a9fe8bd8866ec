using System;
using System.IO;
using System.Linq;
using Kiln.Build.Tasks.Kernels;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Kiln.Build.Tasks.Tests;

public class KernelSourceReaderTests
{
    private const string Code = """
        namespace Models.Vision
        {
            public partial class Outer
            {
                public partial class Net { public const string KilnCudaSource = "extern \"C\" __global__ void net_k0_fwd() {}\n// é ✓"; }
            }
            public partial class Mlp { public const string KilnCudaSource = @"// mlp"; }
            public class NotAConstant { public static readonly string KilnCudaSource = "ignored"; }
            public class OtherName { public const string KilnCudaSourceX = "ignored"; }
            public class NullConstant { public const string KilnCudaSource = null; }
        }
        public class Global { public const string KilnCudaSource = "global"; }
        """;

    private static string CompileToTempFile(string code)
    {
        var compilation = CSharpCompilation.Create("KernelCarrier" + Guid.NewGuid().ToString("N"),
            new[] { CSharpSyntaxTree.ParseText(code) },
            new[] { MetadataReference.CreateFromFile(typeof(object).Assembly.Location) },
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        string path = Path.Combine(Path.GetTempPath(), compilation.AssemblyName + ".dll");
        var result = compilation.Emit(path);
        Assert.True(result.Success, string.Join("\n", result.Diagnostics));
        return path;
    }

    [Fact]
    public void Reads_every_const_KilnCudaSource_with_its_declaring_type_and_nothing_else()
    {
        string path = CompileToTempFile(Code);
        try
        {
            var sources = KernelSourceReader.Read(path).OrderBy(s => s.TypeName, StringComparer.Ordinal).ToList();
            Assert.Equal(new[] { "Global", "Models.Vision.Mlp", "Models.Vision.Outer.Net" }, sources.Select(s => s.TypeName));
            Assert.Equal("extern \"C\" __global__ void net_k0_fwd() {}\n// é ✓", sources[2].Source);
            Assert.Equal("// mlp", sources[1].Source);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_file_that_is_not_an_assembly_is_a_BadImageFormatException()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "not a PE file");
            Assert.ThrowsAny<BadImageFormatException>(() => KernelSourceReader.Read(path));
        }
        finally { File.Delete(path); }
    }
}
