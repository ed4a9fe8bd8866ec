using System;
using System.Collections.Generic;
using System.ComponentModel;

namespace Kiln.Runtime;

/// <summary>
/// The keys and values one cached attention site has seen, for one layer: [batch, heads, capacity, head size] each, of
/// which the first <see cref="ModelProgram.DecodePosition"/> positions are filled.
/// </summary>
public sealed class AttentionCache
{
    internal AttentionCache(long batch, long heads, long capacity, long headSize)
    {
        Batch = batch; Heads = heads; Capacity = capacity; HeadSize = headSize;
        long n = checked(batch * heads * capacity * headSize);
        K = new float[n]; V = new float[n];
    }

    /// <summary>Cached keys, [batch, heads, capacity, head size].</summary>
    public float[] K { get; }
    /// <summary>Cached values, [batch, heads, capacity, head size].</summary>
    public float[] V { get; }
    /// <summary>Batch rows.</summary>
    public long Batch { get; }
    /// <summary>Heads.</summary>
    public long Heads { get; }
    /// <summary>Positions the cache can hold.</summary>
    public long Capacity { get; }
    /// <summary>Head size.</summary>
    public long HeadSize { get; }
}

public abstract partial class ModelProgram
{
    private readonly Dictionary<(int Site, long Layer), AttentionCache> _caches = new();

    /// <summary>
    /// Whether the model has a decode program: its Forward takes token ids [B, T], its attention is the fused causal
    /// <c>Ops.Attention</c>, and the generator emitted a program that runs only new positions against a KV cache (CPU).
    /// </summary>
    public virtual bool SupportsDecode => false;

    /// <summary>Positions already in the KV cache (the next token's absolute position).</summary>
    public int DecodePosition { get; private set; }

    /// <summary>Positions the KV cache holds (set by <see cref="ResetDecode"/>).</summary>
    public int DecodeCapacity { get; private set; }

    /// <summary>Empties the KV cache and sizes it for <paramref name="capacity"/> positions (the model's context).</summary>
    public void ResetDecode(int capacity)
    {
        if (!SupportsDecode) throw new NotSupportedException($"{ModelName} has no decode program (KV cache): its Forward must take token ids [B, T] and its attention must be the fused causal Ops.Attention; it runs on the CPU program.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        if (capacity != DecodeCapacity) _caches.Clear();
        DecodeCapacity = capacity;
        DecodePosition = 0;
    }

    /// <summary>
    /// Runs the decode program on the next token ids <c>[B, T]</c> (the prompt first — the prefill — then one token at a
    /// time): each attention attends to the cached positions and the new ones, the new keys and values are appended,
    /// and the logits of the new positions [B, T, vocab] are returned.
    /// </summary>
    public TensorData Decode(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (DecodeCapacity == 0) throw new InvalidOperationException("Call ResetDecode(capacity) before Decode.");
        int t = DecodeTokens(batch);
        if (DecodePosition + t > DecodeCapacity)
            throw new InvalidOperationException($"The KV cache holds {DecodeCapacity} positions; {DecodePosition} are used and {t} more do not fit. Call ResetDecode and prefill a shorter window.");
        var logits = RunDecode(batch);
        DecodePosition += t;
        return logits;
    }

    /// <summary>The number of new positions in a decode batch (the second dimension of its token ids).</summary>
    private int DecodeTokens(Batch batch)
    {
        foreach (var input in ForwardInputs)
            if (input.Type == ElementType.Int32 && input.Dims.Length == 2) return batch[input.Name].Shape[1];
        throw new InvalidOperationException($"{ModelName}'s Forward takes no token ids [B, T].");
    }

    /// <summary>The generated decode program (call <see cref="Decode"/>, which keeps the position).</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public virtual TensorData RunDecode(Batch batch) =>
        throw new NotSupportedException($"{ModelName} has no decode program on {Device}.");

    /// <summary>The cache of attention site <paramref name="site"/> at <paramref name="layer"/> (generated code calls this).</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    protected AttentionCache DecodeCacheFor(int site, long layer, long batch, long heads, long headSize)
    {
        if (!_caches.TryGetValue((site, layer), out var cache) || cache.Batch != batch || cache.Heads != heads || cache.HeadSize != headSize)
        {
            if (cache is not null && DecodePosition > 0)
                throw new InvalidOperationException($"The batch changed shape in the middle of decoding ([{cache.Batch}, {cache.Heads}] → [{batch}, {heads}]); call ResetDecode first.");
            _caches[(site, layer)] = cache = new AttentionCache(batch, heads, DecodeCapacity, headSize);
        }
        return cache;
    }
}
