using System;
using System.Collections.Generic;
using Kiln.Runtime;

namespace Kiln;

/// <summary>How the next token is chosen from a model's logits.</summary>
public sealed record SamplingOptions
{
    /// <summary>Softmax temperature: 0 picks the most likely token (greedy); 1 samples the model's distribution; higher flattens it.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the <c>TopK</c> most likely tokens (0: all).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches <c>TopP</c> (nucleus sampling; 1: all).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Keys the draws: the same seed, prompt and model give the same text.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Checks the settings, naming a bad one.</summary>
    public void Validate()
    {
        if (!(float.IsFinite(Temperature) && Temperature >= 0)) throw new ArgumentException($"SamplingOptions.Temperature must be 0 (greedy) or positive (got {Temperature}).");
        if (TopK < 0) throw new ArgumentException($"SamplingOptions.TopK must be 0 (off) or positive (got {TopK}).");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"SamplingOptions.TopP must be in (0, 1] (got {TopP}).");
    }
}

/// <summary>
/// Picks tokens from logits: greedy, or sampled with temperature, top-k and top-p (nucleus), each draw keyed by the
/// seed and the token's position (Philox), so generation is reproducible and independent of how it is batched.
/// Tokens whose logit is −∞ (a padded vocabulary) are never picked.
/// </summary>
public sealed class TokenSampler
{
    private readonly SamplingOptions _options;

