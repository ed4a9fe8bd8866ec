using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// The precision policy, after PyTorch's autocast: decides which tensors are stored in the program's
/// low-precision type (bf16 or fp16; fp32 when the program runs in full precision) and inserts a
/// <see cref="Op.Cast"/> where a matmul operand is not already low. Every value is computed in fp32; the
/// policy only decides where results are rounded when they are written. Each op's
/// <see cref="PrecisionPolicy"/> says how (registry):
/// <list type="bullet">
/// <item>Matmul operands are low, and so is a matmul's result, except a parameter gradient, which
/// accumulates in fp32 into the gradient slab. A parameter operand reads the parameter's low-precision
/// shadow (kept by the optimizer), so weights are never cast per step.</item>
/// <item>An elementwise result is low when at least one operand is a low activation and none is an fp32
/// activation; parameters, constants and dropout masks take the activation's type. Exp, Log, Sqrt, Rsqrt
/// and PowScalar always give fp32 (autocast's fp32 list), as do reductions, indexing and the loss, so
/// norms, softmax and cross-entropy are fp32.</item>
/// <item>Movement (reshape, permute, slice, pad, concat) keeps its input's type.</item>
/// <item>A loop body follows the same policy, its arguments typed like the loop's inputs. A parameter a body's
/// matmul reads comes in as the parameter's low-precision shadow (an extra loop input), so stacked weights are not
/// cast per layer either. A carried value is low only when its initial value and the body's result both are.</item>
/// </list>
/// Outputs that are parameter gradients are fp32. The same graph serves every precision: the type is a
/// property of the build variant (CUDA) or of the program instance (CPU, which emulates the rounding).
/// </summary>
internal static class MixedPrecision
{
    public static Graph Run(Graph g)
    {
        var gradOutputs = new HashSet<int>(g.Outputs.Where(o => o.Role == OutputRole.ParamGrad).Select(o => o.Node));
        // A gradient that is a loop's result (a stacked parameter's, layer by layer) is fp32 in the body too.
        var gradLoopResults = new HashSet<(int, int)>(gradOutputs.Select(id => g[id]).Where(n => n.Op == Op.LoopOut).Select(n => (n.Inputs[0], n.A<LoopOutAttr>().Index)));
        var pass = new Assignment(g.Nodes, gradOutputs, new HashSet<int>(), new HashSet<int>(), gradLoopResults);
        pass.Run();
        return g.WithNodes(pass.Nodes, g.Outputs).With(new PrecisionMarks(pass.Low));
    }

    /// <summary>The policy applied to one graph's nodes (the program's, or a loop body's with its arguments typed).</summary>
    private sealed class Assignment
    {
        private readonly IReadOnlyList<Node> _input;
        private readonly HashSet<int> _fp32;          // nodes that must stay fp32 (parameter gradients)
        private readonly HashSet<int> _adopting;      // loop arguments whose input is a parameter or constant
        private readonly Dictionary<int, Node> _byId = new();
        private readonly Dictionary<int, int> _castOf = new();
        private readonly Dictionary<(int Loop, int Index), bool> _loopResultLow = new();
        /// <summary>Loop results (loop id, result index) that are parameter gradients, so their body results stay fp32.</summary>
        private readonly HashSet<(int, int)> _fp32Loop;
        private int _nextId;

        public Assignment(IReadOnlyList<Node> nodes, HashSet<int> fp32, HashSet<int> lowArgs, HashSet<int> adopting, HashSet<(int, int)> fp32LoopResults)
        {
            _input = nodes; _fp32 = fp32; _adopting = adopting; _fp32Loop = fp32LoopResults;
            Low = new HashSet<int>(lowArgs);
            _nextId = nodes.Count == 0 ? 0 : nodes.Max(n => n.Id) + 1;
        }

        public List<Node> Nodes { get; } = new();
        public HashSet<int> Low { get; }

