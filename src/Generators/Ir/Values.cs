using System.Collections.Generic;
using Kiln.Generators.Parsing;

namespace Kiln.Generators.Ir;

// Values of the abstract interpreter that lowers model methods: tensors are graph nodes, numbers are
// symbolic, layers and modules are instances with their parameters already in the graph.

internal abstract class Val { public abstract string Describe { get; } }

internal sealed class TensorV : Val
{
    public TensorV(int node) => Node = node;
    public int Node { get; }
    public override string Describe => "a tensor";
}

internal sealed class IntV : Val
{
    public IntV(Sym value) => Value = value;
    public Sym Value { get; }
    public override string Describe => "an integer";
}

internal sealed class FloatV : Val
{
    public FloatV(Scalar value) => Value = value;
    public Scalar Value { get; }
    public override string Describe => "a number";
}

internal sealed class LayerV : Val
{
    public LayerV(string kind, string path) { Kind = kind; Path = path; }
    public string Kind { get; }
    public string Path { get; }
    public Sym In { get; set; } = Sym.One;
    public Sym Out { get; set; } = Sym.One;
    public int Weight { get; set; } = -1;
    public int Bias { get; set; } = -1;
    public Scalar Scalar { get; set; } = Scalar.Const(0);
    public int Site { get; set; }
    public override string Describe => "a " + Kind + " layer";
}

internal sealed class ModuleV : Val
{
    public ModuleV(ModuleSpec spec, string path) { Spec = spec; Path = path; }
    public ModuleSpec Spec { get; }
    public string Path { get; }
    public Dictionary<string, Val> Env { get; } = new();
    public override string Describe => "module " + Spec.Name;
}

internal sealed class ArrayV : Val
{
    public ArrayV(IReadOnlyList<Val> items) => Items = items;
    public IReadOnlyList<Val> Items { get; }
    public override string Describe => "an array";
}

internal sealed class LambdaV : Val
{
    public LambdaV(LambdaExpr lambda) => Lambda = lambda;
    public LambdaExpr Lambda { get; }
    public override string Describe => "a lambda";
}

/// <summary>
/// Same-shaped modules from <c>Module.Repeat(count, …)</c>: one template instance whose parameters are stacked
/// <c>[count, …]</c> (llm.c's layout). A loop over it lowers to one loop region whatever the count, so the count is
/// bound when the model is constructed; any other use of it makes the lowerer unroll it instead.
/// </summary>
internal sealed class RepeatV : Val
{
    public RepeatV(Sym count, Val template, string path, bool recompute) { Count = count; Template = template; Path = path; Recompute = recompute; }
    public Sym Count { get; }
    /// <summary>The module (or layer) every iteration runs, its parameters stacked.</summary>
    public Val Template { get; }
    /// <summary>The field path (the key that unrolls it when a loop over it cannot be a region).</summary>
    public string Path { get; }
    /// <summary>The backward pass recomputes each iteration's forward ([Recompute]).</summary>
    public bool Recompute { get; }
    public override string Describe => "repeated modules (Module.Repeat)";
}