    /// <summary>A sampler with <paramref name="options"/>.</summary>
    public TokenSampler(SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    /// <summary>The token for position <paramref name="position"/> given the <paramref name="logits"/> of the vocabulary.</summary>
    /// <exception cref="ArgumentException">No token has a finite logit.</exception>
    public int Next(ReadOnlySpan<float> logits, long position)
    {
        int best = -1;
        for (int i = 0; i < logits.Length; i++)
            if (!float.IsNaN(logits[i]) && logits[i] > float.NegativeInfinity && (best < 0 || logits[i] > logits[best])) best = i;
        if (best < 0) throw new ArgumentException("No token has a finite logit; the model's output is not usable (NaN or all −∞).", nameof(logits));
        if (_options.Temperature == 0 || _options.TopK == 1) return best;

        // Candidates by descending logit; probabilities from the max-subtracted softmax at the temperature.
        var order = new List<int>(logits.Length);
        for (int i = 0; i < logits.Length; i++)
            if (logits[i] > float.NegativeInfinity) order.Add(i);
        var values = logits.ToArray();
        order.Sort((a, b) => values[b].CompareTo(values[a]) is var c && c != 0 ? c : a.CompareTo(b));
        if (_options.TopK > 0 && order.Count > _options.TopK) order.RemoveRange(_options.TopK, order.Count - _options.TopK);
        double max = values[order[0]], total = 0;
        var weights = new double[order.Count];
        for (int j = 0; j < order.Count; j++) total += weights[j] = Math.Exp((values[order[j]] - max) / _options.Temperature);
        int keep = order.Count;
        if (_options.TopP < 1)
        {
            double cumulative = 0;
            for (int j = 0; j < order.Count; j++)
            {
                cumulative += weights[j] / total;
                if (cumulative >= _options.TopP) { keep = j + 1; break; }
            }
            total = 0;
            for (int j = 0; j < keep; j++) total += weights[j];
        }
        var block = Philox.Block(_options.Seed, RandomStreams.Sampling, (ulong)position);
        double u = ((((ulong)block.X0 << 32) | block.X1) >> 11) * (1.0 / (1UL << 53)) * total;
        for (int j = 0; j < keep; j++)
        {
            u -= weights[j];
            if (u < 0) return order[j];
        }
        return order[keep - 1];
    }
}

/// <summary>Text generation with a model's <c>Forward</c> program (its logits over the vocabulary at every position).</summary>
public static class Generation
{
    /// <summary>
    /// Extends <paramref name="prompt"/> by up to <paramref name="maxNewTokens"/> tokens: each step runs the model on the last
    /// <paramref name="context"/> tokens and samples the next one from the logits at the last position. Stops early at
    /// <paramref name="stopToken"/> (which is kept). Returns the new tokens only.
    /// </summary>
    /// <param name="program">A program whose Forward takes token ids [1, T] (input <paramref name="inputName"/>) and returns logits [1, T, vocab].</param>
    /// <param name="prompt">At least one token.</param>
    /// <param name="maxNewTokens">How many tokens to add at most.</param>
    /// <param name="context">The longest sequence the model takes (its position table).</param>
    /// <param name="sampling">How to pick tokens.</param>
    /// <param name="stopToken">An end-of-text token, or null.</param>
    /// <param name="inputName">The Forward input that takes the token ids.</param>
    /// <param name="useCache">Use the model's decode program (a KV cache: each new token runs one position) when it has
    /// one (<see cref="ModelProgram.SupportsDecode"/>); the tokens are the same as without it.</param>
    public static int[] Generate(ModelProgram program, IReadOnlyList<int> prompt, int maxNewTokens, int context, SamplingOptions sampling, int? stopToken = null, string inputName = "idx",
        bool useCache = true)
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0) throw new ArgumentException("The prompt needs at least one token (for example the end-of-text token, to start a new document).", nameof(prompt));
        if (context < 1) throw new ArgumentOutOfRangeException(nameof(context), context, "The context must be at least 1.");
        var sampler = new TokenSampler(sampling);
        var tokens = new List<int>(prompt);
        var generated = new List<int>();
        bool cached = useCache && program.SupportsDecode;
        bool verified = false;
        TensorData logits = default!;
        int rows = 0;
        // The model (or the decode program) on the last `context` tokens: their logits and how many rows they have.
        (TensorData Logits, int Rows) Window(Func<Batch, TensorData> run)
        {
            int t = Math.Min(context, tokens.Count);
            return (run(new Batch((inputName, TensorData.Int(tokens.GetRange(tokens.Count - t, t).ToArray(), 1, t)))), t);
        }
        if (cached)
        {
            program.ResetDecode(context);
            (logits, rows) = Window(program.Decode); // the prefill
        }
        for (int step = 0; step < maxNewTokens; step++)
        {
            if (!cached) (logits, rows) = Window(program.Forward);
            if (logits.Rank != 3 || logits.Shape[0] != 1 || logits.Shape[1] != rows || logits.Floats is null)
                throw new InvalidOperationException($"{program.ModelName}'s {(cached ? "decode program" : "Forward")} returned {logits}; generation needs float logits [1, {rows}, vocab].");
            int vocab = logits.Shape[2];
            int next = sampler.Next(logits.Floats.AsSpan((rows - 1) * vocab, vocab), tokens.Count);
            tokens.Add(next);
            generated.Add(next);
            if (next == stopToken) break;
            if (step + 1 == maxNewTokens || !cached) continue;
            if (program.DecodePosition < context)
            {
                logits = program.Decode(new Batch((inputName, TensorData.Int(new[] { next }, 1, 1))));
                rows = 1;
                if (!verified)
                {
                    Verify(program, logits, Window(program.Forward).Logits, vocab);
                    verified = true;
                }
            }
            else
            {
                // The window is full: positions restart at the window's start, as without the cache.
                program.ResetDecode(context);
                (logits, rows) = Window(program.Decode);
            }
        }
        return generated.ToArray();
    }

    /// <summary>
    /// The first cached step must give the uncached forward's logits: a model that mixes positions outside the fused
    /// attention (attention written as MatMul/Softmax, a sequence reduction) would not, and is refused with the reason.
    /// </summary>
    private static void Verify(ModelProgram program, TensorData step, TensorData full, int vocab)
    {
        var a = step.Floats!.AsSpan(0, vocab);
        var b = full.Floats!.AsSpan(full.Floats!.Length - vocab, vocab);
        double scale = 0, worst = 0;
        for (int i = 0; i < vocab; i++) if (float.IsFinite(b[i])) scale = Math.Max(scale, Math.Abs(b[i]));
        for (int i = 0; i < vocab; i++)
        {
            if (float.IsNegativeInfinity(a[i]) && float.IsNegativeInfinity(b[i])) continue;
            worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        }
        if (!(worst <= 1e-3 * (1 + scale)))
            throw new InvalidOperationException($"{program.ModelName}: the KV-cache step's logits differ from the full forward's by {worst:G3} (scale {scale:G3}); " +
                "the model mixes positions outside Ops.Attention (for example attention written as MatMul/Softmax), so its decode program is not valid. Generate with useCache: false.");
    }
}
