using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Common;
using Kiln.Generators.Ir;
using Kiln.Generators.Passes;

namespace Kiln.Generators.Emit;

/// <summary>
/// Emits the CUDA program of a model: a nested <c>CudaModelProgram</c> subclass whose run methods bind the
/// input sizes (the same checks as the CPU program), upload the inputs, lay out the device arenas from the
/// memory plan and queue, per fusion group, the kernel launch recorded by <see cref="CudaEmitter"/> or a
/// cuBLASLt GEMM. Nothing is compiled or interpreted at run time: the launch sequence is C#.
/// </summary>
internal static class CudaHostEmitter
{
    public const string ProgramClass = "__KilnCudaProgram";

    public static void Emit(CodeWriter w, CompiledModel cm, CudaModule cuda, SymbolNames names, string cpuProgramClass, bool hasPlan = false)
    {
        var spec = cm.Spec;
        var root = spec.Modules.First(m => m.FullName == spec.RootModule);
        var kernels = cuda.Launches.Values.SelectMany(l => l.Values)
            .Concat(cuda.LoopLaunches.Values.SelectMany(p => p.Values).SelectMany(l => l.Values))
            .Select(l => l.Kernel).Distinct().OrderBy(k => k, StringComparer.Ordinal).ToList();
        var kernelIndex = kernels.Select((k, i) => (k, i)).ToDictionary(x => x.k, x => x.i);

        w.Line("/// <summary>The CUDA program Kiln generated for this model (kernels in <c>KilnCudaSource</c>, GEMMs on cuBLASLt).</summary>");
        w.Open($"private sealed class {ProgramClass} : global::Kiln.Runtime.Cuda.CudaModelProgram");
        foreach (var h in root.Hypers)
            w.Line(h.Type is "float" or "double" ? $"private readonly double _f_{h.Name};" : $"private readonly long _h_{h.Name};");
        w.Line("private readonly long[] _po;");
        w.Line($"private static readonly string[] __kernels = new string[] {{ {string.Join(", ", kernels.Select(SymbolNames.Str))} }};");
        w.Line();
        var ctorParams = string.Join(", ", root.Hypers.Select(h => (h.Type is "float" or "double" ? "double " : "long ") + h.Name));
        var ctorArgs = string.Join(", ", root.Hypers.Select(h => h.Name));
        var sep = ctorParams.Length > 0 ? ", " : "";
        w.Open($"public {ProgramClass}(global::Kiln.Runtime.Cuda.IGpu __kiln_gpu, global::Kiln.PrecisionMode __kiln_precision{sep}{ctorParams}) : this(__kiln_gpu, __kiln_precision, {cpuProgramClass}.CheckHyperparameters({ctorArgs}){sep}{ctorArgs})");
        w.Close();
        w.Line();
        w.Open($"private {ProgramClass}(global::Kiln.Runtime.Cuda.IGpu __kiln_gpu, global::Kiln.PrecisionMode __kiln_precision, global::System.Collections.Generic.List<global::Kiln.Runtime.ParameterInfo> __kiln_table{sep}{ctorParams}) : " +
               $"base(__kiln_gpu, __kiln_precision, __kiln_table, __kiln_table.Count == 0 ? 0 : __kiln_table[__kiln_table.Count - 1].Offset + __kiln_table[__kiln_table.Count - 1].Length, {SymbolNames.Str(spec.Name)}, {SymbolNames.Str(cuda.FileName)}, KilnCudaSource, __kernels)");
        foreach (var h in root.Hypers) w.Line(h.Type is "float" or "double" ? $"_f_{h.Name} = {h.Name};" : $"_h_{h.Name} = {h.Name};");
        if (root.Hypers.Any(h => h.Name == ParallelPlanner.TensorHyper && h.Type is "int" or "long"))
            w.Line($"if (_h_{ParallelPlanner.TensorHyper} != 1) throw new global::System.NotSupportedException({SymbolNames.Str(spec.Name + " with tensor > 1 is one tensor-parallel rank; tensor parallelism runs on CPU programs only so far (NCCL is not bound). Use tensor = 1 on the GPU.")});");
        w.Line("_po = new long[__kiln_table.Count];");
        w.Line("for (int i = 0; i < __kiln_table.Count; i++) _po[i] = __kiln_table[i].Offset;");
        w.Close();
        w.Line();
        w.Line($"public override string IrText => {spec.Name}.KilnIr;");
        w.Line($"public override string Report => {SymbolNames.Str(ProgramEmitter.Report(cm))};");
        ProgramEmitter.EmitPlanMembers(w, cm, hasPlan);
        w.Line($"public override global::System.Collections.Generic.IReadOnlyList<global::Kiln.Runtime.InputInfo> LossInputs => {cpuProgramClass}._LossInputs;");
        w.Line($"public override global::System.Collections.Generic.IReadOnlyList<global::Kiln.Runtime.InputInfo> ForwardInputs => {cpuProgramClass}._ForwardInputs;");
        w.Line($"public override global::System.Collections.Generic.IReadOnlyList<global::Kiln.Runtime.ProgramInfo> Programs => {cpuProgramClass}._Programs;");
        w.Line();

        foreach (var p in cm.Programs.Where(p => !p.CpuOnly)) EmitRun(w, p, cuda.Launches[p.Name], cuda.LoopLaunches[p.Name], kernelIndex, names);
        ProgramEmitter.EmitMissingEntryPoints(w, cm);
        w.Close();
    }

