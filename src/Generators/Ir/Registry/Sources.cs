using System.Collections.Generic;
using Kiln.Generators.Emit;

namespace Kiln.Generators.Ir;

// Sources: ops without tensor inputs.
internal static partial class OpRegistry
{
    private static IEnumerable<OpDef> SourceOps()
    {
        yield return new OpDef(Op.Input, OpKind.Source, 0)
        {
            Attr = typeof(InputAttr),
            Shape = a => (a.A<InputAttr>().DType, a.Declared!),
            Lowering = new NoKernel("a program input is the caller's array"),
        };

        yield return new OpDef(Op.Param, OpKind.Source, 0)
        {
            Attr = typeof(ParamAttr),
            Shape = ShapeRules.Declared(DType.F32),
            // Autodiff stops at a parameter and records its gradient as an output; nothing flows further.
            Grad = (g, n, dy) => System.Array.Empty<int?>(),
            Precision = PrecisionPolicy.AdoptsActivation,
            Lowering = new NoKernel("a parameter is a view of the parameter slab (or of its low-precision shadow)"),
        };

        yield return new OpDef(Op.Fill, OpKind.Source, 0)
        {
            Attr = typeof(ScalarAttr),
            Shape = ShapeRules.Declared(DType.F32),
            Precision = PrecisionPolicy.AdoptsActivation,
            Lowering = new KernelLowering(
                c => c.Call("Fill", c.Out, c.N(c.Node.Shape), c.Scalar(c.Node.A<ScalarAttr>().Value)),
                c =>
                {
                    var ps = c.Params();
                    c.OutParam(ps); ps.Add("float value", CudaArg.Fl(c.Node.A<ScalarAttr>().Value)); c.SizeParam(ps, "count", c.Numel(c.Node.Shape));
                    c.Kernel("fill", ps, CudaGrid.Elements, c.Numel(c.Node.Shape), () =>
                    {
                        c.Line($"    // value = {c.Scalar(c.Node.A<ScalarAttr>().Value)}");
                        c.Line($"    KILN_FOR_ELEMENTS(i, count) {{ {c.Store(c.Node.Id, "i", "value")} }}");
                    });
                }),
        };

        yield return new OpDef(Op.Arange, OpKind.Source, 0)
        {
            Shape = ShapeRules.Declared(DType.I32),
            Lowering = new KernelLowering(
                c => c.Call("Arange", c.Out, c.S(c.Node.Shape[0])),
                c =>
                {
                    var ps = c.Params();
                    c.OutParam(ps); c.SizeParam(ps, "count", c.Node.Shape[0]);
                    c.Kernel("arange", ps, CudaGrid.Elements, c.Node.Shape[0], () => c.Line("    KILN_FOR_ELEMENTS(i, count) out[i] = (int)i;"));
                }),
        };

        // Only in decode programs (see DecodeProgram): the positions of the new tokens, after those in the KV cache.
        yield return new OpDef(Op.Positions, OpKind.Source, 0)
        {
            Shape = ShapeRules.Declared(DType.I32),
            Lowering = new KernelLowering(
                c => c.Call("Arange", c.Out, c.S(c.Node.Shape[0]), "DecodePosition"),
                c =>
                {
                    var ps = c.Params();
                    c.OutParam(ps); c.SizeParam(ps, "count", c.Node.Shape[0]);
                    ps.Add("long long start", CudaArg.Expr("(long)DecodePosition"));
                    c.Kernel("positions", ps, CudaGrid.Elements, c.Node.Shape[0], () => c.Line("    KILN_FOR_ELEMENTS(i, count) out[i] = (int)(start + i);"));
                }),
        };

        yield return new OpDef(Op.DropoutMask, OpKind.Source, 0)
        {
            Attr = typeof(DropoutAttr),
            Shape = ShapeRules.Declared(DType.F32),
            Precision = PrecisionPolicy.AdoptsActivation,
            Lowering = new KernelLowering(
                c =>
                {
                    // In a loop body, iteration l draws elements [l·n, (l + 1)·n) of the site's stream: each layer its own mask.
                    var d = c.Node.A<DropoutAttr>();
                    var count = c.N(c.Node.Shape);
                    var first = c.Layer is null ? "" : $", (ulong)({c.Layer} * {count})";
                    c.Line($"global::Kiln.Runtime.Cpu.DropoutKernels.FillMask(new global::System.Span<float>({c.OutArray}, (int)({c.OutOffset}), (int)({count})), {c.Scalar(d.P)}, ctx.Seed, global::Kiln.Runtime.Cpu.DropoutKernels.Stream(ctx.Step, ctx.MicroStep, {d.Site}){first});");
                },
                c =>
                {
                    // The mask is a pure function of (seed, step, micro-step, site, element): the runtime's kernel draws the
                    // same Philox words as the CPU's DropoutKernels.FillMask.
                    var d = c.Node.A<DropoutAttr>();
                    var count = c.Numel(c.Node.Shape);
                    c.Line($"// runs kiln_rt_dropout_mask: p = {c.Scalar(d.P)}, site {d.Site}");
                    c.RuntimeLaunch("kiln_rt_dropout_mask", CudaGrid.Elements, count,
                        CudaArg.Buffer(c.Node.Id), CudaArg.Fl(d.P), CudaArg.Expr("ctx.Seed"),
                        CudaArg.Expr($"global::Kiln.Runtime.Cpu.DropoutKernels.Stream(ctx.Step, ctx.MicroStep, {d.Site})"),
                        CudaArg.Expr(c.Layer is null ? "0UL" : $"(ulong)({c.Layer} * ({c.HostSize(count)}))"), CudaArg.Sz(count));
                }),
        };
    }
}
