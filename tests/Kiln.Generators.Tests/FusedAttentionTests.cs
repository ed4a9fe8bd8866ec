using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using Kiln.Cuda.Emulator;
using Kiln.Generators.Ir;
using Kiln.Generators.Tests.Reference;
using Kiln.Runtime;
using Kiln.Runtime.Cuda;
using Xunit;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// The fused attention op (Ops.Attention): compiled CPU programs against the float64 reference, against the same model
/// written as the composition (MatMul, Where, Softmax, MatMul), and the emulated CUDA program against the CPU, in fp32
/// and bf16; sequences long enough to cross the CPU's 64-key blocks and the CUDA kernels' 16-row tiles.
/// </summary>
public sealed class FusedAttentionTests(ITestOutputHelper output)
{
    public const string Source = """
        using System;
        using Kiln;
        namespace A;

        [Model]
        public partial class SelfFused(int dim = 32, int heads = 2, int vocab = 11)
        {
            Embedding tok = new(vocab, dim);
            Linear qkv = new(dim, 3 * dim), proj = new(dim, dim), head = new(dim, vocab);
            public Tensor Forward([Shape("B", "T")] Tensor<int> x)
            {
                var h = tok.Forward(x);
                var b = x.Dim(0); var t = x.Dim(1); var dh = dim / heads;
                var z = qkv.Forward(h);
                var q = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 0, dim), b, t, heads, dh), 0, 2, 1, 3);
                var k = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, dim, 2 * dim), b, t, heads, dh), 0, 2, 1, 3);
                var v = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 2 * dim, 3 * dim), b, t, heads, dh), 0, 2, 1, 3);
                var a = Ops.Attention(q, k, v, true);
                return head.Forward(h + proj.Forward(Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), b, t, dim)));
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> x, [Shape("B", "T")] Tensor<int> y) => Ops.CrossEntropy(Forward(x), y);
        }

        [Model]
        public partial class SelfComposed(int dim = 32, int heads = 2, int vocab = 11)
        {
            Embedding tok = new(vocab, dim);
            Linear qkv = new(dim, 3 * dim), proj = new(dim, dim), head = new(dim, vocab);
            public Tensor Forward([Shape("B", "T")] Tensor<int> x)
            {
                var h = tok.Forward(x);
                var b = x.Dim(0); var t = x.Dim(1); var dh = dim / heads;
                var z = qkv.Forward(h);
                var q = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 0, dim), b, t, heads, dh), 0, 2, 1, 3);
                var k = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, dim, 2 * dim), b, t, heads, dh), 0, 2, 1, 3);
                var v = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 2 * dim, 3 * dim), b, t, heads, dh), 0, 2, 1, 3);
                var pos = Ops.ToFloat(Ops.Arange(t));
                var causal = Ops.Less(Ops.Reshape(pos, 1, t), Ops.Reshape(pos, t, 1) + 0.5f);
                var scores = Ops.MatMul(q, k.T) * (1f / MathF.Sqrt(dh));
                var a = Ops.MatMul(Ops.Softmax(Ops.Where(causal, scores, float.NegativeInfinity), -1), v);
                return head.Forward(h + proj.Forward(Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), b, t, dim)));
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> x, [Shape("B", "T")] Tensor<int> y) => Ops.CrossEntropy(Forward(x), y);
        }

        [Model]
        public partial class CrossFused(int dim = 16, int heads = 2, int vocab = 7)
        {
            Embedding tok = new(vocab, dim), src = new(vocab, dim);
            Linear query = new(dim, dim), keyValue = new(dim, 2 * dim), head = new(dim, vocab);
            public Tensor Forward([Shape("B", "T")] Tensor<int> x, [Shape("B", "S")] Tensor<int> m, [Shape("B", "S")] Tensor keep)
            {
                var b = x.Dim(0); var t = x.Dim(1); var s = m.Dim(1); var dh = dim / heads;
                var h = tok.Forward(x);
                var kv = keyValue.Forward(src.Forward(m));
                var q = Ops.Permute(Ops.Reshape(query.Forward(h), b, t, heads, dh), 0, 2, 1, 3);
                var k = Ops.Permute(Ops.Reshape(Ops.Slice(kv, -1, 0, dim), b, s, heads, dh), 0, 2, 1, 3);
                var v = Ops.Permute(Ops.Reshape(Ops.Slice(kv, -1, dim, 2 * dim), b, s, heads, dh), 0, 2, 1, 3);
                var a = Ops.Attention(q, k, v, keep);
                return head.Forward(h + Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), b, t, dim));
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> x, [Shape("B", "S")] Tensor<int> m, [Shape("B", "S")] Tensor keep, [Shape("B", "T")] Tensor<int> y) =>
                Ops.CrossEntropy(Forward(x, m, keep), y);
        }

        [Model]
        public partial class CrossComposed(int dim = 16, int heads = 2, int vocab = 7)
        {
            Embedding tok = new(vocab, dim), src = new(vocab, dim);
            Linear query = new(dim, dim), keyValue = new(dim, 2 * dim), head = new(dim, vocab);
            public Tensor Forward([Shape("B", "T")] Tensor<int> x, [Shape("B", "S")] Tensor<int> m, [Shape("B", "S")] Tensor keep)
            {
                var b = x.Dim(0); var t = x.Dim(1); var s = m.Dim(1); var dh = dim / heads;
                var h = tok.Forward(x);
                var kv = keyValue.Forward(src.Forward(m));
                var q = Ops.Permute(Ops.Reshape(query.Forward(h), b, t, heads, dh), 0, 2, 1, 3);
                var k = Ops.Permute(Ops.Reshape(Ops.Slice(kv, -1, 0, dim), b, s, heads, dh), 0, 2, 1, 3);
                var v = Ops.Permute(Ops.Reshape(Ops.Slice(kv, -1, dim, 2 * dim), b, s, heads, dh), 0, 2, 1, 3);
                var scores = Ops.MatMul(q, k.T) * (1f / MathF.Sqrt(dh));
                var a = Ops.MatMul(Ops.Softmax(Ops.Where(Ops.Reshape(keep, b, 1, 1, s), scores, float.NegativeInfinity), -1), v);
                return head.Forward(h + Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), b, t, dim));
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> x, [Shape("B", "S")] Tensor<int> m, [Shape("B", "S")] Tensor keep, [Shape("B", "T")] Tensor<int> y) =>
                Ops.CrossEntropy(Forward(x, m, keep), y);
        }
        """;