    private static void EmitRun(CodeWriter w, ProgramDef program, Dictionary<int, CudaLaunch> launches, Dictionary<int, Dictionary<int, CudaLaunch>> loopLaunches,
        Dictionary<string, int> kernelIndex, SymbolNames names)
    {
        var g = program.Graph;
        var plan = g.Plan!;
        string S(Sym s) => names.Sym(s);
        w.Open($"public override {program.ReturnType} {program.Method}({program.Parameters})");
        int slot = 0;
        ProgramEmitter.EmitBindInputs(w, g, names, (input, v) => w.Line($"ulong in_{input.Name} = UploadInput({slot++}, {v});"));
        w.Line($"long arenaF = {S(plan.FloatArenaElements)}, arenaL = {S(plan.LowArenaElements)}, arenaI = {S(plan.IntArenaElements)};");
        w.Line("EnsureArena(arenaF, arenaL, arenaI);");
        w.Line("ulong A = ArenaF, LA = ArenaL, IA = ArenaI, P = DeviceParams, LP = DeviceLowParams, G = DeviceGrads, LB = (ulong)LowBytes;");
        w.Line("_ = A; _ = LA; _ = IA; _ = P; _ = LP; _ = G; _ = LB;");
        foreach (var kv in plan.Placements.Where(kv => kv.Value.Buffer is BufferKind.Arena or BufferKind.LowArena or BufferKind.IntArena).OrderBy(kv => kv.Key))
            w.Line($"long o{kv.Key} = {S(kv.Value.Offset)};");

        var host = new HostGraph(g, null, null);
        string Ptr(int id) => host.Ptr(id, S);
        bool IsLow(int id) => host.IsLow(id);
        EmitGroups(w, host, launches, loopLaunches, kernelIndex, names);

        foreach (var o in g.Outputs.Where(o => o.Role == OutputRole.ParamGrad))
        {
            var pl = plan.Placements[o.Node];
            if (pl.Buffer == BufferKind.Grads) continue;
            var numel = S(Shapes.Numel(g.Parameters[o.Param].Shape));
            if (pl.Buffer == BufferKind.Fused)
                w.Line($"AddScalarIntoGrads(_po[{o.Param}], {numel}, {names.Scalar(g[o.Node].ScalarParam!)});");
            else
                w.Line($"AddIntoGrads(_po[{o.Param}], {Ptr(o.Node)}, {(IsLow(o.Node) ? "true" : "false")}, {numel}); // grad({g.Parameters[o.Param].Name})");
        }

        var result = g.Outputs.First(o => o.Role != OutputRole.ParamGrad);
        var rn = g[result.Node];
        var rp = plan.Placements[result.Node];
        if (!program.ReturnsTensor)
            w.Line(rp.Buffer == BufferKind.Fused ? $"return {names.Scalar(rn.ScalarParam!)};" : $"return ReadScalar({Ptr(result.Node)}, {(IsLow(result.Node) ? "true" : "false")});");
        else
        {
            var dims = rn.Shape.Select(d => "checked((int)(" + S(d) + "))").ToList();
            var shape = $"new int[] {{ {string.Join(", ", dims)} }}";
            if (rp.Buffer == BufferKind.Fused)
                w.Line($"return FilledTensor({shape}, {names.Scalar(rn.ScalarParam!)});");
            else
            {
                var kind = rn.DType == DType.I32 ? "Int32" : IsLow(result.Node) ? "Low" : "Float32";
                w.Line($"return ReadTensor({Ptr(result.Node)}, global::Kiln.Runtime.Cuda.DeviceTensorKind.{kind}, {shape});");
            }
        }
        w.Close();
        w.Line();
    }

