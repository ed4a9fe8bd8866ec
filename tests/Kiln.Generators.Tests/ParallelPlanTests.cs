using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Text.Json;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;
using Microsoft.CodeAnalysis;
using Xunit;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// [Parallel] at build time: each divisibility rule of the mesh is a located error naming the fix, values out of range
/// and a bad KilnDeviceMemory are errors, a plan over KilnDeviceMemory is an error listing what fits, and the plan
/// report's per-rank memory, communication and FLOPs are checked against what simulated data-parallel ranks hold and
/// send, and against FLOP counts written out by hand.
/// </summary>
public sealed class ParallelPlanTests
{
    private readonly ITestOutputHelper _out;
    public ParallelPlanTests(ITestOutputHelper output) => _out = output;

    /// <summary>A GPT from the module library with a [Parallel] declaration and hyperparameter defaults given as text.</summary>
    private static string Gpt(string name, string parallel, int vocab = 128, int heads = 2, int layers = 2, int dim = 16, int context = 8, bool tensor = false) =>
        ParallelTestModels.Gpt("Q", name, parallel, vocab, context, dim, heads, layers, tensor);

    private static string Mlp(string name, string parallel) => $$"""
        using Kiln;
        namespace Q;

        [Model, Parallel({{parallel}})]
        public partial class {{name}}(int din = 6, int hidden = 24, int dout = 3)
        {
            Linear fc1 = new(din, hidden), fc2 = new(hidden, hidden), fc3 = new(hidden, dout);
            public Tensor Forward([Shape("B", "din")] Tensor x) => fc3.Forward(Ops.Gelu(fc2.Forward(Ops.Tanh(fc1.Forward(x)))));
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }
        """;

    private static List<Diagnostic> Kiln(string source, string? memory = null) =>
        GeneratorHarness.RunWith(memory, source).GeneratorDiagnostics.Where(d => d.Id.StartsWith("KILN", StringComparison.Ordinal)).ToList();

    /// <summary>The one diagnostic <paramref name="id"/>, located on the [Parallel] attribute's line, whose message contains every fragment.</summary>
    private void AssertDiagnostic(string source, string id, DiagnosticSeverity severity, params string[] fragments)
    {
        var diags = Kiln(source);
        foreach (var d in diags) _out.WriteLine(d.ToString());
        var hit = Assert.Single(diags, d => d.Id == id);
        Assert.Equal(severity, hit.Severity);
        int line = source.Split('\n').ToList().FindIndex(l => l.Contains("Parallel(", StringComparison.Ordinal));
        Assert.Equal(line, hit.Location.GetLineSpan().StartLinePosition.Line);
        var message = hit.GetMessage(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var f in fragments) Assert.Contains(f, message);
    }

    [Fact]
    public void Heads_that_do_not_divide_by_the_tensor_degree_are_a_build_error_suggesting_degrees_that_divide()
        => AssertDiagnostic(Gpt("G", "Tensor = 2", heads: 3, dim: 24), "KILN4001", DiagnosticSeverity.Error, "3 attention heads", "Tensor = 2", "Use Tensor = 3", "Nn.g.cs");

    [Fact]
    public void Layers_that_do_not_divide_into_the_pipeline_stages_are_a_build_error_suggesting_a_layer_count()
        => AssertDiagnostic(Gpt("G", "Pipeline = 2, MicroBatches = 4", layers: 3), "KILN4002", DiagnosticSeverity.Error, "repeats 3 blocks", "Pipeline = 2", "Pipeline = 3", "multiple of 2 (4)");

    [Fact]
    public void A_pipeline_over_a_model_without_repeated_blocks_is_a_build_error()
        => AssertDiagnostic(Mlp("M", "Pipeline = 2, MicroBatches = 2"), "KILN4002", DiagnosticSeverity.Error, "has no repeated blocks", "Module.Repeat");

    [Fact]
    public void Fewer_micro_batches_than_stages_are_a_build_error_with_the_bubble_of_a_better_count()
        => AssertDiagnostic(Gpt("G", "Pipeline = 2, MicroBatches = 1"), "KILN4003", DiagnosticSeverity.Error, "MicroBatches = 1", "Pipeline = 2", "MicroBatches = 8", "bubble of 11%");