    private static readonly Lazy<Assembly> Models = new(() => GeneratorHarness.Build(Source));

    /// <summary>Keep masks of zeros and ones with the first key of every row kept (so no query is left without keys).</summary>
    internal static RefTensor? KeepMask(string name, long[] shape, Random rng)
    {
        if (name != "keep") return null;
        var data = new double[ReferenceInterpreter.Numel(shape)];
        for (long i = 0; i < data.Length; i++) data[i] = i % shape[1] == 0 ? 1 : rng.Next(3) == 0 ? 0 : 1;
        return RefTensor.Float(data, shape);
    }

    // Sizes: (B, T) with S = 3 for the cross models; T = 70 crosses a 64-key CPU block and several 16-row CUDA tiles.
    private static readonly (long B, long T, long Step)[] Sizes = { (3, 4, 0), (5, 2, 7), (2, 70, 3) };

    // Head size 16 and 8 take the portable kernels; 64 (dim 128, 2 heads) the AVX-512 path where the machine has it.
    [Theory]
    [InlineData("A.SelfFused", 0)]
    [InlineData("A.CrossFused", 0)]
    [InlineData("A.SelfFused", 128)]
    [InlineData("A.CrossFused", 128)]
    public void Fused_attention_models_match_the_float64_reference(string model, int dim)
    {
        var why = $"{model} dim {(dim == 0 ? "default" : dim)} ({TestSeeds.Describe(model + " fused " + dim)})";
        var hypers = dim == 0 ? null : new Dictionary<string, double> { ["dim"] = dim };
        CompiledCheck.Run(Models.Value, Source, model, new Random(TestSeeds.For(model + " fused " + dim)), why, output, KeepMask, Sizes, hypers);
    }