    /// <summary>The GEMM of a matmul node (see <see cref="GemmPlan"/>, which the CPU program follows too).</summary>
    private static void EmitGemm(CodeWriter w, HostGraph host, GemmPlan p, Func<int, string> ptr, Func<int, bool> isLow, Func<Sym, string> s)
    {
        string T(bool t) => t ? "true" : "false";
        var acc = host.Buffer(p.C.Id) == BufferKind.Grads;
        var lowC = isLow(p.C.Id);
        if (p.FoldsBatch)
        {
            w.Line($"Gemm(false, {T(p.TransB)}, (long)({s(p.Rows)}), (long)({s(p.N)}), (long)({s(p.K)}), {ptr(p.A.Id)}, {ptr(p.B.Id)}, {ptr(p.C.Id)}, {T(lowC)}, {T(acc)});");
            return;
        }
        string Strides(Node x) => "new long[] { " + string.Join(", ", p.Strides(x).Select(d => d is null ? "0L" : $"(long)({s(d)})")) + " }";
        w.Line($"BatchedGemm({T(p.TransA)}, {T(p.TransB)}, (long)({s(p.M)}), (long)({s(p.N)}), (long)({s(p.K)}), {ptr(p.A.Id)}, {ptr(p.B.Id)}, {ptr(p.C.Id)}, {T(lowC)}, {T(acc)}, " +
               $"new long[] {{ {string.Join(", ", p.Batch.Select(d => $"(long)({s(d)})"))} }}, {Strides(p.A)}, {Strides(p.B)});");
    }

    /// <summary>The launches of a graph's kernels in schedule order (a loop's body launches inside the loop).</summary>
    private static void EmitGroups(CodeWriter w, HostGraph host, Dictionary<int, CudaLaunch> launches, Dictionary<int, Dictionary<int, CudaLaunch>> loopLaunches,
        Dictionary<string, int> kernelIndex, SymbolNames names)
    {
        var g = host.Graph;
        string S(Sym s) => names.Sym(s);
        foreach (var gr in g.Groups!)
        {
            var n = g[gr.Root];
            if (!gr.Kind.RunsKernel()) continue;
            var ops = string.Join(" + ", gr.Members.Select(m => g[m].Op.ToString().ToLowerInvariant()));
            w.Line($"// k{gr.Id} {gr.Kind.Text()} %{n.Id} = {ops}{(n.Src.Line > 0 ? $" ← {System.IO.Path.GetFileName(n.Src.File)}:{n.Src.Line}" : "")}");
            if (gr.Kind == GroupKind.MatMul)
            {
                EmitGemm(w, host, new GemmPlan(g, n), id => host.Ptr(id, S), host.IsLow, S);
                continue;
            }
            if (gr.Kind == GroupKind.Loop)
            {
                EmitLoop(w, host, n, loopLaunches, kernelIndex, names);
                continue;
            }
            if (!launches.TryGetValue(gr.Id, out var launch))
                throw new InvalidOperationException($"no CUDA launch was recorded for group k{gr.Id} ({gr.Kind}, {n.Op})");
            if (launch.ZeroFirst >= 0) w.Line($"Zero({host.Ptr(launch.ZeroFirst, S)}, {host.Bytes(launch.ZeroFirst, S)});");
            var args = launch.Args.Select(a => a.Kind switch
            {
                CudaArgKind.Buffer => host.Ptr(a.Node, S),
                CudaArgKind.Size => $"(long)({S(a.Size!)})",
                CudaArgKind.Float => names.Scalar(a.Float!),
                _ => a.Host!,
            });
            var how = launch.Grid switch { CudaGrid.Elements => "LaunchElements", CudaGrid.Warps => "LaunchWarps", _ => "LaunchBlocks" };
            // An array rather than a params span: generated code must compile with C# 12 (the .NET 8 SDK).
            w.Line($"{how}({kernelIndex[launch.Kernel]}, (long)({S(launch.Work)}), new global::Kiln.Runtime.Interop.KernelArgument[] {{ {string.Join(", ", args)} }}); // {launch.Kernel}");
        }
    }

