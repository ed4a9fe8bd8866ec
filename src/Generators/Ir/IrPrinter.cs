using System.Globalization;
using System.Linq;
using System.Text;

namespace Kiln.Generators.Ir;

/// <summary>The stable textual form of a graph, used by golden tests, error messages and KilnDumpIr.</summary>
internal static class IrPrinter
{
    public static string Print(Graph g)
    {
        var sb = new StringBuilder();
        sb.Append("graph ").Append(g.Kind.ToString().ToLowerInvariant()).Append('(');
        sb.Append(string.Join(", ", g.Inputs.Select(i => $"{i.Name}: {Type(i.DType, i.Shape)}")));
        sb.Append(")\n");
        foreach (var p in g.Parameters.Select((p, i) => (p, i)))
            sb.Append($"  param #{p.i} {p.p.Name}: f32{Shapes.Format(p.p.Shape)} init={p.p.Init}{(p.p.WeightDecay ? " decay" : "")}\n");
        PrintBody(sb, g, "  ");
        return sb.ToString();
    }

    /// <summary>The nodes, outputs, constraints and plan of <paramref name="g"/>; a loop's body follows it, indented.</summary>
    private static void PrintBody(StringBuilder sb, Graph g, string indent)
    {
        var groupOf = g.Groups?.SelectMany(gr => gr.Members.Select(m => (m, gr))).ToDictionary(x => x.m, x => x.gr);
        foreach (var n in g.Nodes)
        {
            sb.Append(indent).Append('%').Append(n.Id).Append(" = ").Append(Node(n, g.IsLow(n.Id)));
            if (groupOf is not null && groupOf.TryGetValue(n.Id, out var grp))
                sb.Append(grp.Root == n.Id ? $"  ; kernel k{grp.Id} {grp.Kind.Text()}" : $"  ; fused into k{grp.Id}");
            if (g.Plan is not null && g.Plan.Placements.TryGetValue(n.Id, out var pl))
                sb.Append("  @").Append(pl.Buffer.ToString().ToLowerInvariant()).Append('[').Append(pl.Buffer switch
                {
                    // Parameters and their gradients sit at the table offset of their parameter, inputs in their own buffer,
                    // loop arguments and results in the loop's inputs and outputs.
                    BufferKind.Params or BufferKind.LowParams or BufferKind.Grads or BufferKind.LoopIn or BufferKind.LoopOut => "#" + pl.Param.ToString(CultureInfo.InvariantCulture),
                    BufferKind.Input => pl.InputName,
                    _ => pl.Offset.ToString(),
                }).Append(']');
            if (n.Src.Line > 0) sb.Append("  # ").Append(n.Src);
            sb.Append('\n');
            if (n.Attr is LoopAttr loop)
            {
                sb.Append(indent).Append("  body {\n");
                PrintBody(sb, loop.Body, indent + "    ");
                sb.Append(indent).Append("  }\n");
            }
        }
        foreach (var o in g.Outputs)
            sb.Append(indent).Append("output ").Append(o.Role switch
            {
                OutputRole.ParamGrad => $"grad({g.Parameters[o.Param].Name})",
                OutputRole.Carried or OutputRole.Stacked => o.Role.ToString().ToLowerInvariant() + " #" + o.Param.ToString(CultureInfo.InvariantCulture),
                _ => o.Role.ToString().ToLowerInvariant(),
            }).Append(" = %").Append(o.Node).Append('\n');
        if (g.HasOptimizerStep) sb.Append(indent).Append("update params ← optimizer(params, grads)\n");
        foreach (var c in g.Constraints)
            sb.Append(indent).Append("require ").Append(c.Kind == ConstraintKind.Equal ? $"{c.A} == {c.B}" : $"{c.A} % {c.B} == 0").Append("  # ").Append(c.Src).Append('\n');
        if (g.Plan is not null)
            sb.Append(indent).Append("arena f32[").Append(g.Plan.FloatArenaElements).Append("] low[").Append(g.Plan.LowArenaElements).Append("] i32[").Append(g.Plan.IntArenaElements).Append("]\n");
    }

    public static string Type(DType t, Sym[] shape) => t switch { DType.F32 => "f32", DType.I32 => "i32", _ => "token" } + Shapes.Format(shape);

    /// <summary>A node; <paramref name="low"/> prints its type as <c>low[...]</c> (stored in the program's low-precision type).</summary>
    public static string Node(Node n, bool low = false)
    {
        var sb = new StringBuilder();
        sb.Append(n.Op.ToString().ToLowerInvariant());
        var parts = n.Inputs.Select(i => "%" + i.ToString(CultureInfo.InvariantCulture)).ToList();
        if (n.Attr is not null) parts.AddRange(n.Attr.PrintParts());
        sb.Append('(').Append(string.Join(", ", parts)).Append(") : ").Append(low ? "low" + Shapes.Format(n.Shape) : Type(n.DType, n.Shape));
        return sb.ToString();
    }
}
