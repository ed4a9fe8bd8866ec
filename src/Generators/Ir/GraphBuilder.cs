using System;
using System.Collections.Generic;
using System.Linq;

namespace Kiln.Generators.Ir;

/// <summary>
/// Appends nodes in topological order, inferring each node's dtype and shape through
/// <see cref="OpRegistry.Infer"/> and collecting the run-time constraints shape rules could not prove.
/// </summary>
internal sealed class GraphBuilder
{
    private readonly List<Node> _nodes = new();
    private readonly Dictionary<int, Node> _index = new();
    private readonly List<Constraint> _constraints = new();
    private int _nextId;

    public GraphBuilder(int firstId = 0) => _nextId = firstId;

    /// <summary>Source of the nodes added next (the C# expression being lowered).</summary>
    public SourceRef Src { get; set; } = SourceRef.None;

    public IReadOnlyList<Node> Nodes => _nodes;
    public IReadOnlyList<Constraint> Constraints => _constraints;
    public Node this[int id] => _index[id];

    /// <summary>Adopts an existing node unchanged (passes that copy a graph).</summary>
    public void Import(Node n)
    {
        _nodes.Add(n); _index[n.Id] = n;
        _nextId = Math.Max(_nextId, n.Id + 1);
    }

    public void Require(Sym a, Sym b, string message)
    {
        if (a.Equals(b)) return;
        if (_constraints.Any(c => c.Kind == ConstraintKind.Equal && c.A.Equals(a) && c.B.Equals(b))) return;
        _constraints.Add(new Constraint(ConstraintKind.Equal, a, b, message, Src));
    }

    public void RequireDivisible(Sym a, Sym b, string message)
    {
        if (_constraints.Any(c => c.Kind == ConstraintKind.Divisible && c.A.Equals(a) && c.B.Equals(b))) return;
        _constraints.Add(new Constraint(ConstraintKind.Divisible, a, b, message, Src));
    }

    public int Add(Op op, int[] inputs, OpAttr? attr = null, Sym[]? shape = null)
    {
        var ins = inputs.Select(i => _index[i]).ToArray();
        var (dtype, outShape) = OpRegistry.Infer(op, ins, attr, shape, Require);
        var node = new Node(_nextId++, op, inputs, dtype, outShape, attr, Src);
        _nodes.Add(node); _index[node.Id] = node;
        return node.Id;
    }

    // Conveniences used by lowering and gradient rules. They simplify where it is free to do so.

    public int Unary(Op op, int x) => Add(op, new[] { x });
    public int Binary(Op op, int a, int b) => Add(op, new[] { a, b });
    public int Scale(int x, double s) => s == 1 ? x : Add(Op.Scale, new[] { x }, new ScalarAttr(Scalar.Const(s)));
    public int Scale(int x, Scalar s) => s.IsConst && s.Value == 1 ? x : Add(Op.Scale, new[] { x }, new ScalarAttr(s));
    public int AddScalar(int x, double s) => s == 0 ? x : Add(Op.AddScalar, new[] { x }, new ScalarAttr(Scalar.Const(s)));
    public int AddScalar(int x, Scalar s) => s.IsConst && s.Value == 0 ? x : Add(Op.AddScalar, new[] { x }, new ScalarAttr(s));
    public int Fill(double value, Sym[] shape) => Fill(Scalar.Const(value), shape);
    public int Fill(Scalar value, Sym[] shape) => Add(Op.Fill, Array.Empty<int>(), new ScalarAttr(value), shape);
    public int MatMul(int a, int b, bool ta, bool tb) => Add(Op.MatMul, new[] { a, b }, new MatMulAttr(ta, tb));

    public int Reshape(int x, Sym[] shape) => Shapes.Same(_index[x].Shape, shape) ? x : Add(Op.Reshape, new[] { x }, shape: shape);

    public int BroadcastTo(int x, Sym[] shape) => Shapes.Same(_index[x].Shape, shape) ? x : Add(Op.BroadcastTo, new[] { x }, shape: shape);

    public int SumTo(int x, Sym[] shape)
    {
        var xs = _index[x].Shape;
        if (Shapes.Same(xs, shape)) return x;
        // Dropping leading axes or summing size-1 axes: one SumTo node covers both.
        return Add(Op.SumTo, new[] { x }, shape: shape);
    }

    public int Reduce(Op op, int x, int axis, bool keep) => Add(op, new[] { x }, new ReduceAttr(axis, keep));
}