    /// <summary>
    /// A loop on the device: the body's scratch pointers and carried buffers, the carried values copied in, then per
    /// iteration the body's launches and copies of results not written in place, then the final carried values copied out.
    /// </summary>
    private static void EmitLoop(CodeWriter w, HostGraph outer, Node n, Dictionary<int, Dictionary<int, CudaLaunch>> loopLaunches, Dictionary<string, int> kernelIndex, SymbolNames names)
    {
        string S(Sym s) => names.Sym(s);
        var loop = n.A<LoopAttr>();
        var body = loop.Body;
        var bp = body.Plan!;
        var scratch = outer.Graph.Plan!.Loops[n.Id];
        var l = HostGraph.L(n);
        var inner = new HostGraph(body, outer, n);
        w.Line("{").Indent();
        w.Line($"long {l}n = {S(loop.Count)};");
        w.Line($"ulong {l}f = A + 4UL * (ulong)({S(scratch.Float)}), {l}h = LA + LB * (ulong)({S(scratch.Low)}), {l}i = IA + 4UL * (ulong)({S(scratch.Int)});");
        w.Line($"_ = {l}f; _ = {l}h; _ = {l}i;");
        foreach (var kv in bp.Placements.Where(kv => kv.Value.Buffer is BufferKind.Arena or BufferKind.LowArena or BufferKind.IntArena).OrderBy(kv => kv.Key))
            w.Line($"long {l}o{kv.Key} = {S(kv.Value.Offset)};");
        for (int c = 0; c < bp.Carried.Count; c++)
        {
            var cb = bp.Carried[c];
            w.Line($"ulong {l}c{c}a = {HostGraph.Base(l, cb.Buffer)} + {HostGraph.Elem(cb.Buffer)} * (ulong)({S(cb.Ping)}), {l}c{c}b = {HostGraph.Base(l, cb.Buffer)} + {HostGraph.Elem(cb.Buffer)} * (ulong)({S(cb.Pong)});");
            var init = n.Inputs[c];
            var count = S(Shapes.Numel(outer.Graph[init].Shape));
            if (outer.IsLow(init) && cb.Buffer != BufferKind.LowArena) w.Line($"WidenLow({l}c{c}a, {outer.Ptr(init, S)}, {count});");
            else w.Line($"CopyDevice({l}c{c}a, {outer.Ptr(init, S)}, {HostGraph.Elem(cb.Buffer)} * (ulong)({count}));");
        }
        w.Open($"for (long {l}t = 0; {l}t < {l}n; {l}t++)");
        w.Line($"long {l}l = {(loop.Reverse ? $"{l}n - 1 - {l}t" : $"{l}t")};");
        for (int c = 0; c < bp.Carried.Count; c++)
            w.Line($"ulong {l}cr{c} = ({l}t & 1) == 0 ? {l}c{c}a : {l}c{c}b, {l}cw{c} = ({l}t & 1) == 0 ? {l}c{c}b : {l}c{c}a;");
        EmitGroups(w, inner, loopLaunches[n.Id], new Dictionary<int, Dictionary<int, CudaLaunch>>(), kernelIndex, names);
        for (int i = 0; i < body.Outputs.Count; i++)
        {
            var node = body.Outputs[i].Node;
            if (bp.Placements[node] is { Buffer: BufferKind.LoopOut } pl && pl.Param == i) continue;
            var target = inner.ResultPtr(i, S);
            w.Line($"CopyDevice({target}, {inner.Ptr(node, S)}, {(inner.IsLow(node) ? "LB" : "4UL")} * (ulong)({S(Shapes.Numel(body[node].Shape))}));");
        }
        w.Close();
        for (int c = 0; c < bp.Carried.Count; c++)
            foreach (var p in outer.Graph.Nodes.Where(x => x.Op == Op.LoopOut && x.Inputs[0] == n.Id && x.A<LoopOutAttr>().Index == c))
                if (outer.Graph.Plan.Placements.ContainsKey(p.Id))
                    w.Line($"CopyDevice({outer.Ptr(p.Id, S)}, (({l}n & 1) == 0 ? {l}c{c}a : {l}c{c}b), {HostGraph.Elem(bp.Carried[c].Buffer)} * (ulong)({S(Shapes.Numel(p.Shape))}));");
        w.Dedent(); w.Line("}");
    }

