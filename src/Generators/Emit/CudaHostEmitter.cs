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

    public static void Emit(CodeWriter w, CompiledModel cm, CudaModule cuda, SymbolNames names, string cpuProgramClass)
    {
        var spec = cm.Spec;
        var root = spec.Modules.First(m => m.FullName == spec.RootModule);
        var kernels = cuda.Launches.Values.SelectMany(l => l.Values).Select(l => l.Kernel).Distinct().OrderBy(k => k, StringComparer.Ordinal).ToList();
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
        w.Open($"public {ProgramClass}(global::Kiln.Runtime.Cuda.IGpu gpu, global::Kiln.PrecisionMode precision{sep}{ctorParams}) : this(gpu, precision, {cpuProgramClass}.CheckHyperparameters({ctorArgs}){sep}{ctorArgs})");
        w.Close();
        w.Line();
        w.Open($"private {ProgramClass}(global::Kiln.Runtime.Cuda.IGpu gpu, global::Kiln.PrecisionMode precision, global::System.Collections.Generic.List<global::Kiln.Runtime.ParameterInfo> table{sep}{ctorParams}) : " +
               $"base(gpu, precision, table, table.Count == 0 ? 0 : table[table.Count - 1].Offset + table[table.Count - 1].Length, {SymbolNames.Str(spec.Name)}, {SymbolNames.Str(cuda.FileName)}, KilnCudaSource, __kernels)");
        foreach (var h in root.Hypers) w.Line(h.Type is "float" or "double" ? $"_f_{h.Name} = {h.Name};" : $"_h_{h.Name} = {h.Name};");
        w.Line("_po = new long[table.Count];");
        w.Line("for (int i = 0; i < table.Count; i++) _po[i] = table[i].Offset;");
        w.Close();
        w.Line();
        w.Line($"public override string IrText => {spec.Name}.KilnIr;");
        w.Line($"public override string Report => {SymbolNames.Str(ProgramEmitter.Report(cm))};");
        w.Line($"public override global::System.Collections.Generic.IReadOnlyList<global::Kiln.Runtime.InputInfo> LossInputs => {cpuProgramClass}._LossInputs;");
        w.Line($"public override global::System.Collections.Generic.IReadOnlyList<global::Kiln.Runtime.InputInfo> ForwardInputs => {cpuProgramClass}._ForwardInputs;");
        w.Line($"public override global::System.Collections.Generic.IReadOnlyList<global::Kiln.Runtime.ProgramInfo> Programs => {cpuProgramClass}._Programs;");
        w.Line();

        foreach (var p in cm.Programs) EmitRun(w, p, cuda.Launches[p.Name], kernelIndex, names);
        ProgramEmitter.EmitMissingEntryPoints(w, cm);
        w.Close();
    }

    private static void EmitRun(CodeWriter w, ProgramDef program, Dictionary<int, CudaLaunch> launches, Dictionary<string, int> kernelIndex, SymbolNames names)
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

        string Ptr(int id)
        {
            var p = plan.Placements[id];
            return p.Buffer switch
            {
                BufferKind.Arena => $"A + 4UL * (ulong)o{id}",
                BufferKind.LowArena => $"LA + LB * (ulong)o{id}",
                BufferKind.IntArena => $"IA + 4UL * (ulong)o{id}",
                BufferKind.Params => $"P + 4UL * (ulong)_po[{p.Param}]",
                BufferKind.LowParams => $"LP + LB * (ulong)_po[{p.Param}]",
                BufferKind.Grads => $"G + 4UL * (ulong)_po[{p.Param}]",
                BufferKind.Input => "in_" + p.InputName,
                _ => throw new InvalidOperationException($"%{id} has no device storage"),
            };
        }
        bool IsLow(int id) => plan.Placements[id].Buffer is BufferKind.LowArena or BufferKind.LowParams;
        string Bytes(int id) => $"{(IsLow(id) ? "(long)LB" : "4L")} * ({S(Shapes.Numel(g[id].Shape))})";

        foreach (var gr in g.Groups!)
        {
            var n = g[gr.Root];
            if (!gr.Kind.RunsKernel()) continue;
            var ops = string.Join(" + ", gr.Members.Select(m => g[m].Op.ToString().ToLowerInvariant()));
            w.Line($"// k{gr.Id} {gr.Kind.Text()} %{n.Id} = {ops}{(n.Src.Line > 0 ? $" ← {System.IO.Path.GetFileName(n.Src.File)}:{n.Src.Line}" : "")}");
            if (gr.Kind == GroupKind.MatMul)
            {
                EmitGemm(w, g, new GemmPlan(g, n), Ptr, IsLow, S);
                continue;
            }
            if (!launches.TryGetValue(gr.Id, out var launch))
                throw new InvalidOperationException($"no CUDA launch was recorded for group k{gr.Id} ({gr.Kind}, {n.Op})");
            if (launch.ZeroFirst >= 0) w.Line($"Zero({Ptr(launch.ZeroFirst)}, {Bytes(launch.ZeroFirst)});");
            var args = launch.Args.Select(a => a.Kind switch
            {
                CudaArgKind.Buffer => Ptr(a.Node),
                CudaArgKind.Size => $"(long)({S(a.Size!)})",
                CudaArgKind.Float => names.Scalar(a.Float!),
                _ => a.Host!,
            });
            var how = launch.Grid switch { CudaGrid.Elements => "LaunchElements", CudaGrid.Warps => "LaunchWarps", _ => "LaunchBlocks" };
            // An array rather than a params span: generated code must compile with C# 12 (the .NET 8 SDK).
            w.Line($"{how}({kernelIndex[launch.Kernel]}, (long)({S(launch.Work)}), new global::Kiln.Runtime.Interop.KernelArgument[] {{ {string.Join(", ", args)} }}); // {launch.Kernel}");
        }

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
    private static void EmitGemm(CodeWriter w, Graph g, GemmPlan p, Func<int, string> ptr, Func<int, bool> isLow, Func<Sym, string> s)
    {
        string T(bool t) => t ? "true" : "false";
        var acc = g.Plan!.Placements[p.C.Id].Buffer == BufferKind.Grads;
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
}
