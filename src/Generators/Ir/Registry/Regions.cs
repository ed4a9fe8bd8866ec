using System;
using System.Collections.Generic;
using System.Linq;

namespace Kiln.Generators.Ir;

// Regions: a loop over a body graph (repeated blocks with stacked parameters), its arguments and its results.
// Autodiff, the passes and the emitters treat them structurally (Passes/LoopAutodiff.cs, the emitters' loop code).
internal static partial class OpRegistry
{
    /// <summary>Gradients through regions are built by LoopAutodiff, not by a per-node rule.</summary>
    private static GradRule Structural(string what) => (g, n, dy) => throw new InvalidOperationException($"{what} is differentiated structurally by LoopAutodiff");

    private static IEnumerable<OpDef> RegionOps()
    {
        yield return new OpDef(Op.Loop, OpKind.Region, -1)
        {
            Attr = typeof(LoopAttr),
            Shape = a =>
            {
                var loop = a.A<LoopAttr>();
                if (a.Inputs.Length != loop.Inputs)
                    throw new InvalidOperationException($"a loop with {loop.Carried} carried, {loop.Captured} captured and {loop.Stacked} stacked inputs has {a.Inputs.Length}");
                var body = loop.Body;
                var args = body.Nodes.Where(n => n.Op == Op.LoopArg).ToDictionary(n => n.A<LoopArgAttr>().Index);
                for (int i = 0; i < a.Inputs.Length; i++)
                {
                    var input = a.Inputs[i];
                    if (!args.TryGetValue(i, out var arg)) continue;
                    bool stacked = i >= loop.Carried + loop.Captured;
                    if (stacked)
                    {
                        if (input.Rank == 0) throw new ShapeException("KILN1003", $"stacked loop input #{i} is a scalar; it needs a leading dimension of {loop.Count}");
                        ShapeRules.Unify(input.Shape[0], loop.Count, () => $"stacked loop input #{i} {Shapes.Format(input.Shape)} has {input.Shape[0]} slices for {loop.Count} iterations", "KILN1002", a.Require);
                    }
                    var per = stacked ? input.Shape.Skip(1).ToArray() : input.Shape;
                    if (!Shapes.Same(per, arg.Shape) || input.DType != arg.DType)
                        throw new ShapeException("KILN1002", $"loop input #{i} is {IrPrinter.Type(input.DType, input.Shape)} but the body reads {IrPrinter.Type(arg.DType, arg.Shape)}");
                }
                if (body.Outputs.Count < loop.Carried) throw new InvalidOperationException($"the loop body has {body.Outputs.Count} results for {loop.Carried} carried values");
                for (int i = 0; i < loop.Carried; i++)
                {
                    var result = body[body.Outputs[i].Node];
                    var init = a.Inputs[i];
                    if (result.DType != init.DType || result.Rank != init.Rank)
                        throw new ShapeException("KILN1002", $"the loop body turns carried value #{i} {IrPrinter.Type(init.DType, init.Shape)} into {IrPrinter.Type(result.DType, result.Shape)}");
                    for (int d = 0; d < init.Rank; d++)
                        ShapeRules.Unify(result.Shape[d], init.Shape[d], () => $"the loop body changes carried value #{i} from {Shapes.Format(init.Shape)} to {Shapes.Format(result.Shape)}", "KILN1002", a.Require);
                }
                return (DType.Token, Array.Empty<Sym>());
            },
            Grad = Structural("a loop"),
            Lowering = new RegionLowering(),
        };

        yield return new OpDef(Op.LoopArg, OpKind.Source, 0)
        {
            Attr = typeof(LoopArgAttr),
            Shape = a => (a.A<LoopArgAttr>().DType, a.Declared!),
            // Like a parameter: autodiff of a body starts from its arguments.
            Grad = (g, n, dy) => Array.Empty<int?>(),
            Lowering = new NoKernel("a loop argument is the loop input's storage (sliced at the iteration for a stacked input)"),
        };

        yield return new OpDef(Op.LoopOut, OpKind.Source, 1)
        {
            Attr = typeof(LoopOutAttr),
            Shape = a =>
            {
                if (a.X.Op != Op.Loop) throw new InvalidOperationException("a loop result reads a node that is not a loop");
                var loop = a.X.A<LoopAttr>();
                int index = a.A<LoopOutAttr>().Index;
                if (index < 0 || index >= loop.Body.Outputs.Count) throw new InvalidOperationException($"loop result #{index} does not exist");
                var result = loop.Body[loop.Body.Outputs[index].Node];
                return index < loop.Carried ? (result.DType, result.Shape) : (result.DType, new[] { loop.Count }.Concat(result.Shape).ToArray());
            },
            Grad = Structural("a loop result"),
            Lowering = new NoKernel("the loop writes its results"),
        };
    }
}
