using System;
using System.Collections.Generic;

namespace Kiln.Runtime;

/// <summary>
/// The parameter layout of a Hugging Face GPT-2 checkpoint (<c>model.safetensors</c> of the <c>gpt2</c> family) for a model
/// built from Kiln.Nn: a <c>TiedEmbedding</c>, <c>LearnedPositions</c>, <c>GptBlock</c>s repeated with
/// <c>Module.Repeat</c> (one loop region, parameters stacked [layers, …]) and a final <c>LayerNorm</c>. Pass it to
/// <see cref="ModelProgram.LoadParameters"/> to start from GPT-2's weights, or to <see cref="ModelProgram.SaveParameters"/>
/// to export in the layout Hugging Face's loaders read. Name mapping: <c>wte</c>, <c>wpe</c>, <c>h.{i}.ln_1</c>,
/// <c>h.{i}.attn.c_attn</c>, <c>h.{i}.attn.c_proj</c>, <c>h.{i}.ln_2</c>, <c>h.{i}.mlp.c_fc</c>, <c>h.{i}.mlp.c_proj</c>,
/// <c>ln_f</c>. GPT-2's Conv1D weights are stored [in, out], the transpose of Kiln's Linear [out, in]; its vocabulary of
/// 50,257 rows is padded to 50,304 in Kiln (the padded rows load as zeros and are not exported). Tensors of the file that
/// no parameter uses (the attention-mask buffers <c>h.{i}.attn.bias</c> of older files) are ignored.
/// </summary>
public static class HuggingFaceGpt2
{
    /// <summary>The layout for a model whose fields are named <paramref name="tokens"/>, <paramref name="positions"/>,
    /// <paramref name="blocks"/> and <paramref name="final"/> (the names in Kiln's examples by default).</summary>
    /// <param name="vocab">The file's vocabulary (50,257 for GPT-2).</param>
    /// <param name="prefix">Prefix of every name in the file (<c>transformer.</c> in some exports; empty in the hub's <c>gpt2</c>).</param>
    /// <param name="tokens">The model's TiedEmbedding field.</param>
    /// <param name="positions">The model's LearnedPositions field.</param>
    /// <param name="blocks">The model's GptBlock[] field (built with Module.Repeat).</param>
    /// <param name="final">The model's final LayerNorm field.</param>
    public static Func<ParameterInfo, ParameterSource> Layout(int vocab = 50257, string prefix = "", string tokens = "tokens", string positions = "positions",
        string blocks = "blocks", string final = "final")
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocab);
        ArgumentNullException.ThrowIfNull(prefix);
        var block = new Dictionary<string, (string Name, bool Transposed)>(StringComparer.Ordinal)
        {
            ["ln1.weight"] = ("ln_1.weight", false), ["ln1.bias"] = ("ln_1.bias", false),
            ["attention.qkv.weight"] = ("attn.c_attn.weight", true), ["attention.qkv.bias"] = ("attn.c_attn.bias", false),
            ["attention.proj.weight"] = ("attn.c_proj.weight", true), ["attention.proj.bias"] = ("attn.c_proj.bias", false),
            ["ln2.weight"] = ("ln_2.weight", false), ["ln2.bias"] = ("ln_2.bias", false),
            ["mlp.up.weight"] = ("mlp.c_fc.weight", true), ["mlp.up.bias"] = ("mlp.c_fc.bias", false),
            ["mlp.down.weight"] = ("mlp.c_proj.weight", true), ["mlp.down.bias"] = ("mlp.c_proj.bias", false),
        };
        return p =>
        {
            if (p.Name == tokens + ".weight") return new ParameterSource(prefix + "wte.weight", Rows: vocab);
            if (p.Name == positions + ".table") return new ParameterSource(prefix + "wpe.weight");
            if (p.Name == final + ".weight") return new ParameterSource(prefix + "ln_f.weight");
            if (p.Name == final + ".bias") return new ParameterSource(prefix + "ln_f.bias");
            if (p.Name.StartsWith(blocks + ".", StringComparison.Ordinal) && block.TryGetValue(p.Name[(blocks.Length + 1)..], out var b))
                return new ParameterSource(prefix + "h.{layer}." + b.Name, b.Transposed, Layers: p.Shape[0]);
            throw new InvalidOperationException($"{p.Name} has no place in a GPT-2 checkpoint: the layout expects {tokens} (TiedEmbedding), {positions} (LearnedPositions), " +
                $"{blocks} (GptBlock[] from Module.Repeat) and {final} (LayerNorm); pass the field names your model uses to HuggingFaceGpt2.Layout.");
        };
    }
}
