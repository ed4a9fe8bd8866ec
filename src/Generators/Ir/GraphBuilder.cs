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
    public Node this[int id] => _index[Resolve(id)];

    /// <summary>The id the next node gets.</summary>
    public int NextId => _nextId;

    /// <summary>Skips ids up to <paramref name="id"/> (a nested builder used them), so ids stay unique across a graph and its bodies.</summary>
    public void ReserveIds(int id) => _nextId = Math.Max(_nextId, id);

    /// <summary>
    /// For a loop body: turns the id of a node of the enclosing graph into the id of a body argument that carries its
    /// value (called once per outer node; the answer is remembered). Null outside bodies.
    /// </summary>
    public Func<int, int>? ImportOuter { get; set; }

    private readonly Dictionary<int, int> _imported = new();

    /// <summary>The id that stands for <paramref name="id"/> here: itself, or the body argument importing an outer node.</summary>
    public int Resolve(int id)
    {
        if (_index.ContainsKey(id)) return id;
        if (_imported.TryGetValue(id, out var arg)) return arg;
        if (ImportOuter is null) throw new KeyNotFoundException($"node %{id} is not in this graph");
        arg = ImportOuter(id);
        _imported[id] = arg;
        return arg;
    }

    /// <summary>Replaces the definition of an existing node (same id): a rewrite that keeps every user's reference.</summary>
    public void Replace(Node n)
    {
        int i = _nodes.FindIndex(x => x.Id == n.Id);
        if (i < 0) throw new KeyNotFoundException($"node %{n.Id} is not in this graph");
        _nodes[i] = n; _index[n.Id] = n;
    }

    /// <summary>Adds constraints collected elsewhere (a loop body's) to this graph's.</summary>
    public void AddConstraints(IEnumerable<Constraint> constraints)
    {
        foreach (var c in constraints)
            if (_constraintKeys.Add((c.Kind, c.A, c.B))) _constraints.Add(c);
    }

    private readonly HashSet<(ConstraintKind, Sym, Sym)> _constraintKeys = new();

    /// <summary>Adopts an existing node unchanged (passes that copy a graph).</summary>
    public void Import(Node n)
    {
        _nodes.Add(n); _index[n.Id] = n;
        _nextId = Math.Max(_nextId, n.Id + 1);
    }

    public void Require(Sym a, Sym b, string message)
    {
        if (a.Equals(b)) return;
        if (_constraintKeys.Add((ConstraintKind.Equal, a, b))) _constraints.Add(new Constraint(ConstraintKind.Equal, a, b, message, Src));
    }

    public void RequireDivisible(Sym a, Sym b, string message)
    {
        if (_constraintKeys.Add((ConstraintKind.Divisible, a, b))) _constraints.Add(new Constraint(ConstraintKind.Divisible, a, b, message, Src));
    }

    public int Add(Op op, int[] inputs, OpAttr? attr = null, Sym[]? shape = null)
    {
        inputs = inputs.Select(Resolve).ToArray();
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

    public int Reshape(int x, Sym[] shape) => Shapes.Same(this[x].Shape, shape) ? x : Add(Op.Reshape, new[] { x }, shape: shape);

    public int BroadcastTo(int x, Sym[] shape) => Shapes.Same(this[x].Shape, shape) ? x : Add(Op.BroadcastTo, new[] { x }, shape: shape);

    public int SumTo(int x, Sym[] shape)
    {
        var xs = this[x].Shape;
        if (Shapes.Same(xs, shape)) return x;
        // Dropping leading axes or summing size-1 axes: one SumTo node covers both.
        return Add(Op.SumTo, new[] { x }, shape: shape);
    }

    public int Reduce(Op op, int x, int axis, bool keep) => Add(op, new[] { x }, new ReduceAttr(axis, keep));
}
