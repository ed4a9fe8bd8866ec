using System;
using System.Globalization;

namespace Kiln.Runtime.Cuda;

/// <summary>What a device string asks for.</summary>
public enum DeviceKind
{
    /// <summary>The CPU.</summary>
    Cpu,
    /// <summary>A CUDA GPU by ordinal.</summary>
    Cuda,
    /// <summary>GPU 0 when one can be opened, else the CPU.</summary>
    Auto,
}

/// <summary>A parsed device string: <c>cpu</c>, <c>cuda</c> (= <c>cuda:0</c>), <c>cuda:N</c> or <c>auto</c> (case-insensitive).</summary>
/// <param name="Kind">CPU, CUDA or automatic.</param>
/// <param name="Ordinal">The GPU's ordinal for <see cref="DeviceKind.Cuda"/> (0 otherwise).</param>
public readonly record struct DeviceName(DeviceKind Kind, int Ordinal)
{
    /// <summary>Parses <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">The text is none of the accepted forms; the message lists them.</exception>
    public static DeviceName Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return new DeviceName(DeviceKind.Cpu, 0);
        if (t == "auto") return new DeviceName(DeviceKind.Auto, 0);
        if (t == "cuda" || t == "gpu") return new DeviceName(DeviceKind.Cuda, 0);
        if (t.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(t.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int ordinal))
            return new DeviceName(DeviceKind.Cuda, ordinal);
        throw new ArgumentException(
            $"The device \"{text}\" is not understood; use \"cpu\", \"cuda\" (GPU 0), \"cuda:N\" (GPU N, counting from 0) or \"auto\" (a GPU when there is one, else the CPU).",
            nameof(text));
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        DeviceKind.Cpu => "cpu",
        DeviceKind.Auto => "auto",
        _ => "cuda:" + Ordinal.ToString(CultureInfo.InvariantCulture),
    };
}
