using System;
using System.Collections.Generic;

namespace Kiln.Generators.Ir;

// Elementwise ops: computed in registers inside fused kernels, so each has three templates (CPU vector, CPU scalar,
// CUDA) instead of a kernel. Every V./S. helper a template names is a method of Kiln.Runtime.Cpu.V/S and every
// kiln_ helper is defined in the CUDA prelude; a test checks both.
internal static partial class OpRegistry
{
    /// <summary>An elementwise lowering that calls the helper <paramref name="fn"/> of each backend on its operands.</summary>
    private static ElementwiseLowering Fn(string fn, int arity)
    {
        var args = arity switch { 1 => "{0}", 2 => "{0}, {1}", _ => "{0}, {1}, {2}" };
        return new ElementwiseLowering($"V.{fn}({args})", $"S.{fn}({args})", $"kiln_{fn}({args})");
    }

    /// <summary>An elementwise lowering written the same way (operators only) on every backend.</summary>
    private static ElementwiseLowering Same(string expression) => new(expression, expression, expression);

    private static OpDef Unary(Op op, string? dsl, ElementwiseLowering lowering, GradRule? grad, PrecisionPolicy precision = PrecisionPolicy.FollowInputs) =>
        new(op, OpKind.Elementwise, 1) { Dsl = dsl, Shape = ShapeRules.UnaryFloat, Grad = grad, Precision = precision, Lowering = lowering };