    [Fact]
    public void The_fused_op_is_in_the_program_and_the_scores_matrix_is_not()
    {
        var (compiled, _) = Kiln.Generators.Passes.Pipeline.Compile(ModelGraphs.Spec(Source, "A.SelfFused"), false);
        var train = compiled!.Train;
        Assert.Contains(train.Nodes, n => n.Op == Op.Attention);
        Assert.Contains(train.Nodes, n => n.Op == Op.AttentionGrad);
        // No node of the fused program is T×T: nothing is [.., T, T].
        Assert.DoesNotContain(train.Nodes, n => n.Rank >= 2 && n.Shape[n.Rank - 1].Equals(Sym.Var("T")) && n.Shape[n.Rank - 2].Equals(Sym.Var("T")));
        var (composed, _) = Kiln.Generators.Passes.Pipeline.Compile(ModelGraphs.Spec(Source, "A.SelfComposed"), false);
        Assert.Contains(composed!.Train.Nodes, n => n.Rank >= 2 && n.Shape[n.Rank - 1].Equals(Sym.Var("T")) && n.Shape[n.Rank - 2].Equals(Sym.Var("T")));
    }

    [Theory]
    [InlineData("A.SelfFused", "A.SelfComposed", 0)]
    [InlineData("A.CrossFused", "A.CrossComposed", 0)]
    [InlineData("A.SelfFused", "A.SelfComposed", 128)]
    [InlineData("A.CrossFused", "A.CrossComposed", 128)]
    public void Fused_attention_matches_the_composition_in_loss_and_every_gradient(string fused, string composed, int dim)
    {
        var rng = new Random(TestSeeds.For(fused + " vs composition " + dim));
        var why = $"{fused} vs {composed}, dim {(dim == 0 ? "default" : dim)} ({TestSeeds.Describe(fused + " vs composition " + dim)})";
        var spec = ModelGraphs.Spec(Source, fused);
        var train = ModelGraphs.Train(spec);
        var args = dim == 0 ? Array.Empty<object?>() : new object?[] { dim, null, null };
        var f = GeneratorHarness.CreateProgram(Models.Value, fused, args);
        var c = GeneratorHarness.CreateProgram(Models.Value, composed, args);
        Assert.Equal(f.Parameters.Select(p => p.Name), c.Parameters.Select(p => p.Name));
        foreach (var (b, t, step) in Sizes)
        {
            var (_, batch) = CompiledCheck.Prepare(spec, train, null, f, rng, b, t, KeepMask);
            Array.Copy(f.Params, c.Params, f.Params.Length);
            c.ParametersChanged(); f.ParametersChanged();
            var ctx = new StepContext(7, step, 0);
            f.ZeroGrads(); c.ZeroGrads();
            float lf = f.TrainStep(batch, ctx), lc = c.TrainStep(batch, ctx);
            output.WriteLine($"{why} [B={b}, T={t}]: loss fused {lf:R} composed {lc:R}");
            CompiledCheck.AssertClose($"{why} [B={b}, T={t}]: loss", new double[] { lf }, new double[] { lc }, 1e-5, 1e-5);
            foreach (var p in f.Parameters)
                CompiledCheck.AssertClose($"{why} [B={b}, T={t}]: grad({p.Name})",
                    f.Grads.AsSpan((int)p.Offset, (int)p.Length).ToArray().Select(v => (double)v).ToArray(),
                    c.Grads.AsSpan((int)p.Offset, (int)p.Length).ToArray().Select(v => (double)v).ToArray(), 1e-5, 1e-4, floor: 1.0);
            var pf = f.Forward(batch); var pc = c.Forward(batch);
            CompiledCheck.AssertClose($"{why} [B={b}, T={t}]: Forward", pf.Floats!.Select(v => (double)v).ToArray(), pc.Floats!.Select(v => (double)v).ToArray(), 1e-5, 1e-4);
        }
    }

