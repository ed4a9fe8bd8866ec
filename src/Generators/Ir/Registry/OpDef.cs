using System;
using System.Collections.Generic;
using Kiln.Generators.Emit;

namespace Kiln.Generators.Ir;

/// <summary>Category of an op, which decides how fusion and the emitters treat it.</summary>
internal enum OpKind { Source, Elementwise, Reduction, MatMul, Movement, Indexing, Attention, Region, Collective }

/// <summary>
/// Where a result is stored under mixed precision (after PyTorch's autocast). Every value is computed in fp32;
/// the policy only decides which results are rounded to the program's low-precision type when written.
/// </summary>
internal enum PrecisionPolicy
{
    /// <summary>Low when at least one operand is a low activation and none is an fp32 activation (most elementwise ops).</summary>
    FollowInputs,
    /// <summary>Always fp32: the autocast fp32 list (exp, log, sqrt, rsqrt, pow), reductions, indexing, the loss.</summary>
    Fp32,
    /// <summary>Operands are cast to low and the result is low (matmul), except a parameter gradient, which stays fp32.</summary>
    LowOperands,
    /// <summary>Low exactly when every input is low (movement keeps its input's type).</summary>
    LikeInputs,
    /// <summary>A constant-like source (parameter, fill, dropout mask) that takes the type of the activation it meets.</summary>
    AdoptsActivation,
}

/// <summary>The shape-rule arguments: the op's inputs, attribute, declared shape and the run-time constraint sink.</summary>
internal readonly struct ShapeArgs
{
    public ShapeArgs(Op op, Node[] inputs, OpAttr? attr, Sym[]? declared, Action<Sym, Sym, string> require)
    { Op = op; Inputs = inputs; Attr = attr; Declared = declared; Require = require; }

    public Op Op { get; }
    public Node[] Inputs { get; }
    public OpAttr? Attr { get; }
    /// <summary>The shape the node was built with, for ops that take one (Input, Param, Fill, Arange, Reshape, BroadcastTo, SumTo).</summary>
    public Sym[]? Declared { get; }
    /// <summary>Records a symbolic equality the rule could not prove; the program checks it when it binds sizes.</summary>
    public Action<Sym, Sym, string> Require { get; }
    public Node X => Inputs[0];
    public T A<T>() where T : OpAttr => Attr as T ?? throw new InvalidOperationException($"{Op} needs a {typeof(T).Name}, got {Attr?.GetType().Name ?? "none"}.");
}

/// <summary>The dtype and shape of an op applied to its inputs; throws <see cref="ShapeException"/> when they do not fit.</summary>
internal delegate (DType DType, Sym[] Shape) ShapeRule(ShapeArgs a);

/// <summary>
/// The vector-Jacobian product: given the gradient <paramref name="dy"/> of node <paramref name="n"/>, the
/// gradient of each input (null where none flows). Results have the input's exact shape.
/// </summary>
internal delegate int?[] GradRule(GraphBuilder g, Node n, int dy);

/// <summary>The constant an op gives when its only input is a uniform value <paramref name="x"/> (null: no folding).</summary>
internal delegate Scalar? FoldRule(Scalar x, Node n);

/// <summary>Emits the CPU kernel call of one non-elementwise node.</summary>
internal delegate void CpuKernel(CpuKernelContext c);

/// <summary>Emits the CUDA kernel (and records its launch) of one non-elementwise node.</summary>
internal delegate void CudaKernel(CudaKernelContext c);

/// <summary>How an op becomes code on every backend. Each op has exactly one; a test checks that none is missing.</summary>
internal abstract record Lowering;

/// <summary>
/// An elementwise op computed in registers inside fused kernels: a C# template for one <c>Vector256&lt;float&gt;</c>
/// lane group, one for a single float (the loop tail), and a CUDA C template. {0}, {1}, {2} are the operands and
/// {s} the op's scalar. <c>V.</c>/<c>S.</c> name the runtime's <c>Kiln.Runtime.Cpu.V</c>/<c>S</c> helpers and
/// <c>kiln_</c> the CUDA prelude's.
/// </summary>
internal sealed record ElementwiseLowering(string CpuVector, string CpuScalar, string Cuda) : Lowering;

/// <summary>
/// A kernel of its own on each backend. <paramref name="CanAccumulate"/>: the kernels can add their result into
/// the output instead of storing it, so a parameter gradient they produce is written straight into the gradient slab.
/// </summary>
internal sealed record KernelLowering(CpuKernel Cpu, CudaKernel Cuda, bool CanAccumulate = false) : Lowering;

/// <summary>A GEMM: the runtime's blocked SIMD GEMM on the CPU, cuBLASLt on the GPU (see <c>GemmPlan</c>).</summary>
internal sealed record GemmLowering : Lowering;