        private bool AdoptsType(int id)
        {
            var n = _byId[id];
            if (n.Op == Op.LoopArg) return _adopting.Contains(id);
            var def = OpRegistry.Of(n.Op);
            if (def.Precision == PrecisionPolicy.AdoptsActivation) return true;
            return def.PassesAdoption && !Low.Contains(id) && AdoptsType(n.Inputs[0]);
        }

        public int Cast(int id, SourceRef src)
        {
            if (Low.Contains(id)) return id;
            if (_castOf.TryGetValue(id, out var c)) return c;
            var x = _byId[id];
            var cast = new Node(_nextId++, Op.Cast, new[] { id }, DType.F32, x.Shape, null, src);
            Add(cast);
            Low.Add(cast.Id);
            _castOf[id] = cast.Id;
            return cast.Id;
        }

        private void Add(Node n) { Nodes.Add(n); _byId[n.Id] = n; }

        public void Run()
        {
            foreach (var n0 in _input)
            {
                var n = n0;
                var policy = OpRegistry.Of(n.Op).Precision;
                if (n.Op == Op.Loop) n = Loop(n);
                else if (n.Op == Op.LoopOut)
                {
                    if (_loopResultLow.TryGetValue((n.Inputs[0], n.A<LoopOutAttr>().Index), out var isLow) && isLow && !_fp32.Contains(n.Id)) Low.Add(n.Id);
                }
                else if (n.Op == Op.LoopArg) { }
                else if (policy == PrecisionPolicy.LowOperands)
                {
                    n = n.With(n.Id, n.Inputs.Select(i => Cast(i, n0.Src)).ToArray());
                    if (!_fp32.Contains(n.Id)) Low.Add(n.Id);
                }
                else if (n.DType == DType.F32 && !_fp32.Contains(n.Id))
                {
                    bool isLow = policy switch
                    {
                        PrecisionPolicy.FollowInputs => n.Inputs.Any(Low.Contains)
                            && n.Inputs.All(i => _byId[i].DType != DType.F32 || Low.Contains(i) || AdoptsType(i)),
                        PrecisionPolicy.LikeInputs => n.Inputs.All(Low.Contains),
                        _ => false,
                    };
                    if (isLow) Low.Add(n.Id);
                }
                Add(n);
            }
        }