    [Fact]
    public void A_vocabulary_not_padded_to_the_tensor_degree_times_64_is_a_build_error_naming_the_padded_size()
        => AssertDiagnostic(Gpt("G", "Tensor = 2", vocab: 129), "KILN4004", DiagnosticSeverity.Error, "vocabulary of 192" /* TiedEmbedding pads 129 to 192 */, "Tensor (2) × 64 = 128", "Pad it to 256");

    [Fact]
    public void A_batch_that_does_not_divide_over_data_ranks_and_micro_batches_is_a_build_error_with_the_nearest_batches()
        => AssertDiagnostic(Mlp("M", "Data = 4, MicroBatches = 2, Batch = 20"), "KILN4005", DiagnosticSeverity.Error, "Batch = 20", "Data = 4", "MicroBatches = 2", "Batch = 16 or Batch = 24");

    [Fact]
    public void A_layout_that_passes_every_rule_builds_with_warnings_for_the_pipeline_schedule_and_for_a_tensor_degree_without_tensor_layers()
    {
        var source = Gpt("G", "Data = 2, Tensor = 2, Pipeline = 2, MicroBatches = 4, Batch = 16, Sequence = 8");
        AssertDiagnostic(source, "KILN4006", DiagnosticSeverity.Warning, "Pipeline = 2", "one after another", "idles 50%");
        AssertDiagnostic(source, "KILN4007", DiagnosticSeverity.Warning, "Tensor = 2", "no int hyperparameter 'tensor'");
        Assert.DoesNotContain(Kiln(source), d => d.Severity == DiagnosticSeverity.Error);
        var report = (string)GeneratorHarness.Build(source).GetType("Q.G")!.GetField("KilnPlanReport")!.GetValue(null)!;
        _out.WriteLine(report);
        Assert.Contains("heads 2 divide by tensor degree 2", report);
        Assert.Contains("2 layers divide into 2 pipeline stages", report);
        Assert.Contains("vocabulary 128 is a multiple of tensor degree × 64 = 128", report);
        Assert.Contains("Pipeline bubble: 50.0%", report); // stages run the micro-batches one after another: (p − 1) / p

        // The programs are pipeline stages, and the layout is the declaration.
        var program = GeneratorHarness.CreateProgram(GeneratorHarness.Build(source), "Q.G");
        Assert.Equal(new ParallelLayout(2, 2, 2, 4, ZeroStage.None, 16, 8), program.Layout);
        Assert.True(program.SupportsPipeline);

        // With tensor-parallel layers (a 'tensor' hyperparameter passed to the blocks) the tensor degree is not warned about.
        var split = Gpt("H", "Data = 2, Tensor = 2, Batch = 16, Sequence = 8", tensor: true);
        Assert.DoesNotContain(Kiln(split), d => d.Id is "KILN4006" or "KILN4007");
    }

    [Theory]
    [InlineData("Data = 0", "[Parallel] Data = 0")]
    [InlineData("Tensor = -2", "[Parallel] Tensor = -2")]
    [InlineData("MicroBatches = 0", "[Parallel] MicroBatches = 0")]
    [InlineData("Zero = (ZeroStage)3", "[Parallel] Zero = 3")]
    [InlineData("Batch = -8", "[Parallel] Batch = -8")]
    public void Values_out_of_range_in_Parallel_are_located_errors(string parallel, string expected)
        => AssertDiagnostic(Mlp("M", parallel), "KILN0018", DiagnosticSeverity.Error, expected);