/// <summary>No kernel: the value already lives somewhere (an input, a parameter) or is a view of its input (a reshape).</summary>
internal sealed record NoKernel(string Why) : Lowering;

/// <summary>A region: the emitters run its body's kernels in a loop (see <see cref="LoopAttr"/>).</summary>
internal sealed record RegionLowering : Lowering;

/// <summary>
/// Everything the compiler knows about one op, in one place: name, arity, kind, attribute type, shape and dtype
/// rule, gradient rule, precision policy, constant folding and its lowering on every backend. Adding a primitive
/// op is adding one of these (plus its DSL stub, its reference-interpreter case and its docs line);
/// <c>docs/architecture.md</c> ("Adding an op") walks through it.
/// </summary>
internal sealed class OpDef
{
    public OpDef(Op op, OpKind kind, int arity) { Op = op; Kind = kind; Arity = arity; }

    public Op Op { get; }
    public OpKind Kind { get; }
    /// <summary>Number of inputs; −1 for any number ≥ 1 (Concat).</summary>
    public int Arity { get; }
    /// <summary>The attribute record the op takes (null: none).</summary>
    public Type? Attr { get; init; }
    /// <summary>The <c>Ops.X</c> method this op is, when a call maps to it one to one (float tensor operands, no options).</summary>
    public string? Dsl { get; init; }
    public ShapeRule Shape { get; init; } = null!;
    /// <summary>The gradient rule; null for ops no gradient flows through (comparisons, masks, sources other than parameters).</summary>
    public GradRule? Grad { get; init; }
    public PrecisionPolicy Precision { get; init; } = PrecisionPolicy.Fp32;
    /// <summary>A reshape or broadcast of a value that adopts the activation type adopts it too.</summary>
    public bool PassesAdoption { get; init; }
    public FoldRule? Fold { get; init; }
    public Lowering Lowering { get; init; } = null!;

    /// <summary>Whether gradients flow through this op at all.</summary>
    public bool Differentiable => Grad is not null;

    /// <summary>Elementwise ops a fused kernel computes in registers.</summary>
    public bool IsFusible => Kind == OpKind.Elementwise;

    /// <summary>Whether the op's kernel can add its result into existing values (a gradient written into the slab).</summary>
    public bool CanAccumulate => Lowering is ElementwiseLowering or GemmLowering || Lowering is KernelLowering { CanAccumulate: true };

    public override string ToString() => Op.ToString();
}

/// <summary>The op registry: one <see cref="OpDef"/> per <see cref="Ir.Op"/>, defined in the files of this folder by category.</summary>
internal static partial class OpRegistry
{
    private static readonly OpDef[] Table = Build();

    /// <summary>The entry of <paramref name="op"/>.</summary>
    public static OpDef Of(Op op) => Table[(int)op];

    /// <summary>Every entry, in op order.</summary>
    public static IReadOnlyList<OpDef> All => Table;

    /// <summary>
    /// The dtype and shape of <paramref name="op"/> applied to <paramref name="inputs"/> (its registry entry's rule).
    /// Unprovable symbolic equalities become run-time constraints via <paramref name="require"/>.
    /// </summary>
    public static (DType, Sym[]) Infer(Op op, Node[] inputs, OpAttr? attr, Sym[]? shape, Action<Sym, Sym, string> require)
    {
        var def = Table[(int)op];
        if (def.Arity >= 0 ? inputs.Length != def.Arity : inputs.Length == 0)
            throw new InvalidOperationException($"{op} takes {(def.Arity >= 0 ? def.Arity.ToString(System.Globalization.CultureInfo.InvariantCulture) : "one or more")} inputs, got {inputs.Length}");
        if ((def.Attr is null ? attr is not null : attr?.GetType() != def.Attr))
            throw new InvalidOperationException($"{op} takes {(def.Attr is null ? "no attribute" : "a " + def.Attr.Name)}, got {attr?.GetType().Name ?? "none"}");
        return def.Shape(new ShapeArgs(op, inputs, attr, shape, require));
    }

    private static OpDef[] Build()
    {
        var count = Enum.GetValues(typeof(Op)).Length;
        var table = new OpDef[count];
        foreach (var group in new[] { SourceOps(), UnaryOps(), BinaryOps(), ReductionOps(), LinearAlgebraOps(), MovementOps(), IndexingOps(), AttentionOps(), CollectiveOps(), RegionOps() })
            foreach (var def in group)
            {
                if (table[(int)def.Op] is not null) throw new InvalidOperationException($"op {def.Op} is defined twice in the registry");
                table[(int)def.Op] = def;
            }
        for (int i = 0; i < count; i++)
            if (table[i] is null) throw new InvalidOperationException($"op {(Op)i} has no registry entry");
        return table;
    }

    private static int?[] One(int v) => new int?[] { v };
    private static int?[] None(Node n) => new int?[n.Inputs.Length];
}