    [EmulatorTheory]
    [InlineData("A.SelfFused", PrecisionMode.Float32)]
    [InlineData("A.SelfFused", PrecisionMode.BFloat16)]
    [InlineData("A.CrossFused", PrecisionMode.Float32)]
    [InlineData("A.CrossFused", PrecisionMode.BFloat16)]
    public void Fused_attention_on_the_cuda_emulator_matches_the_cpu_program(string model, PrecisionMode precision)
    {
        var rng = new Random(TestSeeds.For(model + " emulator"));
        var why = $"{model} {precision} ({TestSeeds.Describe(model + " emulator")})";
        var spec = ModelGraphs.Spec(Source, model);
        var train = ModelGraphs.Train(spec);
        var cpu = GeneratorHarness.CreateProgram(Models.Value, model, "cpu", precision);
        using var gpu = new EmulatedGpu();
        using var program = (CudaModelProgram)GeneratorHarness.CreateProgram(Models.Value, model, gpu, precision);
        var (abs, rel) = precision == PrecisionMode.Float32 ? (1e-4, 1e-3) : (2e-3, 4e-2);
        foreach (var (b, t, step) in new[] { (2L, 5L, 0L), (2L, 37L, 3L) })
        {
            var (_, batch) = CompiledCheck.Prepare(spec, train, null, cpu, rng, b, t, KeepMask);
            Array.Copy(cpu.Params, program.Params, cpu.Params.Length);
            cpu.ParametersChanged(); program.ParametersChanged();
            var ctx = new StepContext(11, step, 0);
            cpu.ZeroGrads(); program.ZeroGrads();
            float lc = cpu.TrainStep(batch, ctx), lg = program.TrainStep(batch, ctx);
            output.WriteLine($"{why} [B={b}, T={t}]: loss cpu {lc:R} emulated gpu {lg:R}");
            CompiledCheck.AssertClose($"{why} [B={b}, T={t}]: loss", new double[] { lg }, new double[] { lc }, abs, rel);
            program.SyncGradientsToHost();
            foreach (var p in cpu.Parameters)
                CompiledCheck.AssertClose($"{why} [B={b}, T={t}]: grad({p.Name})",
                    program.Grads.AsSpan((int)p.Offset, (int)p.Length).ToArray().Select(v => (double)v).ToArray(),
                    cpu.Grads.AsSpan((int)p.Offset, (int)p.Length).ToArray().Select(v => (double)v).ToArray(), abs, rel, floor: 1.0);
        }
    }

    [Theory]
    [InlineData("Ops.Attention(x, x, x, true)", "KILN1003", "[batch, heads, sequence, head size]")]
    [InlineData("Ops.Attention(q, q, Ops.Slice(q, 3, 0, 2), true)", "KILN1002", "keys and values differ on axis 3")]
    [InlineData("Ops.Attention(w, w, w, true)", "KILN1003", "head size 160 is over 128")]
    [InlineData("Ops.Attention(q, q, q, Ops.Reshape(x, -1))", "KILN1003", "keep mask as [batch, keys]")]
    public void A_misshapen_attention_is_a_located_build_error_naming_the_shapes(string call, string id, string words)
    {
        var source = $$"""
            using Kiln;
            namespace Bad;
            [Model]
            public partial class M(int dim = 8)
            {
                Linear head = new(8, 1);
                public Tensor Forward([Shape("B", "T", "dim")] Tensor x)
                {
                    var q = Ops.Reshape(x, x.Dim(0), 2, x.Dim(1), 4);
                    var w = Ops.Reshape(Ops.Concat(-1, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x), x.Dim(0), 1, x.Dim(1), 160);
                    var a = {{call}};
                    return head.Forward(x) + Ops.Sum(a);
                }
                [Loss] public Tensor Loss([Shape("B", "T", "dim")] Tensor x) => Ops.Mean(Forward(x));
            }
            """;
        var diagnostics = GeneratorHarness.KilnDiagnostics(source);
        var d = diagnostics.FirstOrDefault(x => x.Id == id);
        Assert.True(d is not null, $"expected {id} for {call}; got: {string.Join("; ", diagnostics.Select(x => x.Id + " " + x.GetMessage(System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.Contains(words, d!.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        Assert.Equal(11, d.Location.GetLineSpan().StartLinePosition.Line + 1); // the line of the call
    }
}
