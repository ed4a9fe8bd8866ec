using System;
using Kiln.Runtime;

namespace Kiln;

/// <summary>
/// Next-token prediction examples cut from a token sequence (an array, or a <see cref="TokenFile"/> mapped into
/// memory): example <c>i</c> is the window of <see cref="Context"/> tokens starting at <c>i·stride</c> as the input, and
/// the same window shifted by one token as the target — the layout a GPT's loss takes
/// (<c>[Shape("B", "T")] Tensor&lt;int&gt;</c> twice). The tokens are not copied; a batch is cut from them when it is
/// asked for. The trainer draws windows in an order keyed by the run's seed and step, so a resumed run reads the
/// same batches.
/// </summary>
public sealed class TokenWindows : Dataset
{
    private readonly ITokenSource _tokens;
    private readonly long _start;
    private readonly int _stride;
    private readonly string _inputName, _targetName;

    /// <summary>Windows over tokens in memory.</summary>
    /// <param name="tokens">The token sequence (for example a text's bytes, or a tokenizer's ids).</param>
    /// <param name="context">Tokens per window (the model's sequence length T).</param>
    /// <param name="stride">Tokens between the starts of consecutive windows: 1 (every position, the default) for
    /// training, <paramref name="context"/> for non-overlapping windows when evaluating.</param>
    /// <param name="inputName">The loss parameter the windows feed.</param>
    /// <param name="targetName">The loss parameter the shifted windows feed.</param>
    /// <exception cref="ArgumentException">Fewer than <c>context + 1</c> tokens, or an empty name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A context or stride below 1.</exception>
    public TokenWindows(ReadOnlyMemory<int> tokens, int context, int stride = 1, string inputName = "idx", string targetName = "targets")
        : this(new TokenArray(tokens), context, stride, 0, tokens.Length, inputName, targetName) { }

    /// <summary>Windows over <paramref name="length"/> tokens of <paramref name="tokens"/> from <paramref name="start"/> (all of them by default).</summary>
    /// <exception cref="ArgumentException">The range is outside the tokens, holds fewer than <c>context + 1</c> tokens, makes more windows than an index holds, or a name is empty.</exception>
    public TokenWindows(ITokenSource tokens, int context, int stride = 1, long start = 0, long length = -1, string inputName = "idx", string targetName = "targets")
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (context < 1) throw new ArgumentOutOfRangeException(nameof(context), context, "The context (tokens per window) must be at least 1.");
        if (stride < 1) throw new ArgumentOutOfRangeException(nameof(stride), stride, "The stride must be at least 1 (1: a window at every position; context: windows that do not overlap).");
        if (length < 0) length = tokens.Length - start;
        if (start < 0 || start + length > tokens.Length)
            throw new ArgumentException($"Tokens {start}..{start + length} are outside the {tokens.Length} tokens.", nameof(start));
        if (length < (long)context + 1)
            throw new ArgumentException($"{length} tokens cannot make one window of {context} tokens plus its next-token target; use more data or a shorter context.", nameof(tokens));
        if (string.IsNullOrWhiteSpace(inputName) || string.IsNullOrWhiteSpace(targetName) || inputName == targetName)
            throw new ArgumentException($"The input and target names must be two different names of the loss's parameters (got '{inputName}' and '{targetName}').");
        long count = (length - 1 - context) / stride + 1;
        if (count > int.MaxValue)
            throw new ArgumentException($"{length} tokens make {count} windows at stride {stride}, more than a dataset indexes ({int.MaxValue}); use a stride of at least {(length - 1 - context) / int.MaxValue + 1}.", nameof(stride));
        _tokens = tokens;
        _start = start;
        Context = context;
        _stride = stride;
        _inputName = inputName;
        _targetName = targetName;
        Count = (int)count;
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
        var input = new int[(long)indices.Length * Context];
        var target = new int[input.Length];
        var window = new int[Context + 1];
        for (int j = 0; j < indices.Length; j++)
        {
            if ((uint)indices[j] >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), indices[j], $"Window {indices[j]} (position {j} of the batch) is outside the {Count} windows.");
            _tokens.CopyTo(_start + (long)indices[j] * _stride, window);
            window.AsSpan(0, Context).CopyTo(input.AsSpan(j * Context, Context));
            window.AsSpan(1, Context).CopyTo(target.AsSpan(j * Context, Context));
        }
        return new Batch((_inputName, TensorData.Int(input, indices.Length, Context)), (_targetName, TensorData.Int(target, indices.Length, Context)));
    }
}