    private static IEnumerable<OpDef> UnaryOps()
    {
        yield return new OpDef(Op.Neg, OpKind.Elementwise, 1)
        {
            Dsl = "Neg", Shape = ShapeRules.UnaryFloat, Precision = PrecisionPolicy.FollowInputs,
            Grad = (g, n, dy) => One(g.Unary(Op.Neg, dy)),
            Fold = (x, n) => -x,
            Lowering = Same("(-{0})"),
        };
        yield return Unary(Op.Exp, "Exp", Fn("Exp", 1), (g, n, dy) => One(g.Binary(Op.Mul, dy, n.Id)), PrecisionPolicy.Fp32);
        yield return Unary(Op.Log, "Log", Fn("Log", 1), (g, n, dy) => One(g.Binary(Op.Div, dy, n.Inputs[0])), PrecisionPolicy.Fp32);
        yield return Unary(Op.Sqrt, "Sqrt", Fn("Sqrt", 1), (g, n, dy) => One(g.Binary(Op.Div, g.Scale(dy, 0.5), n.Id)), PrecisionPolicy.Fp32);
        // d/dx x^-1/2 = -1/2 · y³
        yield return Unary(Op.Rsqrt, "Rsqrt", Fn("Rsqrt", 1),
            (g, n, dy) => One(g.Binary(Op.Mul, dy, g.Scale(g.Binary(Op.Mul, g.Unary(Op.Square, n.Id), n.Id), -0.5))), PrecisionPolicy.Fp32);
        yield return Unary(Op.Square, "Square", Same("({0} * {0})"), (g, n, dy) => One(g.Binary(Op.Mul, dy, g.Scale(n.Inputs[0], 2))));
        yield return Unary(Op.Abs, "Abs", Fn("Abs", 1), (g, n, dy) => One(g.Binary(Op.Mul, dy, g.Unary(Op.Sign, n.Inputs[0]))));
        yield return Unary(Op.Sign, null, Fn("Sign", 1), grad: null);
        yield return Unary(Op.Tanh, "Tanh", Fn("Tanh", 1), (g, n, dy) => One(g.Binary(Op.Mul, dy, g.AddScalar(g.Scale(g.Unary(Op.Square, n.Id), -1), 1))));
        yield return Unary(Op.Relu, "Relu", Fn("Relu", 1),
            (g, n, dy) => One(g.Binary(Op.Mul, dy, g.Binary(Op.Greater, n.Inputs[0], g.Fill(0, Array.Empty<Sym>())))));
        // GELU, tanh approximation (GPT-2's), with its derivative as an op of its own: one fused kernel each way.
        yield return Unary(Op.Gelu, "Gelu", Fn("Gelu", 1), (g, n, dy) => One(g.Binary(Op.Mul, dy, g.Unary(Op.GeluGrad, n.Inputs[0]))));
        yield return Unary(Op.GeluGrad, null, Fn("GeluGrad", 1), grad: null);
        yield return Unary(Op.Sigmoid, "Sigmoid", Fn("Sigmoid", 1),
            (g, n, dy) => One(g.Binary(Op.Mul, dy, g.Binary(Op.Mul, n.Id, g.AddScalar(g.Scale(n.Id, -1), 1)))));
        // Sine and cosine (rotary and sinusoidal position encodings): fp32 storage, since bf16 loses the phase of large arguments.
        yield return Unary(Op.Sin, "Sin", Fn("Sin", 1), (g, n, dy) => One(g.Binary(Op.Mul, dy, g.Unary(Op.Cos, n.Inputs[0]))), PrecisionPolicy.Fp32);
        yield return Unary(Op.Cos, "Cos", Fn("Cos", 1), (g, n, dy) => One(g.Binary(Op.Mul, dy, g.Unary(Op.Neg, g.Unary(Op.Sin, n.Inputs[0])))), PrecisionPolicy.Fp32);
        yield return new OpDef(Op.Scale, OpKind.Elementwise, 1)
        {
            Attr = typeof(ScalarAttr), Shape = ShapeRules.UnaryFloat, Precision = PrecisionPolicy.FollowInputs,
            Grad = (g, n, dy) => One(g.Add(Op.Scale, new[] { dy }, n.Attr)),
            Fold = (x, n) => x * n.A<ScalarAttr>().Value,
            Lowering = Same("({0} * {s})"),
        };
        yield return new OpDef(Op.AddScalar, OpKind.Elementwise, 1)
        {
            Attr = typeof(ScalarAttr), Shape = ShapeRules.UnaryFloat, Precision = PrecisionPolicy.FollowInputs,
            Grad = (g, n, dy) => One(dy),
            Fold = (x, n) => x + n.A<ScalarAttr>().Value,
            Lowering = Same("({0} + {s})"),
        };
        yield return new OpDef(Op.PowScalar, OpKind.Elementwise, 1)
        {
            Attr = typeof(ScalarAttr), Shape = ShapeRules.UnaryFloat, Precision = PrecisionPolicy.Fp32,
            Grad = (g, n, dy) =>
            {
                var p = n.A<ScalarAttr>().Value;
                return One(g.Binary(Op.Mul, dy, g.Add(Op.Scale, new[] { g.Add(Op.PowScalar, new[] { n.Inputs[0] }, new ScalarAttr(p - Scalar.Const(1))) }, new ScalarAttr(p))));
            },
            Lowering = new ElementwiseLowering("V.Pow({0}, {s})", "S.Pow({0}, {s})", "kiln_Pow({0}, {s})"),
        };
        // Identity forward, no gradient: autodiff stops here and Simplify removes it afterwards.
        yield return Unary(Op.StopGradient, "StopGradient", Same("{0}"), grad: null);
        yield return new OpDef(Op.BroadcastTo, OpKind.Elementwise, 1)
        {
            Shape = a =>
            {
                ShapeRules.RequireFloat(a.X, "BroadcastTo");
                var b = ShapeRules.Broadcast(a.X.Shape, a.Declared!, "BroadcastTo", a.Require);
                if (b.Length != a.Declared!.Length) throw new ShapeException("KILN1002", $"cannot broadcast {Shapes.Format(a.X.Shape)} to {Shapes.Format(a.Declared)}");
                return (DType.F32, a.Declared);
            },
            Grad = (g, n, dy) => One(g.SumTo(dy, g[n.Inputs[0]].Shape)),
            Precision = PrecisionPolicy.FollowInputs, PassesAdoption = true,
            Fold = (x, n) => x,
            Lowering = Same("{0}"),
        };
        // Rounding to the program's low-precision type, inserted by MixedPrecision. Values are computed in fp32 and
        // rounded where they are stored, so in a fused kernel it is the identity; its gradient is straight-through.
        yield return Unary(Op.Cast, null, Same("{0}"), (g, n, dy) => One(dy));
    }

