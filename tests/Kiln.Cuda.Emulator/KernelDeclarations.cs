using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;

namespace Kiln.Cuda.Emulator;

/// <summary>One parameter of a kernel: its C type (without <c>__restrict__</c>) and name.</summary>
internal sealed record KernelParameter(string Type, string Name)
{
    public bool IsPointer => Type.EndsWith('*');

    public override string ToString() => Type + " " + Name;
}

/// <summary>An <c>extern "C" __global__</c> kernel of a module.</summary>
internal sealed record KernelDeclaration(string Name, IReadOnlyList<KernelParameter> Parameters)
{
    /// <summary>The exported wrapper that unpacks <c>void** args</c> (cuLaunchKernel's kernelParams) and calls the kernel.</summary>
    public string WrapperSymbol => "__kiln_emu_call_" + Name;

    public override string ToString() => $"{Name}({string.Join(", ", Parameters)})";
}

/// <summary>
/// Finds the kernels of a translation unit and writes the dispatch code g++ compiles after it. Kiln's emitter declares
/// every kernel on one line as <c>extern "C" __global__ void NAME(PARAMS)</c>; that is the form recognised here.
/// </summary>
internal static partial class KernelDeclarations
{
    [GeneratedRegex("""^[ \t]*extern[ \t]+"C"[ \t]+__global__[ \t]+(?:__launch_bounds__[ \t]*\([^)\n]*\)[ \t]*)?void[ \t]+(?:__launch_bounds__[ \t]*\([^)\n]*\)[ \t]*)?([A-Za-z_]\w*)[ \t]*\(([^)\n]*)\)""", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex Declaration();

    [GeneratedRegex(@"^(.*?[\s*&])([A-Za-z_]\w*)$", RegexOptions.CultureInvariant)]
    private static partial Regex TypeThenName();

    [GeneratedRegex(@"\b__restrict__\b|\b__restrict\b", RegexOptions.CultureInvariant)]
    private static partial Regex Restrict();

    [GeneratedRegex(@"\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Spaces();

    [GeneratedRegex(@"\s*\*\s*", RegexOptions.CultureInvariant)]
    private static partial Regex Star();

    // Words that end a type, so a parameter such as `unsigned int` (no name) is not read as type `unsigned`, name `int`.
    private static readonly HashSet<string> TypeWords = new(StringComparer.Ordinal)
    {
        "int", "long", "short", "char", "float", "double", "unsigned", "signed", "bool", "void", "const", "volatile",
    };

    /// <summary>The kernels declared in <paramref name="source"/>, in order; a kernel declared twice appears once.</summary>
    public static IReadOnlyList<KernelDeclaration> Parse(string source, string moduleName)
    {
        var kernels = new List<KernelDeclaration>();
        var byName = new Dictionary<string, KernelDeclaration>(StringComparer.Ordinal);
        foreach (Match m in Declaration().Matches(source))
        {
            string name = m.Groups[1].Value;
            var kernel = new KernelDeclaration(name, ParseParameters(m.Groups[2].Value, name, moduleName));
            if (byName.TryGetValue(name, out var earlier))
            {
                if (!earlier.Parameters.Select(p => p.Type).SequenceEqual(kernel.Parameters.Select(p => p.Type)))
                    throw new EmulatorException($"{moduleName}: kernel {name} is declared twice with different parameters: {earlier} and {kernel}.");
                continue;
            }
            byName.Add(name, kernel);
            kernels.Add(kernel);
        }
        return kernels;
    }

    private static KernelParameter[] ParseParameters(string text, string kernel, string moduleName)
    {
        text = text.Trim();
        if (text.Length == 0 || text == "void") return [];
        string[] parts = text.Split(',');
        var parameters = new KernelParameter[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            string p = Spaces().Replace(Restrict().Replace(parts[i], " "), " ").Trim();
            string type = p, name = "arg" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var m = TypeThenName().Match(p);
            if (m.Success && !TypeWords.Contains(m.Groups[2].Value) && m.Groups[1].Value.Trim().Length > 0)
            {
                type = m.Groups[1].Value;
                name = m.Groups[2].Value;
            }
            type = Star().Replace(type.Trim(), "* ").Trim();
            if (type.Length == 0 || type.Contains('[') || type.Contains('='))
                throw new EmulatorException($"{moduleName}: parameter {i + 1} of kernel {kernel} ('{parts[i].Trim()}') is not of the form 'T name' or 'T* name'.");
            parameters[i] = new KernelParameter(type, name);
        }
        return parameters;
    }

    /// <summary>
    /// C++ appended to the module: for each kernel an exported <c>void __kiln_emu_call_NAME(void** args)</c> that reads
    /// parameter i of its type from <c>args[i]</c> (an 8-byte little-endian slot) and calls the kernel.
    /// </summary>
    public static string Dispatch(IReadOnlyList<KernelDeclaration> kernels)
    {
        var s = new StringBuilder();
        s.Append("\n#line 1 \"kiln-emu-dispatch.cpp\"\n");
        s.Append("// Kernel entry points for the emulator: args[i] points at an 8-byte slot holding parameter i.\n");
        foreach (var k in kernels)
        {
            s.Append("extern \"C\" __attribute__((visibility(\"default\"))) void ").Append(k.WrapperSymbol).Append("(void** args)\n{\n");
            for (int i = 0; i < k.Parameters.Count; i++)
            {
                var p = k.Parameters[i];
                s.Append("    typedef ").Append(p.Type).Append(" kiln_p").Append(i).Append(";\n");
                s.Append("    static_assert(sizeof(kiln_p").Append(i).Append(") <= 8, \"parameter ").Append(p.Name).Append(" of kernel ").Append(k.Name)
                 .Append(" is wider than the 8 bytes a KernelArgument carries\");\n");
            }
            s.Append("    ").Append(k.Name).Append('(');
            for (int i = 0; i < k.Parameters.Count; i++)
                s.Append(i == 0 ? "" : ", ").Append("*static_cast<kiln_p").Append(i).Append("*>(args[").Append(i).Append("])");
            s.Append(");\n}\n");
        }
        return s.ToString();
    }
}