        /// <summary>Types a loop's body and results; a parameter its body's matmuls read becomes its low shadow, a new input.</summary>
        private Node Loop(Node n)
        {
            var loop = n.A<LoopAttr>();
            var body = loop.Body;
            var nodes = body.Nodes.ToList();
            var args = nodes.Where(b => b.Op == Op.LoopArg).ToDictionary(b => b.A<LoopArgAttr>().Index);
            var inputs = n.Inputs.ToList();
            int captured = loop.Captured, stacked = loop.Stacked;

            // Parameter operands of the body's matmuls: pass the parameter's low shadow in as well (appended to its kind).
            int bodyNext = nodes.Max(b => b.Id) + 1;
            var newCaptured = new List<(int Input, Node Arg)>();
            var newStacked = new List<(int Input, Node Arg)>();
            var redirect = new Dictionary<int, int>();
            foreach (var kv in args.Where(kv => kv.Key >= loop.Carried && _byId[inputs[kv.Key]].Op == Op.Param).OrderBy(kv => kv.Key))
            {
                if (!nodes.Any(b => OpRegistry.Of(b.Op).Precision == PrecisionPolicy.LowOperands && b.Inputs.Contains(kv.Value.Id))) continue;
                var shadow = Cast(inputs[kv.Key], n.Src);
                var arg = new Node(bodyNext++, Op.LoopArg, System.Array.Empty<int>(), DType.F32, kv.Value.Shape, new LoopArgAttr(-1, DType.F32), kv.Value.Src);
                (kv.Key < loop.Carried + loop.Captured ? newCaptured : newStacked).Add((shadow, arg));
                redirect[kv.Value.Id] = arg.Id;
            }
            if (redirect.Count > 0)
            {
                nodes = nodes.SelectMany(b =>
                {
                    var rewritten = OpRegistry.Of(b.Op).Precision == PrecisionPolicy.LowOperands && b.Inputs.Any(redirect.ContainsKey)
                        ? b.With(b.Id, b.Inputs.Select(i => redirect.TryGetValue(i, out var r) ? r : i).ToArray()) : b;
                    // New arguments go right after the one they shadow.
                    var added = redirect.TryGetValue(b.Id, out var arg) ? newCaptured.Concat(newStacked).Where(x => x.Arg.Id == arg).Select(x => x.Arg) : Enumerable.Empty<Node>();
                    return new[] { rewritten }.Concat(added);
                }).ToList();
                // Inputs in kind order: carried, captured (old, new), stacked (old, new); arguments renumbered to match.
                var order = new List<int>();
                var indexOfArg = new Dictionary<int, int>();
                void Take(int argId, int input) { indexOfArg[argId] = order.Count; order.Add(input); }
                for (int i = 0; i < loop.Carried + loop.Captured; i++) if (args.TryGetValue(i, out var a)) Take(a.Id, inputs[i]); else order.Add(inputs[i]);
                foreach (var (input, arg) in newCaptured) Take(arg.Id, input);
                for (int i = loop.Carried + loop.Captured; i < loop.Inputs; i++) if (args.TryGetValue(i, out var a)) Take(a.Id, inputs[i]); else order.Add(inputs[i]);
                foreach (var (input, arg) in newStacked) Take(arg.Id, input);
                nodes = nodes.Select(b => b.Op == Op.LoopArg ? new Node(b.Id, b.Op, b.Inputs, b.DType, b.Shape, new LoopArgAttr(indexOfArg[b.Id], b.DType), b.Src) : b).ToList();
                inputs = order;
                captured += newCaptured.Count; stacked += newStacked.Count;
                args = nodes.Where(b => b.Op == Op.LoopArg).ToDictionary(b => b.A<LoopArgAttr>().Index);
            }

            // Arguments typed like their inputs; a carried value is low only if its initial value and result both are.
            var fp32Results = new HashSet<int>(body.Outputs.Select((o, i) => (o, i)).Where(x => _fp32Loop.Contains((n.Id, x.i))).Select(x => x.o.Node));
            var adopting = new HashSet<int>(args.Where(kv => kv.Key >= loop.Carried && AdoptsType(inputs[kv.Key])).Select(kv => kv.Value.Id));
            var carriedLow = Enumerable.Range(0, loop.Carried).Select(i => Low.Contains(inputs[i])).ToArray();
            Assignment inner;
            while (true)
            {
                var lowArgs = new HashSet<int>(args.Where(kv => kv.Key < loop.Carried ? carriedLow[kv.Key] : Low.Contains(inputs[kv.Key])).Select(kv => kv.Value.Id));
                inner = new Assignment(nodes, fp32Results, lowArgs, adopting, new HashSet<(int, int)>());
                inner.Run();
                bool changed = false;
                for (int i = 0; i < loop.Carried; i++)
                    if (carriedLow[i] && !inner.Low.Contains(body.Outputs[i].Node)) { carriedLow[i] = false; changed = true; }
                if (!changed) break;
            }
            for (int i = 0; i < loop.Carried; i++)
            {
                var r = body.Outputs[i].Node;
                if (!carriedLow[i] && inner.Low.Contains(r) && inner._byId[r].Op != Op.LoopArg) inner.Low.Remove(r);
            }
            for (int i = 0; i < body.Outputs.Count; i++)
                _loopResultLow[(n.Id, i)] = i < loop.Carried ? carriedLow[i] : inner.Low.Contains(body.Outputs[i].Node);
            var typed = body.WithNodes(inner.Nodes, body.Outputs).With(new PrecisionMarks(inner.Low));
            return new Node(n.Id, n.Op, inputs.ToArray(), n.DType, n.Shape, loop with { Body = typed, Captured = captured, Stacked = stacked }, n.Src);
        }
    }
}