    private static OpDef Binary(Op op, string dsl, ElementwiseLowering lowering, GradRule? grad) =>
        new(op, OpKind.Elementwise, 2) { Dsl = dsl, Shape = ShapeRules.BinaryFloat, Grad = grad, Precision = PrecisionPolicy.FollowInputs, Lowering = lowering };

    private static int?[] Both(GraphBuilder g, Node n, int da, int db) =>
        new int?[] { g.SumTo(da, g[n.Inputs[0]].Shape), g.SumTo(db, g[n.Inputs[1]].Shape) };

    private static IEnumerable<OpDef> BinaryOps()
    {
        yield return Binary(Op.Add, "Add", Same("({0} + {1})"), (g, n, dy) => Both(g, n, dy, dy));
        yield return Binary(Op.Sub, "Sub", Same("({0} - {1})"),
            (g, n, dy) => new int?[] { g.SumTo(dy, g[n.Inputs[0]].Shape), g.SumTo(g.Unary(Op.Neg, dy), g[n.Inputs[1]].Shape) });
        yield return Binary(Op.Mul, "Mul", Same("({0} * {1})"), (g, n, dy) => new int?[]
        {
            g.SumTo(g.Binary(Op.Mul, dy, n.Inputs[1]), g[n.Inputs[0]].Shape), g.SumTo(g.Binary(Op.Mul, dy, n.Inputs[0]), g[n.Inputs[1]].Shape),
        });
        yield return Binary(Op.Div, "Div", Same("({0} / {1})"), (g, n, dy) =>
        {
            var da = g.Binary(Op.Div, dy, n.Inputs[1]);
            return Both(g, n, da, g.Unary(Op.Neg, g.Binary(Op.Mul, da, n.Id))); // -dy·a/b² = -(dy/b)·y
        });
        // Ties send the gradient to the second operand.
        GradRule minMax = (g, n, dy) =>
        {
            var da = g.Binary(Op.Mul, dy, g.Binary(n.Op == Op.Maximum ? Op.Greater : Op.Less, n.Inputs[0], n.Inputs[1]));
            return Both(g, n, da, g.Binary(Op.Sub, dy, da));
        };
        yield return Binary(Op.Maximum, "Maximum", Fn("Max", 2), minMax);
        yield return Binary(Op.Minimum, "Minimum", Fn("Min", 2), minMax);
        yield return Binary(Op.Greater, "Greater", Fn("Greater", 2), grad: null);
        yield return Binary(Op.Less, "Less", Fn("Less", 2), grad: null);
        yield return Binary(Op.Equal, "Equal", Fn("Equal", 2), grad: null);
        yield return new OpDef(Op.Where, OpKind.Elementwise, 3)
        {
            Shape = a =>
            {
                foreach (var i in a.Inputs) ShapeRules.RequireFloat(i, "Where");
                return (DType.F32, ShapeRules.Broadcast(ShapeRules.Broadcast(a.Inputs[0].Shape, a.Inputs[1].Shape, "Where", a.Require), a.Inputs[2].Shape, "Where", a.Require));
            },
            Grad = (g, n, dy) =>
            {
                var zero = g.Fill(0, Array.Empty<Sym>());
                var da = g.Add(Op.Where, new[] { n.Inputs[0], dy, zero });
                var db = g.Add(Op.Where, new[] { n.Inputs[0], zero, dy });
                return new int?[] { null, g.SumTo(da, g[n.Inputs[1]].Shape), g.SumTo(db, g[n.Inputs[2]].Shape) };
            },
            Precision = PrecisionPolicy.FollowInputs,
            Lowering = Fn("Where", 3),
        };
    }
}
