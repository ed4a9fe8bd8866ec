using System;
using Kiln.Runtime;

namespace Kiln;

/// <summary>
/// Next-token prediction examples cut from one token sequence: example <c>i</c> is the window of
/// <see cref="Context"/> tokens starting at <c>i·stride</c> as the input, and the same window shifted by one token
/// as the target — the layout a GPT's loss takes (<c>[Shape("B", "T")] Tensor&lt;int&gt;</c> twice). The tokens are
/// not copied; a batch is cut from them when it is asked for.
/// </summary>
public sealed class TokenWindows : Dataset
{
    private readonly ReadOnlyMemory<int> _tokens;
    private readonly int _stride;
    private readonly string _inputName, _targetName;

    /// <summary>Windows over <paramref name="tokens"/>.</summary>
    /// <param name="tokens">The token sequence (for example a text's bytes, or a tokenizer's ids).</param>
    /// <param name="context">Tokens per window (the model's sequence length T).</param>
    /// <param name="stride">Tokens between the starts of consecutive windows: 1 (every position, the default) for
    /// training, <paramref name="context"/> for non-overlapping windows when evaluating.</param>
    /// <param name="inputName">The loss parameter the windows feed.</param>
    /// <param name="targetName">The loss parameter the shifted windows feed.</param>
    /// <exception cref="ArgumentException">Fewer than <c>context + 1</c> tokens, or an empty name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A context or stride below 1.</exception>
    public TokenWindows(ReadOnlyMemory<int> tokens, int context, int stride = 1, string inputName = "idx", string targetName = "targets")
    {
        if (context < 1) throw new ArgumentOutOfRangeException(nameof(context), context, "The context (tokens per window) must be at least 1.");
        if (stride < 1) throw new ArgumentOutOfRangeException(nameof(stride), stride, "The stride must be at least 1 (1: a window at every position; context: windows that do not overlap).");
        if (tokens.Length < (long)context + 1)
            throw new ArgumentException($"{tokens.Length} tokens cannot make one window of {context} tokens plus its next-token target; use more data or a shorter context.", nameof(tokens));
        if (string.IsNullOrWhiteSpace(inputName) || string.IsNullOrWhiteSpace(targetName) || inputName == targetName)
            throw new ArgumentException($"The input and target names must be two different names of the loss's parameters (got '{inputName}' and '{targetName}').");
        _tokens = tokens;
        Context = context;
        _stride = stride;
        _inputName = inputName;
        _targetName = targetName;
        Count = (tokens.Length - 1 - context) / stride + 1;
    }

    /// <summary>Tokens per window.</summary>
    public int Context { get; }

    /// <inheritdoc/>
    public override int Count { get; }

    /// <inheritdoc/>
    public override long TokensPerExample => Context;

    /// <inheritdoc/>
    public override Batch GetBatch(ReadOnlySpan<int> indices)
    {
        var tokens = _tokens.Span;
        var input = new int[(long)indices.Length * Context];
        var target = new int[input.Length];
        for (int j = 0; j < indices.Length; j++)
        {
            if ((uint)indices[j] >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), indices[j], $"Window {indices[j]} (position {j} of the batch) is outside the {Count} windows.");
            int start = indices[j] * _stride;
            tokens.Slice(start, Context).CopyTo(input.AsSpan(j * Context, Context));
            tokens.Slice(start + 1, Context).CopyTo(target.AsSpan(j * Context, Context));
        }
        return new Batch((_inputName, TensorData.Int(input, indices.Length, Context)), (_targetName, TensorData.Int(target, indices.Length, Context)));
    }
}