    /// <summary>
    /// Device storage of a graph's nodes, as C# pointer expressions of the host program; a loop body resolves its
    /// arguments and results to the loop's inputs, results and carried buffers (the iteration's slice for stacked ones).
    /// </summary>
    private sealed class HostGraph
    {
        private readonly HostGraph? _outer;
        private readonly Node? _loop;

        public HostGraph(Graph g, HostGraph? outer, Node? loop) { Graph = g; _outer = outer; _loop = loop; }

        public Graph Graph { get; }

        public static string L(Node loop) => "l" + loop.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);

        public static string Base(string l, BufferKind b) => b switch { BufferKind.Arena => l + "f", BufferKind.LowArena => l + "h", _ => l + "i" };

        public static string Elem(BufferKind b) => b is BufferKind.LowArena or BufferKind.LowParams ? "LB" : "4UL";

        public BufferKind Buffer(int id)
        {
            if (!Graph.Plan!.Placements.TryGetValue(id, out var p)) return BufferKind.Fused;
            if (p.Buffer is not (BufferKind.LoopIn or BufferKind.LoopOut)) return p.Buffer;
            var loop = _loop!.A<LoopAttr>();
            if (p.Param < loop.Carried) return Graph.Plan.Carried[p.Param].Buffer;
            return p.Buffer == BufferKind.LoopIn ? _outer!.Buffer(_loop.Inputs[p.Param]) : _outer!.Buffer(Projection(p.Param).Id);
        }

        public bool IsLow(int id) => Buffer(id) is BufferKind.LowArena or BufferKind.LowParams;

        public string Bytes(int id, Func<Sym, string> s) => $"{(IsLow(id) ? "(long)LB" : "4L")} * ({s(Shapes.Numel(Graph[id].Shape))})";

        private Node Projection(int index) => _outer!.Graph.Nodes.First(n => n.Op == Op.LoopOut && n.Inputs[0] == _loop!.Id && n.A<LoopOutAttr>().Index == index);

        public string Ptr(int id, Func<Sym, string> s)
        {
            var p = Graph.Plan!.Placements[id];
            var o = _loop is null ? "o" : L(_loop) + "o";
            string Arena(string main, string elem) => _loop is null ? $"{main} + {elem} * (ulong){o}{id}" : $"{Base(L(_loop), p.Buffer)} + {elem} * (ulong){o}{id}";
            return p.Buffer switch
            {
                BufferKind.Arena => Arena("A", "4UL"),
                BufferKind.LowArena => Arena("LA", "LB"),
                BufferKind.IntArena => Arena("IA", "4UL"),
                BufferKind.Params => $"P + 4UL * (ulong)_po[{p.Param}]",
                BufferKind.LowParams => $"LP + LB * (ulong)_po[{p.Param}]",
                BufferKind.Grads => $"G + 4UL * (ulong)_po[{p.Param}]",
                BufferKind.Input => "in_" + p.InputName,
                BufferKind.LoopIn => InputPtr(p.Param, s),
                BufferKind.LoopOut => ResultPtr(p.Param, s),
                _ => throw new InvalidOperationException($"%{id} has no device storage"),
            };
        }

        private string InputPtr(int i, Func<Sym, string> s)
        {
            var loop = _loop!.A<LoopAttr>();
            if (i < loop.Carried) return L(_loop) + "cr" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var input = _loop.Inputs[i];
            var outer = _outer!.Ptr(input, s);
            if (i < loop.Carried + loop.Captured) return outer;
            var arg = Graph.Nodes.First(n => n.Op == Op.LoopArg && n.A<LoopArgAttr>().Index == i);
            return $"{outer} + {Elem(_outer.Buffer(input))} * (ulong)({L(_loop)}l * {s(Shapes.Numel(arg.Shape))})";
        }

        public string ResultPtr(int i, Func<Sym, string> s)
        {
            var loop = _loop!.A<LoopAttr>();
            if (i < loop.Carried) return L(_loop) + "cw" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var projection = Projection(i);
            return $"{_outer!.Ptr(projection.Id, s)} + {Elem(_outer.Buffer(projection.Id))} * (ulong)({L(_loop)}l * {s(Shapes.Numel(Graph[Graph.Outputs[i].Node].Shape))})";
        }
    }
}
