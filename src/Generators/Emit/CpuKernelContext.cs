using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Common;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Emit;

/// <summary>
/// What a registry entry's CPU lowering sees of the node it lowers: its operands as <c>array, offset</c> argument
/// pairs, its output, whether it accumulates into the gradient slab, and how sizes and scalars are spelled.
/// </summary>
internal sealed class CpuKernelContext
{
    /// <summary>The runtime's CPU kernel class.</summary>
    public const string Kernels = "global::Kiln.Runtime.Cpu.Kernels";

    private readonly CodeWriter _w;
    private readonly Graph _g;
    private readonly System.Func<int, (string Array, string Offset)> _buf;
    private readonly SymbolNames _names;

    public CpuKernelContext(CodeWriter w, Graph g, Node node, System.Func<int, (string, string)> buf, SymbolNames names, bool accumulate, string? layer = null)
    { _w = w; _g = g; Node = node; _buf = buf; _names = names; Accumulates = accumulate; Layer = layer; }

    /// <summary>Inside a loop body: the C# expression of the iteration index (null outside loops).</summary>
    public string? Layer { get; }

    public Node Node { get; }
    /// <summary>The node's first input.</summary>
    public Node X => _g[Node.Inputs[0]];
    public Node Input(int i) => _g[Node.Inputs[i]];
    /// <summary>Whether the result is added into the gradient slab rather than stored.</summary>
    public bool Accumulates { get; }
    public string Acc => Accumulates ? "true" : "false";

    /// <summary>Input <paramref name="i"/> as the <c>array, offset</c> arguments of a runtime kernel.</summary>
    public string In(int i) { var (a, o) = _buf(Node.Inputs[i]); return a + ", " + o; }
    /// <summary>The output as <c>array, offset</c>.</summary>
    public string Out { get { var (a, o) = _buf(Node.Id); return a + ", " + o; } }
    public string OutArray => _buf(Node.Id).Array;
    public string OutOffset => _buf(Node.Id).Offset;

    /// <summary>A size as a C# <c>long</c> expression.</summary>
    public string S(Sym s) => _names.Sym(s);
    /// <summary>The element count of <paramref name="dims"/> as a C# <c>long</c> expression.</summary>
    public string N(IEnumerable<Sym> dims) => S(Shapes.Numel(dims.ToList()));
    /// <summary>A symbolic float as a C# <c>float</c> expression.</summary>
    public string Scalar(Ir.Scalar s) => _names.Scalar(s);

    /// <summary>Writes a call of runtime kernel <paramref name="kernel"/>; null arguments are left out.</summary>
    public void Call(string kernel, params string?[] args) => _w.Line($"{Kernels}.{kernel}({string.Join(", ", args.Where(a => a is not null))});");

    public void Line(string text) => _w.Line(text);
}
