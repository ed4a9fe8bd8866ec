using System;
using System.Linq;

namespace Kiln.Generators.Ir;

/// <summary>The pieces shape rules are made of: dtype checks, unification of symbolic sizes and NumPy broadcasting.</summary>
internal static class ShapeRules
{
    /// <summary>A unary float op: same shape, float.</summary>
    public static readonly ShapeRule UnaryFloat = a =>
    {
        RequireFloat(a.X, a.Op.ToString());
        return (DType.F32, a.X.Shape);
    };

    /// <summary>A binary float op with broadcasting.</summary>
    public static readonly ShapeRule BinaryFloat = a =>
    {
        RequireFloat(a.Inputs[0], a.Op.ToString()); RequireFloat(a.Inputs[1], a.Op.ToString());
        return (DType.F32, Broadcast(a.Inputs[0].Shape, a.Inputs[1].Shape, a.Op.ToString(), a.Require));
    };

    /// <summary>A source of the declared shape and a fixed dtype.</summary>
    public static ShapeRule Declared(DType dtype) => a => (dtype, a.Declared!);

    public static void RequireFloat(Node n, string what)
    {
        if (n.DType != DType.F32)
            throw new ShapeException("KILN1007", $"{what} needs a float tensor but got an integer tensor {Shapes.Format(n.Shape)}; convert it with Ops.ToFloat(...)");
    }

    public static void RequireInt(Node n, string what)
    {
        if (n.DType != DType.I32)
            throw new ShapeException("KILN1007", $"{what} needs an integer tensor (Tensor<int>) but got a float tensor {Shapes.Format(n.Shape)}");
    }

    /// <summary>Two sizes that must be equal: proven, left to a run-time check, or a shape error.</summary>
    public static void Unify(Sym a, Sym b, Func<string> message, string id, Action<Sym, Sym, string> require)
    {
        switch (Sym.Compare(a, b))
        {
            case SymCompare.Equal: return;
            case SymCompare.Unknown: require(a, b, message()); return;
            default: throw new ShapeException(id, message());
        }
    }

    /// <summary>NumPy broadcasting: align right; equal dims or a constant 1 on one side.</summary>
    public static Sym[] Broadcast(Sym[] a, Sym[] b, string what, Action<Sym, Sym, string> require)
    {
        int r = Math.Max(a.Length, b.Length);
        var result = new Sym[r];
        for (int i = 0; i < r; i++)
        {
            var da = i < r - a.Length ? Sym.One : a[i - (r - a.Length)];
            var db = i < r - b.Length ? Sym.One : b[i - (r - b.Length)];
            if (da.Equals(db)) result[i] = da;
            else if (da.Equals(Sym.One)) result[i] = db;
            else if (db.Equals(Sym.One)) result[i] = da;
            else
            {
                Unify(da, db, () => $"{what}: shapes {Shapes.Format(a)} and {Shapes.Format(b)} do not broadcast ({da} vs {db} on axis {i - r})", "KILN1002", require);
                result[i] = da;
            }
        }
        return result;
    }

    /// <summary><paramref name="x"/> with axis <paramref name="axis"/> kept as size 1.</summary>
    public static Sym[] KeepAxis(Sym[] x, int axis) => x.Select((d, i) => i == axis ? Sym.One : d).ToArray();
}
