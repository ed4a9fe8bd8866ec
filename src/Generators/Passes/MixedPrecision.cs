using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// The precision policy, after PyTorch's autocast: decides which tensors are stored in the program's
/// low-precision type (bf16 or fp16; fp32 when the program runs in full precision) and inserts a
/// <see cref="Op.Cast"/> where a matmul operand is not already low. Every value is computed in fp32; the
/// policy only decides where results are rounded when they are written:
/// <list type="bullet">
/// <item>Matmul operands are low, and so is a matmul's result, except a parameter gradient, which
/// accumulates in fp32 into the gradient slab. A parameter operand reads the parameter's low-precision
/// shadow (kept by the optimizer), so weights are never cast per step.</item>
/// <item>An elementwise result is low when at least one operand is a low activation and none is an fp32
/// activation; parameters, constants and dropout masks take the activation's type. Exp, Log, Sqrt, Rsqrt
/// and PowScalar always give fp32 (autocast's fp32 list), as do reductions, indexing and the loss, so
/// norms, softmax and cross-entropy are fp32.</item>
/// <item>Movement (reshape, permute, slice, pad, concat) keeps its input's type.</item>
/// </list>
/// Outputs that are parameter gradients are fp32. The same graph serves every precision: the type is a
/// property of the build variant (CUDA) or of the program instance (CPU, which emulates the rounding).
/// </summary>
internal static class MixedPrecision
{
    public static Graph Run(Graph g)
    {
        var low = new HashSet<int>();
        var gradOutputs = new HashSet<int>(g.Outputs.Where(o => o.Role == OutputRole.ParamGrad).Select(o => o.Node));
        var byId = new Dictionary<int, Node>();
        var castOf = new Dictionary<int, int>();
        var nodes = new List<Node>(g.Nodes.Count + 8);
        int nextId = g.Nodes.Count == 0 ? 0 : g.Nodes.Max(n => n.Id) + 1;

        bool AdoptsType(int id)
        {
            var n = byId[id];
            var def = OpRegistry.Of(n.Op);
            if (def.Precision == PrecisionPolicy.AdoptsActivation) return true;
            return def.PassesAdoption && !low.Contains(id) && AdoptsType(n.Inputs[0]);
        }

        int Cast(int id, SourceRef src)
        {
            if (low.Contains(id)) return id;
            if (castOf.TryGetValue(id, out var c)) return c;
            var x = byId[id];
            var cast = new Node(nextId++, Op.Cast, new[] { id }, DType.F32, x.Shape, null, src);
            nodes.Add(cast);
            byId[cast.Id] = cast;
            low.Add(cast.Id);
            castOf[id] = cast.Id;
            return cast.Id;
        }

        foreach (var n0 in g.Nodes)
        {
            var n = n0;
            var policy = OpRegistry.Of(n.Op).Precision;
            if (policy == PrecisionPolicy.LowOperands)
            {
                n = n.With(n.Id, n.Inputs.Select(i => Cast(i, n0.Src)).ToArray());
                if (!gradOutputs.Contains(n.Id)) low.Add(n.Id);
            }
            else if (n.DType == DType.F32 && !gradOutputs.Contains(n.Id))
            {
                bool isLow = policy switch
                {
                    PrecisionPolicy.FollowInputs => n.Inputs.Any(low.Contains)
                        && n.Inputs.All(i => byId[i].DType != DType.F32 || low.Contains(i) || AdoptsType(i)),
                    PrecisionPolicy.LikeInputs => n.Inputs.All(low.Contains),
                    _ => false,
                };
                if (isLow) low.Add(n.Id);
            }
            nodes.Add(n);
            byId[n.Id] = n;
        }
        return g.WithNodes(nodes, g.Outputs).With(new PrecisionMarks(low));
    }
}
