using System;
using System.Collections.Generic;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Emit;

/// <summary>Kernel parameters paired with the launch arguments that fill them, so the two can never disagree.</summary>
internal sealed class CudaParams
{
    public readonly List<string> Decls = new();
    public readonly List<CudaArg> Args = new();
    public void Add(string decl, CudaArg arg) { Decls.Add(decl); Args.Add(arg); }
}

/// <summary>
/// What a registry entry's CUDA lowering sees of the node it lowers: parameter builders, the kernel writer (which
/// names the kernel, adds <c>#line</c> mapping and records the launch), storage types and load/store spelling.
/// </summary>
internal sealed class CudaKernelContext
{
    private readonly CudaEmitter _e;
    private readonly FusionGroup _group;

    public CudaKernelContext(CudaEmitter emitter, FusionGroup group, Node node) { _e = emitter; _group = group; Node = node; }

    public Node Node { get; }
    public Node X => _e.Graph[Node.Inputs[0]];
    public Node Input(int i) => _e.Graph[Node.Inputs[i]];

    public CudaParams Params() => new();
    /// <summary>The output pointer <c>out</c>.</summary>
    public void OutParam(CudaParams ps) => _e.OutParam(ps, Node.Id);
    /// <summary>A <c>const</c> input pointer named <paramref name="name"/> to node <paramref name="node"/>'s storage.</summary>
    public void InParam(CudaParams ps, int node, string name) => _e.InParam(ps, node, name);
    /// <summary>A size argument (<c>long long</c>).</summary>
    public void SizeParam(CudaParams ps, string name, Sym value) => CudaEmitter.SizeParam(ps, name, value);

    /// <summary>
    /// Writes kernel <c>{model}_{program}_k{group}_{what}_{fwd|bwd}</c> with <paramref name="body"/> and records its launch;
    /// <paramref name="zeroFirst"/> names a node whose storage the host zeroes before the launch.
    /// </summary>
    public void Kernel(string what, CudaParams ps, CudaGrid grid, Sym work, Action body, int zeroFirst = -1) =>
        _e.Kernel(_group, _e.KernelName(_group, what), ps, grid, work, body, _e.SrcOf(_group), zeroFirst);

    /// <summary>Records the launch of one of the runtime's kernels (<c>kiln_rt_*</c>) for this node.</summary>
    public void RuntimeLaunch(string kernel, CudaGrid grid, Sym work, params CudaArg[] args) => _e.RecordLaunch(_group, new CudaLaunch(kernel, grid, work, args));

    /// <summary>A reduction over the middle axis of [outer, len, inner] (inner &gt; 1) with coalesced loads.</summary>
    public void ColumnReduce(int input, Sym outer, Sym len, Sym inner, bool sum, string what) =>
        _e.EmitColumnReduce(_group, Node, input, outer, len, inner, sum, _e.KernelName(_group, what), _e.SrcOf(_group));

    public void Line(string text) => _e.Line(text);
    public string Load(int id, string ptr, string index) => _e.Load(id, ptr, index);
    public string Store(int id, string index, string value) => _e.Store(id, index, value);
    public string Ty(int id) => _e.Ty(id);
    public bool Accumulate(int id) => _e.Accumulate(id);
    public Sym Numel(IEnumerable<Sym> dims) => Shapes.Numel(new List<Sym>(dims));
    public string Scalar(Ir.Scalar s) => _e.Names.Scalar(s);

    /// <summary>A size as the host program's C# <c>long</c> expression (for launch arguments).</summary>
    public string HostSize(Sym s) => _e.Names.Sym(s);

    /// <summary>Inside a loop body: the host's expression of the iteration index (null outside loops).</summary>
    public string? Layer => _e.Layer;
}
