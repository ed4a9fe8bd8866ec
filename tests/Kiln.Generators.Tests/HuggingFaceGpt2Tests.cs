using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using Kiln.Runtime;
using Xunit;

namespace Kiln.Generators.Tests;

/// <summary>
/// Loading a Hugging Face GPT-2 safetensors file into a GPT built from Kiln.Nn, and exporting it back: the test writes a
/// file in the exact layout of the hub's <c>gpt2</c> checkpoint (names, Conv1D weights stored [in, out], 50257-style
/// unpadded vocabulary, the attention-mask buffers), loads it, compares the logits with an independent float64 GPT-2
/// forward computed from the file's tensors, and checks the export reproduces every tensor.
/// </summary>
public sealed class HuggingFaceGpt2Tests : IDisposable
{
    private const int Vocab = 100, Context = 16, Dim = 32, Heads = 2, Layers = 2;
    /// <summary>The library's GPT (L.GptModel: fields tokens, positions, blocks, final) at this test's sizes.</summary>
    private static ModelProgram NewGpt2() => GeneratorHarness.CreateProgram(LibraryModuleTests.Models, "L.GptModel", Vocab, Context, Dim, Heads, Layers);
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-hf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A GPT-2 checkpoint's tensors (name → shape, values), random, in the hub's layout.</summary>
    private static Dictionary<string, (long[] Shape, float[] Values)> Checkpoint(int seed)
    {
        var rng = new Random(seed);
        var t = new Dictionary<string, (long[], float[])>(StringComparer.Ordinal);
        void Add(string name, float center, float spread, params long[] shape)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            t[name] = (shape, Enumerable.Range(0, (int)n).Select(_ => center + spread * (float)(rng.NextDouble() * 2 - 1)).ToArray());
        }
        Add("wte.weight", 0, 0.5f, Vocab, Dim);
        Add("wpe.weight", 0, 0.2f, Context, Dim);
        for (int i = 0; i < Layers; i++)
        {
            Add($"h.{i}.ln_1.weight", 1, 0.2f, Dim); Add($"h.{i}.ln_1.bias", 0, 0.1f, Dim);
            Add($"h.{i}.attn.c_attn.weight", 0, 0.3f, Dim, 3 * Dim); Add($"h.{i}.attn.c_attn.bias", 0, 0.1f, 3 * Dim);
            Add($"h.{i}.attn.c_proj.weight", 0, 0.3f, Dim, Dim); Add($"h.{i}.attn.c_proj.bias", 0, 0.1f, Dim);
            Add($"h.{i}.ln_2.weight", 1, 0.2f, Dim); Add($"h.{i}.ln_2.bias", 0, 0.1f, Dim);
            Add($"h.{i}.mlp.c_fc.weight", 0, 0.3f, Dim, 4 * Dim); Add($"h.{i}.mlp.c_fc.bias", 0, 0.1f, 4 * Dim);
            Add($"h.{i}.mlp.c_proj.weight", 0, 0.2f, 4 * Dim, Dim); Add($"h.{i}.mlp.c_proj.bias", 0, 0.1f, Dim);
        }
        Add("ln_f.weight", 1, 0.2f, Dim); Add("ln_f.bias", 0, 0.1f, Dim);
        return t;
    }

    private string Write(Dictionary<string, (long[] Shape, float[] Values)> tensors, string name, bool withMaskBuffers = true)
    {
        var w = new SafeTensorsWriter();
        foreach (var (k, (shape, values)) in tensors) w.Add(k, values, shape);
        if (withMaskBuffers)
            for (int i = 0; i < Layers; i++) w.Add($"h.{i}.attn.bias", new float[Context * Context], 1, 1, Context, Context);
        w.Metadata["format"] = "pt";
        var path = Path.Combine(_dir, name);
        w.Save(path);
        return path;
    }

    /// <summary>GPT-2's forward in float64, written from the model's definition over the checkpoint's tensors: logits [T, Vocab].</summary>
    private static double[,] ReferenceLogits(Dictionary<string, (long[] Shape, float[] Values)> w, int[] tokens)
    {
        int T = tokens.Length, C = Dim, H = Heads, d = C / H;
        double[] W(string name) => w[name].Values.Select(v => (double)v).ToArray();
        var x = new double[T, C];
        var wte = W("wte.weight"); var wpe = W("wpe.weight");
        for (int t = 0; t < T; t++) for (int c = 0; c < C; c++) x[t, c] = wte[tokens[t] * C + c] + wpe[t * C + c];
        double[,] Norm(double[,] a, string prefix)
        {
            var g = W(prefix + ".weight"); var b = W(prefix + ".bias"); var r = new double[T, C];
            for (int t = 0; t < T; t++)
            {
                double mean = 0, var = 0;
                for (int c = 0; c < C; c++) mean += a[t, c] / C;
                for (int c = 0; c < C; c++) var += (a[t, c] - mean) * (a[t, c] - mean) / C;
                for (int c = 0; c < C; c++) r[t, c] = (a[t, c] - mean) / Math.Sqrt(var + 1e-5) * g[c] + b[c];
            }
            return r;
        }
        double[,] Conv1D(double[,] a, string prefix, int nin, int nout)
        {
            var wt = W(prefix + ".weight"); var b = W(prefix + ".bias"); var r = new double[T, nout];
            for (int t = 0; t < T; t++) for (int o = 0; o < nout; o++) { double s = b[o]; for (int i = 0; i < nin; i++) s += a[t, i] * wt[i * nout + o]; r[t, o] = s; }
            return r;
        }
        for (int l = 0; l < Layers; l++)
        {
            var qkv = Conv1D(Norm(x, $"h.{l}.ln_1"), $"h.{l}.attn.c_attn", C, 3 * C);
            var att = new double[T, C];
            for (int h = 0; h < H; h++)
                for (int i = 0; i < T; i++)
                {
                    var s = new double[i + 1];
                    for (int j = 0; j <= i; j++) { double dot = 0; for (int c = 0; c < d; c++) dot += qkv[i, h * d + c] * qkv[j, C + h * d + c]; s[j] = dot / Math.Sqrt(d); }
                    double max = s.Max(), sum = s.Sum(v => Math.Exp(v - max));
                    for (int j = 0; j <= i; j++) for (int c = 0; c < d; c++) att[i, h * d + c] += Math.Exp(s[j] - max) / sum * qkv[j, 2 * C + h * d + c];
                }
            var proj = Conv1D(att, $"h.{l}.attn.c_proj", C, C);
            for (int t = 0; t < T; t++) for (int c = 0; c < C; c++) x[t, c] += proj[t, c];
            var fc = Conv1D(Norm(x, $"h.{l}.ln_2"), $"h.{l}.mlp.c_fc", C, 4 * C);
            for (int t = 0; t < T; t++) for (int c = 0; c < 4 * C; c++) { double v = fc[t, c]; fc[t, c] = 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))); }
            var down = Conv1D(fc, $"h.{l}.mlp.c_proj", 4 * C, C);
            for (int t = 0; t < T; t++) for (int c = 0; c < C; c++) x[t, c] += down[t, c];
        }
        var f = Norm(x, "ln_f");
        var logits = new double[T, Vocab];
        for (int t = 0; t < T; t++) for (int v = 0; v < Vocab; v++) { double s = 0; for (int c = 0; c < C; c++) s += f[t, c] * wte[v * C + c]; logits[t, v] = s; }
        return logits;
    }

    [Fact]
    public void A_gpt2_checkpoint_loads_by_name_mapping_and_gives_the_reference_logits()
    {
        var tensors = Checkpoint(11);
        var path = Write(tensors, "model.safetensors");
        var program = NewGpt2();
        program.InitParameters(5);
        program.LoadParameters(path, HuggingFaceGpt2.Layout(vocab: Vocab));

        var tokens = new[] { 3, 97, 0, 41, 41, 12, 99, 7, 64 };
        var logits = program.Forward(new Batch(("idx", TensorData.Int(tokens, 1, tokens.Length)))).Floats!;
        var expected = ReferenceLogits(tensors, tokens);
        int padded = 128;
        Assert.Equal(tokens.Length * padded, logits.Length);
        double worst = 0;
        for (int t = 0; t < tokens.Length; t++)
        {
            for (int v = 0; v < Vocab; v++)
            {
                double err = Math.Abs(logits[t * padded + v] - expected[t, v]) / (1 + Math.Abs(expected[t, v]));
                worst = Math.Max(worst, err);
            }
            for (int v = Vocab; v < padded; v++) Assert.True(float.IsNegativeInfinity(logits[t * padded + v]), $"padded logit [{t}, {v}] is {logits[t * padded + v]}, not −∞");
        }
        Assert.True(worst < 1e-4, $"largest relative logit error against the float64 GPT-2 forward: {worst:G3}");

        // The padded rows of the embedding were zeroed, not left at their initial values.
        var wte = program.Parameters.Single(p => p.Name == "tokens.weight");
        Assert.All(program.Params.AsSpan((int)(wte.Offset + Vocab * Dim), (padded - Vocab) * Dim).ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Export_in_the_gpt2_layout_reproduces_every_tensor_of_the_checkpoint()
    {
        var tensors = Checkpoint(12);
        var path = Write(tensors, "in.safetensors");
        var program = NewGpt2();
        program.LoadParameters(path, HuggingFaceGpt2.Layout(vocab: Vocab));
        var exported = Path.Combine(_dir, "out.safetensors");
        program.SaveParameters(exported, new Dictionary<string, string> { ["format"] = "pt" }, HuggingFaceGpt2.Layout(vocab: Vocab));

        using var file = SafeTensorsFile.Open(exported);
        Assert.Equal(tensors.Keys.OrderBy(k => k, StringComparer.Ordinal), file.Tensors.Select(t => t.Name).OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (name, (shape, values)) in tensors)
        {
            Assert.Equal(shape, file[name].Shape);
            Assert.Equal(SafeTensorType.F32, file[name].Type);
            Assert.True(values.AsSpan().SequenceEqual(file.ReadFloats(name)), $"{name} differs after export");
        }

        // And the export loads back into a fresh program with the same logits.
        var again = NewGpt2();
        again.LoadParameters(exported, HuggingFaceGpt2.Layout(vocab: Vocab));
        var batch = new Batch(("idx", TensorData.Int(new[] { 5, 6, 7 }, 1, 3)));
        Assert.Equal(program.Forward(batch).Floats!, again.Forward(batch).Floats!);
    }

    [Fact]
    public void A_checkpoint_of_another_shape_is_refused_with_every_mismatch_named()
    {
        var tensors = Checkpoint(13);
        tensors["h.1.mlp.c_fc.weight"] = (new long[] { 4 * Dim, Dim }, tensors["h.1.mlp.c_fc.weight"].Values); // not transposed
        tensors.Remove("ln_f.bias");
        var path = Write(tensors, "bad.safetensors", withMaskBuffers: false);
        var program = NewGpt2();
        var e = Assert.Throws<InvalidOperationException>(() => program.LoadParameters(path, HuggingFaceGpt2.Layout(vocab: Vocab)));
        Assert.Contains("'h.1.mlp.c_fc.weight' is [128, 32] but blocks.mlp.up.weight needs [32, 128]", e.Message, StringComparison.Ordinal);
        Assert.Contains("'ln_f.bias' (for final.bias) is missing", e.Message, StringComparison.Ordinal);

        // A model whose fields the layout does not know is named, with the fix.
        var other = Assert.Throws<InvalidOperationException>(() => program.LoadParameters(path, HuggingFaceGpt2.Layout(vocab: Vocab, blocks: "layers")));
        Assert.Contains("pass the field names your model uses", other.Message, StringComparison.Ordinal);
    }
}