    [Fact]
    public void A_plan_over_KilnDeviceMemory_is_a_build_error_listing_the_options_that_fit()
    {
        // 24 GPT rows of 8 tokens on 2 ranks without ZeRO: set the limit between the ZeRO-1 total and the plain one.
        var source = Gpt("G", "Data = 2, Batch = 48, Sequence = 8", vocab: 512, dim: 64, heads: 4);
        var plain = Plan(GeneratorHarness.Build(source), "Q.G");
        long total = plain.GetProperty("perRank").GetProperty("totalBytes").GetInt64();
        long activations = plain.GetProperty("perRank").GetProperty("activationBytes").GetInt64();
        long limit = total - activations / 3; // two micro-batches of 12 rows roughly halve the activations
        var diags = Kiln(source, limit.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var d in diags) _out.WriteLine(d.ToString());
        var hit = Assert.Single(diags, d => d.Id == "KILN5001");
        Assert.Equal(DiagnosticSeverity.Error, hit.Severity);
        var message = hit.GetMessage(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains("MicroBatches = 2 (12 rows each)", message);
        Assert.Contains("[Recompute]", message);
        // Above the need: no error.
        Assert.DoesNotContain(Kiln(source, (total + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)), d => d.Id == "KILN5001");
        Assert.DoesNotContain(Kiln(source, "80GiB"), d => d.Id == "KILN5001");

        // A model with tensor-parallel layers and stages also hears of a larger tensor degree and more stages, sized.
        var split = Gpt("T", "Data = 2, Tensor = 2, Pipeline = 2, MicroBatches = 2, Batch = 48, Sequence = 8", vocab: 512, dim: 64, heads: 4, layers: 4, tensor: true);
        long splitTotal = Plan(GeneratorHarness.Build(split), "Q.T").GetProperty("perRank").GetProperty("totalBytes").GetInt64();
        var over = Assert.Single(Kiln(split, (splitTotal - 1).ToString(System.Globalization.CultureInfo.InvariantCulture)), d => d.Id == "KILN5001");
        var text = over.GetMessage(System.Globalization.CultureInfo.InvariantCulture);
        _out.WriteLine(text);
        Assert.Contains("Tensor = 4 (", text);
        Assert.DoesNotContain("Tensor = 8", text); // 4 heads do not divide over 8 ranks
        Assert.Contains("Pipeline = 4 (", text);
    }

    [Theory]
    [InlineData("80GiB", 80L << 30)]
    [InlineData("79.5 GB", 79_500_000_000L)]
    [InlineData("24576MiB", 24576L << 20)]
    [InlineData("1000000", 1_000_000L)]
    [InlineData("lots", null)]
    [InlineData("-4GB", null)]
    [InlineData("4 parsecs", null)]
    public void KilnDeviceMemory_reads_bytes_with_decimal_and_binary_units(string text, long? bytes) => Assert.Equal(bytes, KilnGenerator.ParseBytes(text));

    [Fact]
    public void A_KilnDeviceMemory_that_is_not_a_size_is_a_build_error()
    {
        var hit = Assert.Single(Kiln(Mlp("M", "Data = 2"), "lots of memory"), d => d.Id == "KILN5002");
        Assert.Contains("'lots of memory'", hit.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static JsonElement Plan(Assembly asm, string type)
    {
        var json = (string)asm.GetType(type)!.GetField("KilnPlanJson")!.GetValue(null)!;
        return JsonDocument.Parse(json).RootElement;
    }

    private static readonly Lazy<Assembly> Planned = new(() => GeneratorHarness.Build(
        Mlp("M0", "Data = 2, Batch = 24"),
        Mlp("M1", "Data = 4, MicroBatches = 2, Zero = ZeroStage.OptimizerState, Batch = 24"),
        Mlp("M2", "Data = 2, MicroBatches = 3, Zero = ZeroStage.Gradients, Batch = 24"),
        Gpt("G0", "Data = 2, MicroBatches = 2, Batch = 8, Sequence = 8"),
        Gpt("G2", "Data = 4, Zero = ZeroStage.Gradients, Batch = 8, Sequence = 8"),
        Gpt("GT", "Data = 2, Tensor = 2, Zero = ZeroStage.OptimizerState, Batch = 8, Sequence = 8", tensor: true),
        Gpt("GU", "Tensor = 2, MicroBatches = 2, Batch = 8, Sequence = 8", heads: 4, dim: 32, tensor: true),
        Gpt("GP", "Pipeline = 2, MicroBatches = 2, Batch = 8, Sequence = 8"),
        Gpt("GX", "Data = 2, Tensor = 2, Pipeline = 2, MicroBatches = 2, Zero = ZeroStage.Gradients, Batch = 8, Sequence = 8", tensor: true)));

    /// <summary>
    /// Runs one data-parallel step of <paramref name="type"/> on the plan's ranks and micro-batches with random data and
    /// returns rank 0's measured figures: parameter, gradient, optimizer-state, buffer and activation bytes, and bytes sent.
    /// </summary>
    private static Dictionary<string, long> Measure(Assembly asm, string type, JsonElement plan)
    {
        var mesh = plan.GetProperty("mesh");
        int dp = mesh.GetProperty("data").GetInt32(), tp = mesh.GetProperty("tensor").GetInt32(), pp = mesh.GetProperty("pipeline").GetInt32();
        int micro = plan.GetProperty("microBatches").GetInt32(), rows = plan.GetProperty("microBatchRows").GetInt32();
        var zero = (ZeroStage)plan.GetProperty("zero").GetInt32();
        bool gpt = type.Contains(".G", StringComparison.Ordinal);
        var measured = new Dictionary<string, long>[dp * tp * pp];
        MeshRank.Simulate(dp, tp, pp, mesh =>
        {
            // The stage program: the model's layers (2 by default) over the stages, at the tensor degree.
            var args = gpt ? new object?[] { null, null, null, null, 2 / pp, tp > 1 ? tp : null } : Array.Empty<object?>();
            var program = GeneratorHarness.CreateProgram(asm, type, args);
            program.InitParameters(7);
            mesh.Attach(program);
            var optimizer = new AdamW();
            var dpDriver = new DataParallel(program, optimizer, mesh.Data, zero);
            var rng = new Random(mesh.Data.Rank);
            Batch MicroBatch() => gpt
                ? new Batch(("idx", TensorData.Int(Enumerable.Range(0, rows * 8).Select(_ => rng.Next(128)).ToArray(), rows, 8)),
                            ("targets", TensorData.Int(Enumerable.Range(0, rows * 8).Select(_ => rng.Next(128)).ToArray(), rows, 8)))
                : new Batch(("x", TensorData.Float(Enumerable.Range(0, rows * 6).Select(_ => (float)rng.NextDouble()).ToArray(), rows, 6)),
                            ("y", TensorData.Float(Enumerable.Range(0, rows * 3).Select(_ => (float)rng.NextDouble()).ToArray(), rows, 3)));
            long tensorBefore = mesh.Tensor.BytesSent, pipeBefore = mesh.Pipeline.BytesSent;
            var step = dpDriver.Step(Enumerable.Range(0, micro).Select(_ => MicroBatch()).ToList(), new StepContext(1, 0, 0), 1e-3f);
            measured[mesh.World.Rank] = new Dictionary<string, long>
            {
                ["parameterBytes"] = program.Params.Length * 4L,
                ["gradientBytes"] = program.Grads.Length * 4L,
                ["optimizerStateBytes"] = optimizer.State.Values.Sum(a => (long)a.Length) * 4,
                ["bufferBytes"] = dpDriver.BufferBytes,
                ["activationBytes"] = program.ArenaBytes,
                ["data"] = step.BytesSent,
                ["tensor"] = mesh.Tensor.BytesSent - tensorBefore,
                ["pipeline"] = mesh.Pipeline.BytesSent - pipeBefore,
            };
        });
        // Every rank holds and sends the same (with two stages each stage sends one way), but for ZeRO's last shard, which
        // may be shorter: the plan gives the first (the largest).
        for (int r = 1; r < measured.Length; r++)
            foreach (var (k, v) in measured[0].Where(kv => kv.Key != "optimizerStateBytes"))
                Assert.True(measured[r][k] == v, $"{type}: rank {r} {k} = {measured[r][k]}, rank 0 {v}");
        return measured[0];
    }

    [Theory]
    [InlineData("Q.M0")]
    [InlineData("Q.M1")]
    [InlineData("Q.M2")]
    [InlineData("Q.G0")]
    [InlineData("Q.G2")]
    [InlineData("Q.GT")]
    [InlineData("Q.GU")]
    [InlineData("Q.GP")]
    [InlineData("Q.GX")]
    public void The_plan_reports_the_memory_and_traffic_simulated_ranks_measure(string type)
    {
        var plan = Plan(Planned.Value, type);
        _out.WriteLine(plan.ToString());
        var measured = Measure(Planned.Value, type, plan);
        var perRank = plan.GetProperty("perRank");
        long Axis(string axis) => plan.GetProperty("collectives").EnumerateArray().Where(c => c.GetProperty("axis").GetString() == axis).Sum(c => c.GetProperty("bytesPerRank").GetInt64());
        Assert.Equal(Axis("data") + Axis("tensor") + Axis("pipeline"), plan.GetProperty("communicationBytesPerRank").GetInt64());
        foreach (var (key, value) in measured)
        {
            long planned = key is "data" or "tensor" or "pipeline" ? Axis(key) : perRank.GetProperty(key).GetInt64();
            _out.WriteLine($"{key}: planned {planned}, measured {value}");
            // The stated error is zero: the report counts exactly what the runtime allocates and sends.
            Assert.True(planned == value, $"{type} {key}: the plan says {planned} bytes per rank, rank 0 measured {value}");
        }
        Assert.Equal(measured.Where(kv => kv.Key is not ("data" or "tensor" or "pipeline")).Sum(kv => kv.Value), perRank.GetProperty("totalBytes").GetInt64());
    }

    [Fact]
    public void The_plan_gives_each_parameter_its_partition_spec_in_JAX_words()
    {
        var partitions = Plan(Planned.Value, "Q.GX").GetProperty("partitions");
        foreach (var p in partitions.EnumerateObject()) _out.WriteLine($"{p.Name}: {p.Value.GetString()}");
        Assert.Equal("P('pipeline', 'tensor' (in 3 groups), None)", partitions.GetProperty("blocks.attention.qkv.weight").GetString());
        Assert.Equal("P('pipeline', 'tensor' (in 3 groups))", partitions.GetProperty("blocks.attention.qkv.bias").GetString());
        Assert.Equal("P('pipeline', None, 'tensor')", partitions.GetProperty("blocks.mlp.down.weight").GetString());
        Assert.Equal("P('pipeline', None)", partitions.GetProperty("blocks.mlp.down.bias").GetString());
        Assert.Equal("P('pipeline', None)", partitions.GetProperty("blocks.ln1.weight").GetString());
        Assert.Equal("P(None)", partitions.GetProperty("final.weight").GetString());
        // Without a mesh every dimension is whole.
        Assert.All(Plan(Planned.Value, "Q.M0").GetProperty("partitions").EnumerateObject(), p => Assert.DoesNotContain("'", p.Value.GetString()));
    }

    [Fact]
    public void Planned_flops_equal_the_matmul_and_attention_products_counted_by_hand()
    {
        // MLP 6 → 24 → 24 → 3 on 24 rows over 2 ranks, one micro-batch: forward 2·rows·Σ in·out; backward the weight
        // gradients (same again) and the input gradients of every layer but the first (its input is data).
        var m0 = Plan(Planned.Value, "Q.M0");
        long rows = 12, sum = 6 * 24 + 24 * 24 + 24 * 3;
        long mlp = 2 * rows * sum * 2 + 2 * rows * (24 * 24 + 24 * 3);
        Assert.Equal(mlp, m0.GetProperty("flops").GetProperty("perMicroBatch").GetInt64());
        Assert.Equal(mlp * 2, m0.GetProperty("flops").GetProperty("perStep").GetInt64());

        // GPT (dim 16, 2 heads, 2 layers, vocabulary 128) on 2 rows of 8 tokens: 6 FLOPs per matmul weight per token
        // (12·dim² per layer and the tied logits head) and causal attention: QKᵀ and PV forward, five products backward, half masked.
        var g0 = Plan(Planned.Value, "Q.G0");
        long tokens = 2 * 8, dim = 16, layers = 2, headDim = 8, heads = 2, t = 8;
        long matmul = 6 * tokens * (layers * 12 * dim * dim + dim * 128);
        long attention = layers * (2 * 2 + 2 * 5) * 2 * heads * t * t * headDim / 2;
        long planned = g0.GetProperty("flops").GetProperty("perMicroBatch").GetInt64();
        _out.WriteLine($"GPT FLOPs per micro-batch: planned {planned}, by hand {matmul + attention} (matmul {matmul}, attention {attention})");
        Assert.Equal(matmul + attention, planned);
    }

    [Fact]
    public void A_model_without_Parallel_gets_a_one_device_plan_and_the_program_carries_it()
    {
        var asm = LibraryModuleTests.Models;
        var program = GeneratorHarness.CreateProgram(asm, "L.GptModel");
        var plan = JsonDocument.Parse(program.PlanJson).RootElement;
        Assert.Equal(1, plan.GetProperty("mesh").GetProperty("data").GetInt32());
        Assert.Equal(0, plan.GetProperty("collectives").GetArrayLength());
        Assert.Equal(program.Params.Length, plan.GetProperty("parameters").GetInt64());
        // No batch and no sequence: activations and FLOPs are formulas of the unbound sequence length.
        Assert.Equal(JsonValueKind.String, plan.GetProperty("perRank").GetProperty("activationBytes").ValueKind);
        Assert.Contains("T", plan.GetProperty("flops").GetProperty("perMicroBatch").GetString());
    }
}
